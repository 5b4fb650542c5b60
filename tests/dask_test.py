"""The Beam jobs on a real distributed engine: a dask.distributed cluster started here.

The scheduler and the two workers are separate processes talking over TCP on 127.0.0.1, as on
a cluster; only the machines are the same. The outputs must equal the embedded runner's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from messy_dataset import EXPECTED_DUPLICATES, EXPECTED_EXAMPLES, make_dataset

from cyclegan_tfx.config import PreprocessConfig
from cyclegan_tfx.data.preprocess import beam_pipeline
from cyclegan_tfx.evaluation.fid.beam import FeatureStatsCombineFn
from cyclegan_tfx.evaluation.fid.stats import FeatureStats

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
CONFIG = PreprocessConfig(
    image_size=24, num_shards=3, extensions=(".png", ".jpg", ".jpeg", ".tif", ".tiff")
)


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and 2 single-threaded worker processes on 127.0.0.1."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as local_cluster,
        distributed.Client(local_cluster) as client,
    ):
        yield local_cluster, client


def _dask_args(cluster) -> list[str]:
    local_cluster, _ = cluster
    # Small partitions, so the work is split between both workers.
    return [
        f"--runner={DASK_RUNNER}",
        f"--dask_client_address={local_cluster.scheduler_address}",
        "--dask_partition_size=4",
    ]


def _preprocess(data_dir: Path, out: Path, args: list[str]) -> None:
    beam_pipeline.run_preprocessing(str(data_dir), str(out), CONFIG, args)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_preprocessing_on_dask_equals_the_embedded_runner(tmp_path: Path, cluster) -> None:
    make_dataset(tmp_path / "data")
    _preprocess(tmp_path / "data", tmp_path / "embedded", ["--runner=FnApiRunner"])
    with distributed.get_task_stream(cluster[1]) as tasks:
        _preprocess(tmp_path / "data", tmp_path / "dask", _dask_args(cluster))

    embedded, on_dask = _files(tmp_path / "embedded"), _files(tmp_path / "dask")
    assert sorted(on_dask) == sorted(embedded)
    for name, data in embedded.items():
        assert on_dask[name] == data, f"{name} differs between the runners"
    # The run is not vacuous: the job's own checks found what the dataset holds ...
    report = (tmp_path / "dask" / "metrics.json").read_text()
    for name, count in EXPECTED_EXAMPLES.items():
        assert f'"{name}": {count}' in report
    duplicates = (tmp_path / "dask" / "reports" / beam_pipeline.DUPLICATES_CSV).read_text()
    assert all(f"{path},{kept}" in duplicates for path, kept in EXPECTED_DUPLICATES)
    # ... and both worker processes ran part of it.
    workers = {task["worker"] for task in tasks.data}
    assert len(workers) == 2, workers


def test_fid_kid_statistics_on_dask_equal_the_embedded_runner(tmp_path: Path, cluster) -> None:
    rng = np.random.default_rng(0)
    features = rng.standard_normal((400, 32)) * rng.uniform(0.5, 2.0, 32)
    keys = [f"{value:08x}" for value in rng.permutation(10**6)[:400]]
    batches = [(keys[i : i + 16], features[i : i + 16]) for i in range(0, 400, 16)]

    def run(args: list[str], name: str) -> tuple[FeatureStats, np.ndarray, np.ndarray]:
        pipeline = beam.Pipeline(options=PipelineOptions(args))
        _ = (
            pipeline
            | "Batches" >> beam.Create(batches)
            | "Stats" >> beam.CombineGlobally(FeatureStatsCombineFn(32, kid_max_samples=100))
            | "Save" >> beam.Map(_save, str(tmp_path / f"{name}.npz"))
        )
        beam_pipeline.run_to_completion(pipeline)
        with np.load(tmp_path / f"{name}.npz") as data:
            stats = FeatureStats(int(data["count"]), data["feature_sum"], data["outer_sum"])
            return stats, data["keys"], data["rows"]

    embedded = run(["--runner=FnApiRunner"], "embedded")
    on_dask = run(_dask_args(cluster), "dask")

    expected = FeatureStats.from_features(features)
    for stats, _, _ in (embedded, on_dask):
        assert stats.count == 400
        np.testing.assert_allclose(stats.feature_sum, expected.feature_sum, rtol=1e-12)
        np.testing.assert_allclose(stats.outer_sum, expected.outer_sum, rtol=1e-12, atol=1e-9)
    # The KID sample is chosen by key, so it is identical, row for row.
    np.testing.assert_array_equal(on_dask[1], embedded[1])
    np.testing.assert_array_equal(on_dask[2], embedded[2])
    np.testing.assert_array_equal(embedded[1], sorted(keys)[:100])


def _save(result, path: str) -> None:
    """Writes the combined statistics where the test can read them (runs on a worker)."""
    stats, sample = result
    np.savez(
        path,
        count=stats.count,
        feature_sum=stats.feature_sum,
        outer_sum=stats.outer_sum,
        keys=sample.keys,
        rows=sample.rows,
    )

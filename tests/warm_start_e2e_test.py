"""End-to-end: `train.warm_start: blessed` through the pipeline (LocalDagRunner), slow lane.

1. A run from scratch: blessed, pushed, registered (version 1).
2. New data arrives (one more training image each way, a new `data.dvc` md5) and a run with
   `train.warm_start: blessed` starts: its Resolver hands the Trainer the blessed model, the
   Trainer starts from that model's training state (weights, optimizers, pools) and trains
   `train.epochs` more; the registry entry names version 1 as its base and records the new
   data version.
3. A warm start for another architecture, and one in a pipeline with no blessed model, stop
   the run with a clear message (no traceback) and push nothing.
"""

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from conftest import (
    E2E_SIZE,
    REPO_ROOT,
    push_lane_config,
    run_cli,
    synthetic_images,
    write_e2e_dataset,
    write_examples,
    write_params,
)
from ml_metadata.proto import metadata_store_pb2

from cyclegan_tfx.mlmd import open_store, run_executions
from cyclegan_tfx.model.model_info import read_model_info
from cyclegan_tfx.registry import cli as models
from cyclegan_tfx.registry.record import model_registry
from pipeline.local_runner import run_and_report
from pipeline.pipeline import WARM_START_RESOLVER_ID

pytestmark = pytest.mark.slow

EPOCHS = 40.0
NEW_DATA_MD5 = "0123456789abcdef0123456789abcdef.dir"


def _add_training_data(root: Path) -> None:
    """One more image per domain, and `data.dvc` as `dvc add` would rewrite it."""
    train = root / "build" / "preprocessed" / "train"
    write_examples(
        train / "new.tfrecord",
        {"A": synthetic_images(1, E2E_SIZE, "A", 70), "B": synthetic_images(1, E2E_SIZE, "B", 71)},
    )
    dvc_file = yaml.safe_load((root / "data.dvc").read_text())
    dvc_file["outs"][0]["md5"] = NEW_DATA_MD5
    (root / "data.dvc").write_text(yaml.safe_dump(dvc_file))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("warm")
    write_e2e_dataset(root)
    (root / "data.dvc").write_bytes((REPO_ROOT / "data.dvc").read_bytes())
    first = run_and_report(push_lane_config(root, EPOCHS))
    _add_training_data(root)
    config = push_lane_config(root, EPOCHS, warm_start="blessed")
    warm = run_and_report(config)
    states = run_executions(config.paths.metadata_path, config.pipeline.name)
    return config, first, warm, states


def test_the_warm_start_continues_from_the_blessed_model(runs):
    config, first, warm, states = runs
    assert states["Trainer"] == "COMPLETE" and WARM_START_RESOLVER_ID in states
    registry = model_registry(config)
    base = registry.entry(first.push.version)
    assert warm.push is not None and not warm.push.already_pushed
    info = read_model_info(registry.version_path(warm.push.version))
    start = info["warm_start"]
    # The weights at the first step were the blessed model's, and the steps add up.
    assert start["start_weights_fingerprint"] == start["base_weights_fingerprint"]
    assert start["base_weights_fingerprint"] == base["weights_fingerprint"]
    assert start["base_steps"] == base["total_steps"] > 0
    assert info["total_steps"] == base["total_steps"] + info["steps"]
    assert info["weights_fingerprint"] != base["weights_fingerprint"]


def test_ml_metadata_shows_the_trainer_consumed_the_blessed_model(runs):
    config, first, _, _ = runs
    store = open_store(config.paths.metadata_path)
    base_model_id = model_registry(config).entry(first.push.version)["lineage"]["model"]["id"]
    consumers = {
        event.execution_id
        for event in store.get_events_by_artifact_ids([base_model_id])
        if event.type == metadata_store_pb2.Event.INPUT
        and any(step.key == "base_model" for step in event.path.steps)
    }
    assert len(consumers) == 1  # the warm-started Trainer, as its `base_model`


def test_the_registry_names_the_base_version_and_the_new_data(runs, capsys):
    config, first, warm, _ = runs
    entry = model_registry(config).entry(warm.push.version)
    assert entry["warm_start"]["base_version"] == first.push.version
    assert entry["data"]["md5"] == NEW_DATA_MD5
    assert model_registry(config).entry(first.push.version)["data"]["md5"] != NEW_DATA_MD5
    params = write_params(config, Path(config.paths.root) / "show_params.yaml")
    capsys.readouterr()
    assert models.main(["show", warm.push.version, "--params", str(params)]) == 0
    shown = capsys.readouterr().out
    assert f"started from     {first.push.version} (warm start:" in shown


def _failed_run(config):
    params = write_params(config, Path(config.paths.root) / "failing_params.yaml")
    return run_cli("run", "--params", str(params))


def test_a_base_model_of_another_architecture_is_a_clear_error(runs):
    config, *_ = runs
    versions = model_registry(config).versions()
    wider = dataclasses.replace(config.model, generator_filters=8)
    result = _failed_run(config.replace(model=wider))
    assert result.returncode != 0
    assert "cannot warm start from" in result.stderr
    assert "generator_filters: 4 in the base model, 8 now" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert model_registry(config).versions() == versions  # nothing pushed


def test_a_warm_start_with_no_blessed_model_is_a_clear_error(tmp_path):
    write_e2e_dataset(tmp_path)
    config = push_lane_config(tmp_path, 1.0, warm_start="blessed")
    result = _failed_run(config)
    assert result.returncode != 0
    assert "no model has been blessed yet" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert json.loads(json.dumps(model_registry(config).versions())) == []

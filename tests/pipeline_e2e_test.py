"""End-to-end: the real TFX pipeline under LocalDagRunner on tiny data.

Three runs share one pipeline root and ML Metadata store:
1. an untrained candidate (train.epochs = 0): every component runs, FID is above the bound,
   the model is NOT blessed and NOT pushed;
2. a trained candidate: blessed and pushed into serving/<name>/<version>/, which loads back
   and translates;
3. the same trained run again: ExampleGen and Trainer are cache hits, the Evaluator compares
   against the blessed baseline (the same model) and blesses it.
"""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import synthetic_images, tiny_config, write_examples

from cyclegan_tfx.config import DirectionBounds
from cyclegan_tfx.model.export import SIGNATURE_A2B, SIGNATURE_B2A
from pipeline.local_runner import run
from pipeline.pipeline import serving_base_directory
from pipeline.reports import latest_run_executions, write_reports

pytestmark = pytest.mark.slow

SIZE = 16
TRAINED_EPOCHS = 40.0
# With this data and the fallback backbone the untrained generators score FID ~190-225 and the
# trained ones ~65 (24 test images per domain); the bound sits between the two.
FID_BOUND = 140.0
UPSTREAM = ("ImportExampleGen", "Trainer", "latest_blessed_model_resolver", "Evaluator")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    preprocessed = root / "build" / "preprocessed"
    write_examples(
        preprocessed / "train" / "part-00000-of-00001.tfrecord",
        {"A": synthetic_images(16, SIZE, "A", 0), "B": synthetic_images(12, SIZE, "B", 1)},
    )
    write_examples(
        preprocessed / "test" / "part-00000-of-00001.tfrecord",
        {"A": synthetic_images(24, SIZE, "A", 2), "B": synthetic_images(24, SIZE, "B", 3)},
        split="test",
    )
    return root


def _config(root, epochs):
    config = tiny_config(root, epochs=epochs)
    evaluate = dataclasses.replace(
        config.evaluate, fid_upper_bound=DirectionBounds(a2b=FID_BOUND, b2a=FID_BOUND)
    )
    return config.replace(evaluate=evaluate)


def _pushed_versions(config):
    base = serving_base_directory(config)
    if not tf.io.gfile.exists(base):
        return []
    return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(base))


@pytest.fixture(scope="module")
def untrained_run(workspace):
    config = _config(workspace, epochs=0.0)
    run(config)
    return config, latest_run_executions(config.paths.metadata_path, config.pipeline.name)


@pytest.fixture(scope="module")
def trained_run(workspace, untrained_run):
    config = _config(workspace, epochs=TRAINED_EPOCHS)
    run(config)
    summary = write_reports(config)
    return config, latest_run_executions(config.paths.metadata_path, config.pipeline.name), summary


@pytest.fixture(scope="module")
def rerun(workspace, trained_run):
    config = _config(workspace, epochs=TRAINED_EPOCHS)
    run(config)
    summary = write_reports(config)
    return config, latest_run_executions(config.paths.metadata_path, config.pipeline.name), summary


def test_untrained_candidate_is_evaluated_but_not_pushed(untrained_run):
    config, states = untrained_run
    for node in UPSTREAM:
        assert states[node] == "COMPLETE", states
    assert "Pusher" not in states, "the Pusher must be skipped by the blessing condition"
    assert _pushed_versions(config) == []
    summary = write_reports(config)
    assert summary["blessed"] is False
    assert summary["pushed_version"] is None
    assert max(summary["fid_a2b"], summary["fid_b2a"]) > FID_BOUND
    assert summary["backbone"] == "fallback-inceptionv3-random-seed0"


def test_trained_candidate_is_blessed_and_pushed(trained_run):
    config, states, summary = trained_run
    assert states["Trainer"] == "COMPLETE"
    assert states["Pusher"] == "COMPLETE"
    assert summary["blessed"] is True
    assert summary["fid_a2b"] < FID_BOUND and summary["fid_b2a"] < FID_BOUND
    assert summary["fid_a2b_baseline"] is None  # no blessed model existed before
    assert _pushed_versions(config) == [summary["pushed_version"]]


def test_pushed_model_loads_and_translates(trained_run):
    config, _, summary = trained_run
    model_dir = f"{serving_base_directory(config)}/{summary['pushed_version']}"
    model = tf.saved_model.load(model_dir)
    assert {SIGNATURE_A2B, SIGNATURE_B2A, "serving_default"} <= set(model.signatures)
    images = synthetic_images(3, SIZE, "A", 7)
    out = model.signatures[SIGNATURE_A2B](images=tf.constant(images))["translated"].numpy()
    assert out.shape == images.shape and out.dtype == np.uint8
    assert not np.array_equal(out, images)


def test_reports_are_written(trained_run):
    config, _, summary = trained_run
    metrics = json.loads((config.paths.resolve("metrics") / "evaluation.json").read_text())
    assert metrics == json.loads(json.dumps(summary))
    plots = config.paths.resolve("plots")
    header = (plots / "losses.tsv").read_text().splitlines()[0].split("\t")
    assert header[:5] == [
        "step",
        "generator_ab",
        "generator_ba",
        "discriminator_a",
        "discriminator_b",
    ]
    for name in ("translations_a2b.png", "translations_b2a.png", "training_samples.png"):
        assert (plots / name).read_bytes().startswith(b"\x89PNG")


def test_rerun_hits_the_cache_and_compares_with_the_baseline(rerun, trained_run):
    _, states, summary = rerun
    assert states["ImportExampleGen"] == "CACHED"
    assert states["Trainer"] == "CACHED"
    assert summary["fid_a2b_baseline"] == pytest.approx(trained_run[2]["fid_a2b"])
    assert summary["fid_a2b"] == pytest.approx(trained_run[2]["fid_a2b"])
    assert summary["blessed"] is True

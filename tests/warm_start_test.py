"""Warm start (cyclegan_tfx/model/warm_start.py): a run continues from a model's training state.

Tiny networks, seconds per run. The pipeline lane (the Resolver hands the Trainer the blessed
model, the registry names it) is tests/warm_start_e2e_test.py.
"""

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import tensorflow as tf
from conftest import synthetic_images, tiny_config, write_examples

from components.trainer import base_model_for
from cyclegan_tfx.model.train import RunFolders, prepare_run, train_and_export
from cyclegan_tfx.model.warm_start import STATE_FILE, WarmStartError, state_dir_of

SIZE = 16


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("warm-data")
    images = {"A": synthetic_images(8, SIZE, "A", 0), "B": synthetic_images(6, SIZE, "B", 1)}
    return str(write_examples(root / "train.tfrecord", images))


def _train(root: Path, records: str, config, base_model=None):
    export_dir = str(root / "model" / "Format-Serving")
    result = train_and_export(
        [records],
        config.model,
        config.train,
        SIZE,
        config.seed,
        RunFolders.choose(root / "run"),
        export_dir,
        base_model=base_model,
        state_dir=state_dir_of(export_dir),
    )
    return result, export_dir


@pytest.fixture(scope="module")
def base(records, tmp_path_factory):
    root = tmp_path_factory.mktemp("base")
    config = tiny_config(root, epochs=2)
    result, export_dir = _train(root, records, config)
    return config, result, export_dir


def _pool_count(state_prefix: str, pool: str) -> int:
    reader = tf.train.load_checkpoint(state_prefix)
    key = next(k for k in reader.get_variable_to_shape_map() if k.startswith(f"{pool}/count"))
    return int(reader.get_tensor(key))


def test_every_trained_model_keeps_its_training_state(base):
    _, result, export_dir = base
    state = Path(state_dir_of(export_dir))
    record = json.loads((state / STATE_FILE).read_text())
    assert record["steps"] == result.steps == result.total_steps  # no base: from scratch
    assert record["weights_fingerprint"] == result.weights_fingerprint
    assert record["architecture"]["model"]["generator_filters"] == 4
    assert list(state.glob("state.data-*")), "the checkpoint itself"
    assert not (Path(export_dir) / "training_state").exists()  # not in what is pushed


def test_a_warm_start_begins_with_the_base_models_weights_pools_and_optimizers(
    base, records, tmp_path
):
    config, result, export_dir = base
    run = prepare_run(
        [records],
        config.model,
        config.train,
        SIZE,
        config.seed + 1,  # another seed: nothing below may come from a fresh initialisation
        RunFolders.choose(tmp_path / "run"),
        tf.distribute.get_strategy(),
        base_model=export_dir,
    )
    assert run.cyclegan.weights_fingerprint() == result.weights_fingerprint
    assert run.warm_start.start_weights_fingerprint == result.weights_fingerprint
    assert run.warm_start.base_steps == result.steps
    assert run.cyclegan.step == 0  # this run's own steps and schedule start anew
    prefix = str(Path(state_dir_of(export_dir)) / "state")
    assert int(run.cyclegan.pool_a.count.numpy()) == _pool_count(prefix, "pool_a") > 0
    for optimizer in run.cyclegan.optimizers.values():  # Adam's moments and step count
        assert int(optimizer.iterations.numpy()) == result.steps


def test_a_warm_started_run_counts_the_steps_behind_it(base, records, tmp_path):
    config, first, export_dir = base
    result, second_dir = _train(tmp_path, records, config, base_model=export_dir)
    assert result.warm_start.base_weights_fingerprint == first.weights_fingerprint
    assert result.total_steps == first.steps + result.steps
    assert result.weights_fingerprint != first.weights_fingerprint  # it trained on
    record = json.loads((Path(state_dir_of(second_dir)) / STATE_FILE).read_text())
    assert record["steps"] == result.total_steps


def test_another_architecture_is_a_clear_error_not_a_fresh_start(base, records, tmp_path):
    config, _, export_dir = base
    wider = dataclasses.replace(config.model, generator_filters=8)
    with pytest.raises(WarmStartError, match="another architecture") as error:
        _train(tmp_path, records, config.replace(model=wider), base_model=export_dir)
    assert "generator_filters: 4 in the base model, 8 now" in str(error.value)
    assert "train.warm_start: none" in str(error.value)
    assert not (tmp_path / "model").exists()  # nothing exported


def test_turning_the_generator_average_off_is_another_architecture(base, records, tmp_path):
    config, _, export_dir = base
    assert config.train.generator_ema_decay is not None  # the base kept averaged generators
    last = dataclasses.replace(config.train, generator_ema_decay=None)
    with pytest.raises(WarmStartError, match="generator_ema: True in the base model, None now"):
        _train(tmp_path, records, config.replace(train=last), base_model=export_dir)


def test_a_base_model_without_training_state_is_a_clear_error(base, records, tmp_path):
    config, _, _ = base
    bare = tmp_path / "old" / "Format-Serving"
    bare.mkdir(parents=True)
    with pytest.raises(WarmStartError, match="has no training state"):
        _train(tmp_path, records, config, base_model=str(bare))


def test_warm_start_without_a_blessed_model_is_a_clear_error(tmp_path):
    train = tiny_config(tmp_path, warm_start="blessed").train
    with pytest.raises(WarmStartError, match="no model has been blessed yet"):
        base_model_for(SimpleNamespace(base_model=None), train)
    assert base_model_for(SimpleNamespace(base_model="/m/Format-Serving"), train) == (
        "/m/Format-Serving"
    )
    off = tiny_config(tmp_path).train  # warm_start: none ignores any base model
    assert base_model_for(SimpleNamespace(base_model="/m/Format-Serving"), off) is None

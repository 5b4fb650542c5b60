"""A diverging Trainer fails the pipeline run with a clear error, and nothing is pushed (slow)."""

import dataclasses

import pytest
import tensorflow as tf
from conftest import synthetic_images, tiny_config, write_examples

from cyclegan_tfx.config import OptimizerConfig
from cyclegan_tfx.mlmd import run_executions
from pipeline.local_runner import run

pytestmark = pytest.mark.slow


def test_nan_in_training_stops_the_pipeline_and_nothing_is_pushed(tmp_path):
    preprocessed = tmp_path / "build" / "preprocessed"
    write_examples(
        preprocessed / "train" / "part-00000-of-00001.tfrecord",
        {"A": synthetic_images(4, 16, "A", 0), "B": synthetic_images(4, 16, "B", 1)},
    )
    write_examples(
        preprocessed / "test" / "part-00000-of-00001.tfrecord",
        {"A": synthetic_images(3, 16, "A", 2), "B": synthetic_images(3, 16, "B", 3)},
        split="test",
    )
    config = tiny_config(tmp_path, epochs=2.0)
    # An absurd discriminator learning rate makes its loss overflow within a few steps.
    exploding = OptimizerConfig(learning_rate=1e30, schedule="constant")
    networks = dataclasses.replace(config.train.optimizer.networks, discriminator_b=exploding)
    optimizer = dataclasses.replace(config.train.optimizer, networks=networks)
    config = config.replace(train=dataclasses.replace(config.train, optimizer=optimizer))

    with pytest.raises(Exception, match=r"training diverged: the loss of \w+ is (nan|inf)"):
        run(config)

    states = run_executions(config.paths.metadata_path, config.pipeline.name)
    assert states["Trainer"] == "FAILED"
    assert "Evaluator" not in states and "Pusher" not in states
    # The serving folder exists (a DVC output of the stage), but no version was pushed.
    assert not tf.io.gfile.exists(str(config.serving_dir())) or not tf.io.gfile.listdir(
        str(config.serving_dir())
    )

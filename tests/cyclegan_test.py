"""Training-step tests: each optimizer touches only its own network; schedules; TTUR; NaN."""

import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT, tiny_config

from cyclegan_tfx.config import NETWORK_NAMES, OptimizerConfig, ScheduleConfig, load_config
from cyclegan_tfx.model.cyclegan import CycleGAN, TrainingDivergedError
from cyclegan_tfx.model.schedules import NetworkSchedule, learning_rate_at

SIZE = 16


def _gan(tmp_path, steps=10, **overrides):
    config = tiny_config(tmp_path, **overrides)
    return CycleGAN(config.model, config.train, steps, seed=config.seed, image_size=SIZE)


def _batch(seed):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32))


def _snapshot(gan):
    return {
        name: [w.copy() for w in gan.networks.get(name).get_weights()] for name in NETWORK_NAMES
    }


def _changed(before, after):
    return {
        name
        for name in NETWORK_NAMES
        if any(not np.array_equal(b, a) for b, a in zip(before[name], after[name], strict=True))
    }


def test_each_optimizer_tracks_exactly_its_own_networks_variables(tmp_path):
    gan = _gan(tmp_path)
    gan.train_step(_batch(0), _batch(1))
    for name in NETWORK_NAMES:
        own = {id(v) for v in gan.networks.get(name).trainable_variables}
        optimizer = gan.optimizers[name]
        tracked = {id(v) for v in optimizer._trainable_variables}
        assert tracked == own, name
        assert int(optimizer.iterations.numpy()) == 1


def test_generator_step_updates_only_generators(tmp_path):
    gan = _gan(tmp_path)
    before = _snapshot(gan)
    gan.generator_step(_batch(0), _batch(1))
    assert _changed(before, _snapshot(gan)) == {"generator_ab", "generator_ba"}
    assert int(gan.optimizers["discriminator_a"].iterations.numpy()) == 0


def test_discriminator_step_updates_only_discriminators(tmp_path):
    gan = _gan(tmp_path)
    before = _snapshot(gan)
    gan.discriminator_step(_batch(0), _batch(1), _batch(2), _batch(3))
    assert _changed(before, _snapshot(gan)) == {"discriminator_a", "discriminator_b"}
    assert int(gan.optimizers["generator_ab"].iterations.numpy()) == 0


def test_zero_rate_network_is_frozen_while_others_train(tmp_path):
    # A network whose learning rate decays to zero immediately must not move: proof that the
    # four optimizers are independent (the other three still update).
    config = tiny_config(tmp_path)
    frozen = OptimizerConfig(learning_rate=1e-3, schedule="linear_decay")
    train = dataclasses.replace(
        config.train,
        optimizers=dataclasses.replace(config.train.optimizers, discriminator_b=frozen),
        schedule=ScheduleConfig(decay_start_fraction=0.0),
    )
    gan = CycleGAN(config.model, train, total_steps=1, seed=0, image_size=SIZE)
    # total_steps=1 and decay from step 0: the rate at step 0 is lr, so advance once first.
    gan.optimizers["discriminator_b"].iterations.assign(1)
    before = _snapshot(gan)
    gan.train_step(_batch(0), _batch(1))
    changed = _changed(before, _snapshot(gan))
    assert "discriminator_b" not in changed
    assert changed == {"generator_ab", "generator_ba", "discriminator_a"}


def test_ttur_defaults_discriminators_learn_four_times_faster():
    config = load_config(REPO_ROOT / "params.yaml")
    optimizers = config.train.optimizers
    for generator, discriminator in (
        ("generator_ab", "discriminator_a"),
        ("generator_ba", "discriminator_b"),
    ):
        g = optimizers.for_network(generator)
        d = optimizers.for_network(discriminator)
        assert d.learning_rate == pytest.approx(4 * g.learning_rate)
        assert (g.beta_1, g.beta_2) == (0.5, 0.999)
    assert optimizers.generator_ab.learning_rate == pytest.approx(1e-4)


SCHEDULE = ScheduleConfig(
    decay_start_fraction=0.5, exponential_decay_rate=0.5, exponential_decay_steps=10
)


@pytest.mark.parametrize(
    ("kind", "step", "expected"),
    [
        ("constant", 0, 1e-3),
        ("constant", 99, 1e-3),
        ("linear_decay", 0, 1e-3),
        ("linear_decay", 50, 1e-3),
        ("linear_decay", 75, 0.5e-3),
        ("linear_decay", 100, 0.0),
        ("exponential", 10, 0.5e-3),
        ("exponential", 20, 0.25e-3),
        ("cosine", 50, 0.5e-3),
        ("cosine", 100, 0.0),
    ],
)
def test_schedules_follow_their_formulas(kind, step, expected):
    optimizer = OptimizerConfig(learning_rate=1e-3, schedule=kind)
    assert learning_rate_at(step, optimizer, SCHEDULE, 100) == pytest.approx(expected, abs=1e-12)
    keras_value = float(NetworkSchedule(optimizer, SCHEDULE, 100)(step))
    assert keras_value == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_optimizer_sees_its_scheduled_rate_during_training(tmp_path):
    gan = _gan(tmp_path, steps=4)
    for _ in range(3):
        gan.train_step(_batch(0), _batch(1))
    for name in NETWORK_NAMES:
        optimizer = gan.optimizers[name]
        in_use = float(optimizer.learning_rate)
        assert in_use == pytest.approx(gan.learning_rates(3)[name], rel=1e-5)


def test_nan_loss_stops_training_naming_network_and_step(tmp_path):
    gan = _gan(tmp_path)
    gan.train_step(_batch(0), _batch(1))
    poisoned = _batch(2).numpy()
    poisoned[0, 0, 0, 0] = math.nan
    with pytest.raises(TrainingDivergedError, match=r"loss of generator_\w+ is nan at step 1"):
        gan.train_step(tf.constant(poisoned), _batch(3))


def test_same_seed_same_weights(tmp_path):
    first, second = _gan(tmp_path), _gan(tmp_path)
    for gan in (first, second):
        gan.train_step(_batch(0), _batch(1))
        gan.train_step(_batch(2), _batch(3))
    assert first.weights_fingerprint() == second.weights_fingerprint()

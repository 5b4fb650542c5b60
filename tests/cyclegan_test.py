"""Training-step tests: optimizer strategies touch exactly their variables; schedules; TTUR; NaN."""

import dataclasses
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT, tiny_config

from cyclegan_tfx.config import (
    NETWORK_NAMES,
    ConfigError,
    NetworkOptimizers,
    OptimizerConfig,
    ScheduleConfig,
    load_config,
)
from cyclegan_tfx.model.cyclegan import CycleGAN, TrainingDivergedError
from cyclegan_tfx.model.export import export_generators
from cyclegan_tfx.model.optimizer_strategies import OptimizerStrategy
from cyclegan_tfx.model.schedules import NetworkSchedule, Timeline, learning_rate_at
from cyclegan_tfx.model.train import serving_generators

SIZE = 16
GENERATORS = {"generator_ab", "generator_ba"}
DISCRIMINATORS = {"discriminator_a", "discriminator_b"}
STRATEGIES = tuple(s.value for s in OptimizerStrategy)


def _train_config(tmp_path, strategy="independent", n_critic=1, **overrides):
    config = tiny_config(tmp_path, **overrides)
    optimizer = dataclasses.replace(
        config.train.optimizer, strategy=OptimizerStrategy(strategy), n_critic=n_critic
    )
    return config, dataclasses.replace(config.train, optimizer=optimizer)


def _gan(tmp_path, strategy="independent", steps=10, n_critic=1, **overrides):
    config, train = _train_config(tmp_path, strategy, n_critic, **overrides)
    return CycleGAN(config.model, train, steps, seed=config.seed, image_size=SIZE)


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


def _variable_ids(gan, networks):
    return {id(v) for name in networks for v in gan.networks.get(name).trainable_variables}


@pytest.mark.parametrize(
    ("strategy", "groups"),
    [
        ("independent", {n: {n} for n in NETWORK_NAMES}),
        ("shared_schedule", {n: {n} for n in NETWORK_NAMES}),
        ("joint", {"generators": GENERATORS, "discriminators": DISCRIMINATORS}),
        ("single", {"all": set(NETWORK_NAMES)}),
    ],
)
def test_each_optimizer_tracks_exactly_its_groups_variables(tmp_path, strategy, groups):
    gan = _gan(tmp_path, strategy)
    assert {g: set(m) for g, m in OptimizerStrategy(strategy).groups.items()} == groups
    gan.train_step(_batch(0), _batch(1))
    assert set(gan.optimizers) == set(groups)
    for group, networks in groups.items():
        optimizer = gan.optimizers[group]
        assert {id(v) for v in optimizer._trainable_variables} == _variable_ids(gan, networks)
        assert int(optimizer.iterations.numpy()) == 1, group


@pytest.mark.parametrize("strategy", ["independent", "shared_schedule", "joint"])
def test_alternating_strategies_update_generators_then_discriminators(tmp_path, strategy):
    gan = _gan(tmp_path, strategy)
    before = _snapshot(gan)
    fake_a, fake_b, _, gradients = gan.generator_step(_batch(0), _batch(1))
    after_generators = _snapshot(gan)
    assert _changed(before, after_generators) == GENERATORS
    gan.discriminator_step(_batch(0), _batch(1), fake_a, fake_b, gradients)
    assert _changed(after_generators, _snapshot(gan)) == DISCRIMINATORS


def test_single_optimizer_updates_everything_at_once_from_blocked_gradients(tmp_path):
    gan = _gan(tmp_path, "single")
    before = _snapshot(gan)
    fake_a, fake_b, _, gradients = gan.generator_step(_batch(0), _batch(1))
    assert _changed(before, _snapshot(gan)) == set()  # nothing applied yet
    assert set(gradients) == GENERATORS  # L_G differentiated w.r.t. the generators only
    gan.discriminator_step(_batch(0), _batch(1), fake_a, fake_b, gradients)
    assert _changed(before, _snapshot(gan)) == set(NETWORK_NAMES)
    assert int(gan.optimizers["all"].iterations.numpy()) == 1  # one update per step
    with pytest.raises(ValueError, match="needs the generator phase's gradients"):
        gan.discriminator_step(_batch(0), _batch(1), fake_a, fake_b)


def test_independent_networks_can_be_frozen_individually(tmp_path):
    # A network whose rate is 0 must not move while the other three train: the four optimizers
    # are independent. linear_decay over the whole run is 0 at the last step.
    config, train = _train_config(tmp_path)
    frozen = OptimizerConfig(learning_rate=1e-3, schedule="linear_decay")
    running = OptimizerConfig(learning_rate=1e-3, schedule="constant")
    networks = dataclasses.replace(
        train.optimizer.networks,
        generator_ab=running,
        generator_ba=running,
        discriminator_a=running,
        discriminator_b=frozen,
    )
    train = dataclasses.replace(
        train, optimizer=dataclasses.replace(train.optimizer, networks=networks)
    )
    gan = CycleGAN(config.model, train, Timeline(2, 2), seed=0, image_size=SIZE)
    gan.step_counter.assign(2)
    before = _snapshot(gan)
    gan.train_step(_batch(0), _batch(1))
    assert _changed(before, _snapshot(gan)) == set(NETWORK_NAMES) - {"discriminator_b"}


def test_shared_schedule_is_one_object(tmp_path):
    gan = _gan(tmp_path, "shared_schedule")
    schedules = {id(opt._learning_rate) for opt in gan.optimizers.values()}
    assert len(schedules) == 1
    independent = _gan(tmp_path, "independent")
    assert len({id(opt._learning_rate) for opt in independent.optimizers.values()}) == 4


def test_n_critic_updates_discriminators_more_often_on_the_same_schedule(tmp_path):
    gan = _gan(tmp_path, "independent", n_critic=3)
    for step in range(2):
        extra = [(_batch(10 + 2 * k + step), _batch(11 + 2 * k + step)) for k in range(2)]
        gan.train_step(_batch(step), _batch(step + 1), extra)
    assert int(gan.optimizers["generator_ab"].iterations.numpy()) == 2
    assert int(gan.optimizers["discriminator_a"].iterations.numpy()) == 6
    # The rate follows the training step (2), not the discriminator's 6 updates.
    rate = float(gan.optimizers["discriminator_a"].learning_rate)
    assert rate == pytest.approx(gan.learning_rates(2)["discriminator_a"], rel=1e-5)


def test_n_critic_cannot_be_used_with_a_single_optimizer(tmp_path):
    with pytest.raises(ConfigError, match="n_critic > 1"):
        _train_config(tmp_path, "single", n_critic=2)


def test_ttur_defaults_discriminators_learn_twice_as_fast():
    config = load_config(REPO_ROOT / "params.yaml")
    setup = config.train.optimizer
    assert setup.strategy == "independent"
    for generator, discriminator in (
        ("generator_ab", "discriminator_a"),
        ("generator_ba", "discriminator_b"),
    ):
        g, d = setup.for_network(generator), setup.for_network(discriminator)
        assert d.learning_rate == pytest.approx(2 * g.learning_rate)
        assert (g.beta_1, g.beta_2) == (0.5, 0.999)
    # Twice the paper's 2e-4 (params.yaml says why).
    assert setup.for_network("generator_ab").learning_rate == pytest.approx(4e-4)
    assert setup.for_network("discriminator_a").learning_rate == pytest.approx(8e-4)


SCHEDULE = ScheduleConfig(decay_epochs=0, exponential_decay_rate=0.5, exponential_decay_steps=10)
TIMELINE = Timeline(total_steps=100, decay_steps=50)


@pytest.mark.parametrize(
    ("kind", "step", "expected"),
    [
        ("constant", 0, 1e-3),
        ("constant", 99, 1e-3),
        ("linear_decay", 0, 1e-3),
        ("linear_decay", 50, 1e-3),
        ("linear_decay", 75, 0.5e-3),
        ("linear_decay", 90, 0.2e-3),
        ("linear_decay", 100, 0.0),
        ("exponential", 10, 0.5e-3),
        ("exponential", 20, 0.25e-3),
        ("cosine", 50, 0.5e-3),
        ("cosine", 100, 0.0),
    ],
)
def test_schedules_follow_their_formulas(kind, step, expected):
    optimizer = OptimizerConfig(learning_rate=1e-3, schedule=kind)
    assert learning_rate_at(step, optimizer, SCHEDULE, TIMELINE) == pytest.approx(
        expected, abs=1e-12
    )
    keras_value = float(NetworkSchedule(optimizer, SCHEDULE, TIMELINE)(step))
    assert keras_value == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_timeline_matches_the_papers_epochs():
    # 200 epochs of 10 steps, the last 100 decaying: constant until step 1000.
    timeline = Timeline.from_epochs(epochs=200, decay_epochs=100, steps_per_epoch=10)
    assert (timeline.total_steps, timeline.decay_steps, timeline.decay_start) == (2000, 1000, 1000)
    assert Timeline.from_epochs(2, 5, 10) == Timeline(20, 20)  # decay beyond the run: all of it


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_network_sees_its_scheduled_rate(tmp_path, strategy):
    gan = _gan(tmp_path, strategy, steps=8)
    for step in (0, 3, 7):
        gan.step_counter.assign(step)
        expected = gan.learning_rates(step)
        for network in NETWORK_NAMES:
            optimizer = gan.optimizers[gan.optimizer_of[network]]
            assert float(optimizer.learning_rate) == pytest.approx(expected[network], rel=1e-5)


def test_nan_loss_stops_training_naming_network_and_step(tmp_path):
    gan = _gan(tmp_path)
    gan.train_step(_batch(0), _batch(1))
    poisoned = _batch(2).numpy()
    poisoned[0, 0, 0, 0] = math.nan
    # Steps count from 1, as in the training log: the poisoned batch is the second step.
    with pytest.raises(TrainingDivergedError, match=r"loss of generator_\w+ is nan at step 2"):
        gan.train_step(tf.constant(poisoned), _batch(3))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_same_seed_same_weights(tmp_path, strategy):
    first, second = _gan(tmp_path, strategy), _gan(tmp_path, strategy)
    for gan in (first, second):
        gan.train_step(_batch(0), _batch(1))
        gan.train_step(_batch(2), _batch(3))
    assert first.weights_fingerprint() == second.weights_fingerprint()


def test_mixed_precision_computes_in_bfloat16_with_float32_weights(tmp_path):
    gan = _gan(tmp_path, mixed_precision=True)
    generator = gan.networks.generator_ab
    assert generator.get_layer("down1_conv").compute_dtype == "bfloat16"
    assert all(v.dtype == "float32" for v in generator.trainable_variables)
    assert generator(_batch(0)).dtype == tf.float32
    losses = gan.train_step(_batch(0), _batch(1))
    assert all(math.isfinite(v) for v in losses.values())
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was


def test_bfloat16_trained_generators_are_exported_in_float32(tmp_path):
    # bfloat16 kernels of the eager runtime and of the session-based loader differ by a few
    # grey levels, and servers without bfloat16 hardware run it slowly: the export is float32.
    last = {"mixed_precision": True, "generator_ema_decay": None}  # the trained weights
    gan = _gan(tmp_path, **last)
    gan.train_step(_batch(0), _batch(1))
    config, _ = _train_config(tmp_path, "independent", 1, **last)
    serving = serving_generators(gan, config.model, SIZE)
    for trained, exported in zip(
        (gan.networks.generator_ab, gan.networks.generator_ba), serving, strict=True
    ):
        assert exported.get_layer("down1_conv").compute_dtype == "float32"
        assert exported.name == trained.name
        for a, b in zip(exported.get_weights(), trained.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    export_generators(*serving, SIZE, tmp_path / "export")  # verified in the session loader
    plain = _gan(tmp_path, generator_ema_decay=None)
    assert serving_generators(plain, config.model, SIZE)[0] is plain.networks.generator_ab


def test_averaged_generators_follow_the_moving_average_and_are_served(tmp_path):
    decay = 0.9
    gan = _gan(tmp_path, generator_ema_decay=decay)
    plain = _gan(tmp_path, generator_ema_decay=None)
    expected = [w.copy() for w in gan.networks.generator_ab.get_weights()]  # the start
    for step in (1, 2, 3):
        gan.train_step(_batch(step), _batch(step + 10))
        plain.train_step(_batch(step), _batch(step + 10))
        d = min(decay, (1 + step) / (10 + step))
        trained = gan.networks.generator_ab.get_weights()
        expected = [d * e + (1 - d) * w for e, w in zip(expected, trained, strict=True)]
    for got, want in zip(gan.averaged["generator_ab"].get_weights(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # Averaging changes what is served, not what is trained.
    assert _changed(_snapshot(plain), _snapshot(gan)) == set()
    config, _ = _train_config(tmp_path)
    served = serving_generators(gan, config.model, SIZE)
    assert served == (gan.averaged["generator_ab"], gan.averaged["generator_ba"])
    samples = gan.cycle_translations(_batch(0), _batch(1))
    np.testing.assert_allclose(samples[0], served[0](_batch(0), training=False), atol=1e-6)
    assert gan.weights_fingerprint() != plain.weights_fingerprint()  # the averages count


def test_grouping_alone_changes_nothing(tmp_path):
    # With the same Adam settings for every network, one optimizer per network (with its own or
    # a shared schedule), two (the reference code's) or one over everything train bit-identical
    # weights: Adam's state is per variable. So the optimizer study (study.yaml) spends no runs
    # on grouping; only different settings per network can change anything.
    fingerprints = {}
    for strategy in STRATEGIES:
        config, train = _train_config(tmp_path, strategy)
        shared = train.optimizer.shared
        networks = NetworkOptimizers(**{name: shared for name in NETWORK_NAMES})
        optimizer = dataclasses.replace(train.optimizer, networks=networks)
        train = dataclasses.replace(train, optimizer=optimizer)
        gan = CycleGAN(config.model, train, 10, seed=config.seed, image_size=SIZE)
        for step in range(3):
            gan.train_step(_batch(2 * step), _batch(2 * step + 1))
        fingerprints[strategy] = gan.weights_fingerprint()
    assert len(set(fingerprints.values())) == 1, fingerprints

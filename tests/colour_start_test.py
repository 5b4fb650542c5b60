"""Generators that start as the colour-transfer baseline (`model.generator_start`)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import saved_model_cli_run, synthetic_images

from cyclegan_tfx.config import ConfigError, ModelConfig
from cyclegan_tfx.evaluation import colour_transfer
from cyclegan_tfx.model import export
from cyclegan_tfx.model.colour_start import colour_transfer_starts, fit_colour_transfer_starts
from cyclegan_tfx.model.data import to_float, to_uint8
from cyclegan_tfx.model.networks import build_generator

SIZE = 8
STARTS_FROM_TRANSFER = ModelConfig(
    8,
    2,
    8,
    2,
    generator="pixelwise",
    generator_output="residual",
    generator_start="colour_transfer",
)


def _trained_pair():
    """Both generators with the start fitted on two synthetic domains of different colours."""
    images_a = synthetic_images(6, SIZE, "A", 1)
    images_b = synthetic_images(6, SIZE, "B", 2)
    generators = [build_generator(STARTS_FROM_TRANSFER, n, SIZE) for n in ("g_ab", "g_ba")]
    stats = fit_colour_transfer_starts(*generators, images_a, images_b)
    return generators, stats, images_a, images_b


def _without_change(generator):
    """The generator with its last layer zeroed: its output is its start image alone."""
    last = generator.get_layer("pixel_out")
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    return generator


def test_an_unchanged_generator_is_the_colour_transfer_baseline():
    (g_ab, g_ba), (stats_a, stats_b), images_a, images_b = _trained_pair()
    assert stats_a == colour_transfer.fit(images_a) and stats_b == colour_transfer.fit(images_b)
    for generator, images, source, target in (
        (g_ab, images_a, stats_a, stats_b),
        (g_ba, images_b, stats_b, stats_a),
    ):
        out = to_uint8(_without_change(generator)(to_float(images))).numpy()
        expected = colour_transfer.transfer(images, source, target)
        difference = np.abs(out.astype(int) - expected.astype(int))
        assert difference.max() <= 1  # float32 in [-1, 1] vs float64 in [0, 255]: rounding only
        assert np.abs(out.astype(int) - images.astype(int)).mean() > 5  # it did move the colours


def test_the_statistics_are_saved_and_not_trained():
    (g_ab, _), (stats_a, stats_b), _, _ = _trained_pair()
    (start,) = colour_transfer_starts(g_ab)
    assert not any(w is v for w in start.weights for v in g_ab.trainable_variables)
    fitted = [w.numpy() for w in start.weights]
    expected = (stats_a.mean, stats_a.std, stats_b.mean, stats_b.std)
    np.testing.assert_allclose(fitted, expected, rtol=1e-6)
    # In get_weights(): what checkpoints, warm starts and the float32 serving copy carry.
    copy = build_generator(STARTS_FROM_TRANSFER, "g_ab", SIZE)
    copy.set_weights(g_ab.get_weights())
    images = to_float(synthetic_images(2, SIZE, "A", 3))
    np.testing.assert_array_equal(copy(images).numpy(), g_ab(images).numpy())


def test_the_served_model_applies_the_start_by_itself(tmp_path):
    (g_ab, g_ba), _, images_a, _ = _trained_pair()
    export.export_generators(g_ab, g_ba, SIZE, tmp_path / "1")
    served = saved_model_cli_run(tmp_path / "1", export.SIGNATURE_A2B, images_a, tmp_path / "cli")
    direct = to_uint8(g_ab(to_float(images_a))).numpy()
    assert np.abs(served.astype(int) - direct.astype(int)).max() <= 1


def test_gradients_through_the_start_are_finite_at_black_and_white():
    # The cycle loss backpropagates through the other generator's start: the Lab conversion's
    # unused branches (cube root, gamma at 0) must not turn a gradient into NaN.
    (g_ab, _), _, _, _ = _trained_pair()
    _without_change(g_ab)
    levels = np.array([-1.0, -0.999, 0.0, 0.999], np.float32)  # 4**3 = 64 colours, 8x8
    colours = np.stack(np.meshgrid(levels, levels, levels), -1).reshape(SIZE, SIZE, 3)
    images = tf.Variable(np.stack([colours, -colours]))  # and 1.0 where -1.0 was
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(g_ab(images))
    gradient = tape.gradient(loss, images).numpy()
    assert np.isfinite(gradient).all() and np.abs(gradient).sum() > 0


def test_generators_without_the_option_have_no_start_layer():
    config = ModelConfig(8, 2, 8, 2, generator="pixelwise", generator_output="residual")
    assert colour_transfer_starts(build_generator(config, "g_ab", SIZE)) == []


def test_a_tanh_output_cannot_start_from_colour_transfer():
    with pytest.raises(ConfigError, match="generator_start: colour_transfer needs"):
        ModelConfig(8, 2, 8, 2, generator_output="tanh", generator_start="colour_transfer")

"""Models a gate must refuse, as Keras generators the real export and Evaluator can run.

Each maps float images in [-1, 1] to [-1, 1] like a trained generator, without training:
doing nothing, one constant image (a collapsed generator), and the colour-transfer baseline
(:mod:`cyclegan_tfx.evaluation.colour_transfer`) fitted on the training split.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
import tensorflow.experimental.numpy as tnp

from cyclegan_tfx.evaluation.colour_transfer import ChannelStats, transfer_float


class _Map(keras.layers.Layer):
    """A fixed function of the image (no weights)."""

    def __init__(self, function, **kwargs):
        super().__init__(**kwargs)
        self._function = function

    def call(self, images):
        return self._function(images)


def _generator(function, name: str, size: int) -> keras.Model:
    inputs = keras.Input(shape=(size, size, 3), name="image")
    return keras.Model(inputs, _Map(function, name=f"{name}_map")(inputs), name=name)


def identity_generator(name: str, size: int) -> keras.Model:
    """Doing nothing: the source image as it is."""
    return _generator(lambda images: images, name, size)


def constant_generator(image: np.ndarray, name: str) -> keras.Model:
    """Always `image` (uint8 [S, S, 3]): a generator collapsed onto one output."""
    constant = tf.constant(image.astype(np.float32) / 127.5 - 1.0)
    size = image.shape[0]
    return _generator(lambda images: tf.zeros_like(images) + constant, name, size)


def colour_transfer_generator(
    source: ChannelStats, target: ChannelStats, name: str, size: int
) -> keras.Model:
    """The colour-transfer baseline from `source` to `target` statistics, as a generator."""

    def transfer(images):
        rgb = tf.cast((images + 1.0) * 127.5, tf.float64)
        moved = transfer_float(rgb, source, target, xp=tnp)
        return tf.cast(moved / 127.5 - 1.0, tf.float32)

    return _generator(transfer, name, size)

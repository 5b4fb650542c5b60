"""`model.generator_start: colour_transfer`: generators that start as the colour transfer.

The generator's residual (or attention) output changes the colour-transfer baseline's image
(:mod:`cyclegan_tfx.evaluation.colour_transfer`) instead of the input image, so an untrained
generator already does what the baseline does and training learns only the correction. The
baseline's statistics are each domain's Lab mean and standard deviation over its training
split, fitted when training starts (:func:`fit_colour_transfer_starts`) and saved with the model
as non-trainable weights.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import keras
import numpy as np
import tensorflow as tf
import tensorflow.experimental.numpy as tnp
from keras import layers

from cyclegan_tfx.evaluation import colour_transfer
from cyclegan_tfx.evaluation.colour_transfer import ChannelStats, match_statistics

logger = logging.getLogger(__name__)


@keras.saving.register_keras_serializable(package="cyclegan_tfx")
class ColourTransferStart(layers.Layer):
    """The colour-transfer baseline's image (`model.generator_start: colour_transfer`).

    Lab statistics matching (:mod:`cyclegan_tfx.evaluation.colour_transfer`) with the source
    and target domains' statistics held as non-trainable weights: saved with the model, so the
    SavedModel computes it by itself. Built as the identity (mean 0, std 1 on both sides);
    :meth:`set_statistics` sets the training split's before training starts.
    """

    def build(self, input_shape):
        """Creates the four statistics weights (3 channels each)."""
        self.statistics = [
            self.add_weight(shape=(3,), initializer=init, trainable=False, name=name)
            for name, init in (
                ("source_mean", "zeros"),
                ("source_std", "ones"),
                ("target_mean", "zeros"),
                ("target_std", "ones"),
            )
        ]

    def set_statistics(self, source: ChannelStats, target: ChannelStats) -> None:
        """Sets the domains' Lab statistics (as fitted on the training split)."""
        values = (source.mean, source.std, target.mean, target.std)
        for weight, value in zip(self.statistics, values, strict=True):
            weight.assign(value)

    def call(self, images):
        """Float images in [-1, 1] -> their colour transfer, in [-1, 1]."""
        rgb = tf.cast((images + 1.0) * 127.5, tf.float64)
        stats = [tf.cast(weight, tf.float64) for weight in self.statistics]
        moved = match_statistics(rgb, *stats, xp=tnp)
        return tf.cast(moved / 127.5 - 1.0, images.dtype)


def colour_transfer_starts(generator: keras.Model) -> list[ColourTransferStart]:
    """The generator's colour-transfer start layer, if `model.generator_start` gave it one."""
    return [layer for layer in generator.layers if isinstance(layer, ColourTransferStart)]


def fit_colour_transfer_starts(
    generator_ab: keras.Model,
    generator_ba: keras.Model,
    images_a: Iterable[np.ndarray],
    images_b: Iterable[np.ndarray],
) -> tuple[ChannelStats, ChannelStats]:
    """Sets the generators' start layers to the domains' training-split statistics.

    Args:
        generator_ab: The A->B generator (moves A's statistics to B's).
        generator_ba: The B->A generator.
        images_a: Domain A's training images (uint8 [S, S, 3]).
        images_b: Domain B's training images.

    Returns:
        The Lab statistics of A and of B.
    """
    stats_a, stats_b = colour_transfer.fit(images_a), colour_transfer.fit(images_b)
    directions = ((generator_ab, stats_a, stats_b), (generator_ba, stats_b, stats_a))
    for generator, source, target in directions:
        for layer in colour_transfer_starts(generator):
            layer.set_statistics(source, target)
    logger.info(
        "the generators start from colour transfer; Lab statistics of the training split: "
        "A %s, B %s",
        stats_a.to_dict(),
        stats_b.to_dict(),
    )
    return stats_a, stats_b

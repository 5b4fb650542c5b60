"""Export of the two generators as one SavedModel (TF Serving layout).

Signatures:
- `translate_a2b` (also `serving_default`): uint8 images [N, S, S, 3] -> `translated` uint8.
- `translate_b2a`: the reverse direction.
- `fid_eval`: serialized `tf.Example`s of either domain -> `translated` (each image through the
  generator of its own domain), `real` (the decoded input) and `is_domain_a`; this is what the
  Evaluator's FID metric consumes.

The discriminators are not exported.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from cyclegan_tfx.model.data import parse_examples, to_float, to_uint8

SIGNATURE_A2B = "translate_a2b"
SIGNATURE_B2A = "translate_b2a"
SIGNATURE_FID_EVAL = "fid_eval"
SIGNATURE_FOR_DIRECTION = {"a2b": SIGNATURE_A2B, "b2a": SIGNATURE_B2A}


class CycleGANServing(tf.Module):
    """tf.Module holding both generators and their serving functions."""

    def __init__(
        self, generator_ab: keras.Model, generator_ba: keras.Model, image_size: int
    ) -> None:
        super().__init__(name="cyclegan")
        self.generator_ab = generator_ab
        self.generator_ba = generator_ba
        self.image_size = image_size
        image_spec = tf.TensorSpec([None, image_size, image_size, 3], tf.uint8, name="images")
        self.translate_a2b = tf.function(self._a2b, input_signature=[image_spec])
        self.translate_b2a = tf.function(self._b2a, input_signature=[image_spec])
        self.fid_eval = tf.function(
            self._fid_eval, input_signature=[tf.TensorSpec([None], tf.string, name="examples")]
        )

    @staticmethod
    def _translate(generator: keras.Model, images: tf.Tensor) -> dict[str, tf.Tensor]:
        # Reflection padding rejects an empty batch, so an empty batch is answered directly.
        translated = tf.cond(
            tf.shape(images)[0] > 0,
            lambda: to_uint8(generator(to_float(images), training=False)),
            lambda: tf.zeros_like(images),
        )
        return {"translated": translated}

    def _a2b(self, images):
        return self._translate(self.generator_ab, images)

    def _b2a(self, images):
        return self._translate(self.generator_ba, images)

    def _fid_eval(self, examples):
        images, is_a = parse_examples(examples, self.image_size)
        partition = tf.cast(tf.logical_not(is_a), tf.int32)  # 0: domain A, 1: domain B
        indices = tf.dynamic_partition(tf.range(tf.shape(images)[0]), partition, 2)
        parts = tf.dynamic_partition(images, partition, 2)
        translated = tf.dynamic_stitch(
            indices,
            [self._a2b(parts[0])["translated"], self._b2a(parts[1])["translated"]],
        )
        return {
            "translated": tf.ensure_shape(translated, [None, self.image_size, self.image_size, 3]),
            "real": images,
            "is_domain_a": tf.cast(is_a, tf.int32),
        }


def export_generators(
    generator_ab: keras.Model, generator_ba: keras.Model, image_size: int, export_dir: str | Path
) -> None:
    """Writes the serving SavedModel with the signatures described in the module docstring."""
    module = CycleGANServing(generator_ab, generator_ba, image_size)
    tf.saved_model.save(
        module,
        str(export_dir),
        signatures={
            "serving_default": module.translate_a2b,
            SIGNATURE_A2B: module.translate_a2b,
            SIGNATURE_B2A: module.translate_b2a,
            SIGNATURE_FID_EVAL: module.fid_eval,
        },
    )

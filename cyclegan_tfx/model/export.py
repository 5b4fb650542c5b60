"""Export of the two generators as one SavedModel (TF Serving layout).

Signatures:
- `translate_a2b` (also `serving_default`): uint8 images [N, S, S, 3] -> `translated` uint8.
- `translate_b2a`: the reverse direction.
- `fid_eval`: serialized `tf.Example`s of either domain -> `translated` (each image through the
  generator of its own domain), `real` (the decoded input) and `is_domain_a`; this is what the
  Evaluator's FID metric consumes.

The discriminators are not exported.

Why `keras.export.ExportArchive` and not a `tf.Module` + `tf.saved_model.save`: TF Serving,
KServe and `saved_model_cli run` load a SavedModel with the session-based (TF1-style) loader,
which restores variables from the checkpoint's flat variable list. Keras 3 models held as
attributes of a `tf.Module` are saved so that this loader cannot find their variables
("Could not find variable res2_conv2/bias"; tensorflow/serving#2226, keras-team/keras#20096);
only the object-based `tf.saved_model.load` works on such a file. `ExportArchive.track` lists
every variable of the tracked models on the exported object itself, which is what the
session-based loader needs; the object-based loader and TFMA read the same file. The endpoints
are plain functions closing over the generators, traced once with fixed input signatures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.util import deprecation

from cyclegan_tfx.model.data import parse_examples, to_float, to_uint8

SIGNATURE_A2B = "translate_a2b"
SIGNATURE_B2A = "translate_b2a"
SIGNATURE_FID_EVAL = "fid_eval"
SIGNATURE_DEFAULT = "serving_default"
SIGNATURE_FOR_DIRECTION = {"a2b": SIGNATURE_A2B, "b2a": SIGNATURE_B2A}
IMAGES_INPUT = "images"
EXAMPLES_INPUT = "examples"
TRANSLATED_OUTPUT = "translated"


def _translate(generator: keras.Model, images: tf.Tensor) -> dict[str, tf.Tensor]:
    """uint8 images through one generator; an empty batch is answered directly.

    (Reflection padding rejects an empty batch.)
    """
    translated = tf.cond(
        tf.shape(images)[0] > 0,
        lambda: to_uint8(generator(to_float(images), training=False)),
        lambda: tf.zeros_like(images),
    )
    return {TRANSLATED_OUTPUT: translated}


def _fid_eval(
    generator_ab: keras.Model, generator_ba: keras.Model, image_size: int, examples: tf.Tensor
) -> dict[str, tf.Tensor]:
    """Each parsed example through the generator of its own domain (see module docstring)."""
    images, is_a = parse_examples(examples, image_size)
    partition = tf.cast(tf.logical_not(is_a), tf.int32)  # 0: domain A, 1: domain B
    indices = tf.dynamic_partition(tf.range(tf.shape(images)[0]), partition, 2)
    parts = tf.dynamic_partition(images, partition, 2)
    translated = tf.dynamic_stitch(
        indices,
        [
            _translate(generator_ab, parts[0])[TRANSLATED_OUTPUT],
            _translate(generator_ba, parts[1])[TRANSLATED_OUTPUT],
        ],
    )
    return {
        TRANSLATED_OUTPUT: tf.ensure_shape(translated, [None, image_size, image_size, 3]),
        "real": images,
        "is_domain_a": tf.cast(is_a, tf.int32),
    }


def export_generators(
    generator_ab: keras.Model, generator_ba: keras.Model, image_size: int, export_dir: str | Path
) -> None:
    """Writes the serving SavedModel with the signatures described in the module docstring.

    Args:
        generator_ab: The A->B generator (the paper's G).
        generator_ba: The B->A generator (the paper's F).
        image_size: The side of the square uint8 images the signatures accept.
        export_dir: The SavedModel folder to write (created).
    """
    archive = keras.export.ExportArchive()
    archive.track(generator_ab)
    archive.track(generator_ba)
    image_spec = [tf.TensorSpec([None, image_size, image_size, 3], tf.uint8, name=IMAGES_INPUT)]
    # The first endpoint is also exported as `serving_default` (ExportArchive's rule).
    archive.add_endpoint(SIGNATURE_A2B, lambda images: _translate(generator_ab, images), image_spec)
    archive.add_endpoint(SIGNATURE_B2A, lambda images: _translate(generator_ba, images), image_spec)
    archive.add_endpoint(
        SIGNATURE_FID_EVAL,
        lambda examples: _fid_eval(generator_ab, generator_ba, image_size, examples),
        [tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)],
    )
    archive.write_out(str(export_dir), verbose=False)
    verify_export(export_dir, generator_ab, generator_ba, image_size)


class ExportError(RuntimeError):
    """The exported SavedModel does not run in the session-based loader TF Serving uses."""


def run_in_session(
    export_dir: str | Path, signature: str, inputs: dict[str, Any]
) -> dict[str, np.ndarray]:
    """Runs one signature of a SavedModel with the session-based (TF1) loader.

    This is the loader of TF Serving, KServe's TF runtime and `saved_model_cli run` (C++
    `LoadSavedModel`), which restores variables by their checkpoint names; the object-based
    `tf.saved_model.load` can succeed on files this loader rejects.

    Args:
        export_dir: The SavedModel folder.
        signature: The signature key, e.g. `translate_a2b`.
        inputs: Input name -> array (or list of bytes).

    Returns:
        Output name -> numpy array.
    """
    with (
        tf.Graph().as_default() as graph,
        tf.compat.v1.Session(graph=graph) as session,
        deprecation.silence(),  # the TF1 loader is deprecated, and it is what servers use
    ):
        meta_graph = tf.compat.v1.saved_model.loader.load(
            session, [tf.saved_model.SERVING], str(export_dir)
        )
        signature_def = meta_graph.signature_def[signature]
        feeds = {signature_def.inputs[name].name: value for name, value in inputs.items()}
        fetches = {name: info.name for name, info in signature_def.outputs.items()}
        return session.run(fetches, feed_dict=feeds)


def verify_export(
    export_dir: str | Path, generator_ab: keras.Model, generator_ba: keras.Model, image_size: int
) -> None:
    """Checks that the server's loader runs every image signature and reproduces the generators.

    Runs `translate_a2b`, `translate_b2a` and `serving_default` with the session-based loader
    (:func:`run_in_session`) on a fixed batch and compares with the in-memory generators.

    Raises:
        ExportError: If a signature fails to load or run, or its output differs by more than
            one grey level (float rounding across kernels) from the generator's.
    """
    images = np.random.default_rng(0).integers(0, 256, (2, image_size, image_size, 3), np.uint8)
    expected = {
        SIGNATURE_A2B: _translate(generator_ab, tf.constant(images))[TRANSLATED_OUTPUT],
        SIGNATURE_B2A: _translate(generator_ba, tf.constant(images))[TRANSLATED_OUTPUT],
    }
    expected[SIGNATURE_DEFAULT] = expected[SIGNATURE_A2B]
    for signature, want in expected.items():
        try:
            got = run_in_session(export_dir, signature, {IMAGES_INPUT: images})[TRANSLATED_OUTPUT]
        except (tf.errors.OpError, KeyError, ValueError) as error:
            raise ExportError(
                f"{export_dir}: signature {signature!r} does not run in the session-based "
                f"loader that TF Serving and KServe use: {error}"
            ) from error
        difference = np.abs(got.astype(np.int16) - want.numpy().astype(np.int16)).max()
        if difference > 1:
            raise ExportError(
                f"{export_dir}: signature {signature!r} in the session-based loader differs "
                f"from the trained generator by {difference} grey levels"
            )

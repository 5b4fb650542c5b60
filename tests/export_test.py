"""The serving export on tiny generators, loaded the way TF Serving and KServe load it.

`tf.compat.v1.saved_model.loader.load` in a session is the Python face of the C++
`LoadSavedModel` that TF Serving, KServe's TensorFlow runtime and `saved_model_cli run` use. A
Keras 3 model saved through a plain `tf.Module` loads with `tf.saved_model.load` but fails here
("Could not find variable ..."), so both loaders are exercised.
"""

import numpy as np
import pytest
import tensorflow as tf
from conftest import synthetic_images, write_examples

from cyclegan_tfx.config import ModelConfig
from cyclegan_tfx.model import export
from cyclegan_tfx.model.data import to_float, to_uint8
from cyclegan_tfx.model.networks import build_generator

SIZE = 16
TINY = ModelConfig(
    generator_filters=4, generator_blocks=1, discriminator_filters=4, discriminator_layers=2
)
IMAGE_SIGNATURES = (export.SIGNATURE_A2B, export.SIGNATURE_B2A, export.SIGNATURE_DEFAULT)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tf.keras.utils.set_random_seed(3)
    # Identical layer names in both generators: the case the tf.Module export got wrong.
    generators = {
        "a2b": build_generator(TINY, "generator_ab", SIZE),
        "b2a": build_generator(TINY, "generator_ba", SIZE),
    }
    path = tmp_path_factory.mktemp("export") / "1"
    export.export_generators(generators["a2b"], generators["b2a"], SIZE, path)
    return path, generators


def _direct(generator, images):
    return to_uint8(generator(to_float(images), training=False)).numpy()


def _assert_same_translation(served: np.ndarray, direct: np.ndarray) -> None:
    """The served graph and the eager Keras call agree to the grey level.

    Both round the same float output to uint8, but run different kernels (the session's
    optimised graph, eager ops): on some CPUs (AVX-512 here) a value within float round-off of
    a .5 boundary rounds the other way. Anything more than that is a real difference.
    """
    difference = np.abs(served.astype(np.int16) - direct.astype(np.int16))
    assert difference.max() <= 1, f"max difference {difference.max()} grey levels"
    assert (difference > 0).mean() < 0.01, f"{(difference > 0).mean():.1%} of values differ"


@pytest.mark.parametrize("signature", IMAGE_SIGNATURES)
def test_session_loader_runs_each_image_signature(exported, signature):
    path, generators = exported
    images = synthetic_images(3, SIZE, "A", 5)
    out = export.run_in_session(path, signature, {export.IMAGES_INPUT: images})
    translated = out[export.TRANSLATED_OUTPUT]
    assert translated.dtype == np.uint8 and translated.shape == images.shape
    generator = generators["b2a" if signature == export.SIGNATURE_B2A else "a2b"]
    _assert_same_translation(translated, _direct(generator, images))
    objects = tf.saved_model.load(str(path)).signatures[signature]
    np.testing.assert_array_equal(translated, objects(images=tf.constant(images))["translated"])


def test_directions_are_not_swapped(exported):
    path, _ = exported
    images = synthetic_images(2, SIZE, "A", 6)
    a2b = export.run_in_session(path, export.SIGNATURE_A2B, {export.IMAGES_INPUT: images})
    b2a = export.run_in_session(path, export.SIGNATURE_B2A, {export.IMAGES_INPUT: images})
    assert not np.array_equal(a2b["translated"], b2a["translated"])


def test_session_loader_runs_fid_eval_on_examples(exported, tmp_path):
    path, generators = exported
    images = {"A": synthetic_images(2, SIZE, "A", 7), "B": synthetic_images(3, SIZE, "B", 8)}
    records = write_examples(tmp_path / "test.tfrecord", images, split="test")
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(str(records))]
    out = export.run_in_session(
        path, export.SIGNATURE_FID_EVAL, {export.EXAMPLES_INPUT: serialized}
    )
    assert out["is_domain_a"].tolist() == [1, 1, 0, 0, 0]
    np.testing.assert_array_equal(out["real"], np.concatenate([images["A"], images["B"]]))
    _assert_same_translation(out["translated"][:2], _direct(generators["a2b"], images["A"]))
    _assert_same_translation(out["translated"][2:], _direct(generators["b2a"], images["B"]))


def test_signatures_keep_their_names_dtypes_and_shapes(exported):
    path, _ = exported
    signatures = tf.saved_model.load(str(path)).signatures
    assert set(signatures) == {*IMAGE_SIGNATURES, export.SIGNATURE_FID_EVAL}
    for name in IMAGE_SIGNATURES:
        (spec,) = signatures[name].structured_input_signature[1].values()
        assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, SIZE, SIZE, 3]
        assert spec.name == export.IMAGES_INPUT
        assert set(signatures[name].structured_outputs) == {export.TRANSLATED_OUTPUT}
    outputs = signatures[export.SIGNATURE_FID_EVAL].structured_outputs
    assert set(outputs) == {"translated", "real", "is_domain_a"}


def test_empty_batch_is_answered(exported):
    path, _ = exported
    empty = np.zeros((0, SIZE, SIZE, 3), np.uint8)
    out = export.run_in_session(path, export.SIGNATURE_A2B, {export.IMAGES_INPUT: empty})
    assert out[export.TRANSLATED_OUTPUT].shape == (0, SIZE, SIZE, 3)


def test_an_export_the_server_cannot_load_is_refused(tmp_path):
    # The old export (a tf.Module holding the Keras 3 models) is what TF Serving rejected.
    generator_ab = build_generator(TINY, "generator_ab", SIZE)
    generator_ba = build_generator(TINY, "generator_ba", SIZE)
    module = tf.Module()
    module.generator_ab, module.generator_ba = generator_ab, generator_ba
    spec = tf.TensorSpec([None, SIZE, SIZE, 3], tf.uint8, name="images")

    @tf.function(input_signature=[spec])
    def a2b(images):
        return {"translated": to_uint8(generator_ab(to_float(images)))}

    @tf.function(input_signature=[spec])
    def b2a(images):
        return {"translated": to_uint8(generator_ba(to_float(images)))}

    signatures = {"serving_default": a2b, "translate_a2b": a2b, "translate_b2a": b2a}
    tf.saved_model.save(module, str(tmp_path), signatures=signatures)
    with pytest.raises(export.ExportError, match="session-based loader"):
        export.verify_export(tmp_path, generator_ab, generator_ba, SIZE)

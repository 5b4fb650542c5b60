"""The training input stream: the paper's augmentation (random jitter, flips), deterministic."""

import numpy as np
from conftest import synthetic_images, write_examples

from cyclegan_tfx.model import data


def _batches(path, count=3, **augment):
    stream = data.training_stream([str(path)], "A", 16, 2, seed=5, **augment)
    return [batch.numpy() for batch in stream.take(count)]


def _records(tmp_path):
    return write_examples(tmp_path / "train.tfrecord", {"A": synthetic_images(6, 16, "A", 0)})


def test_without_augmentation_the_stream_is_the_images(tmp_path):
    path = _records(tmp_path)
    originals = {
        data.to_float(image).numpy().tobytes() for image in synthetic_images(6, 16, "A", 0)
    }
    for batch in _batches(path, jitter_scale=1.0, flip=False):
        for image in batch:
            assert image.tobytes() in originals


def test_jitter_crops_a_resized_image_and_is_reproducible(tmp_path):
    path = _records(tmp_path)
    first = _batches(path, count=6, jitter_scale=286 / 256, flip=True)
    again = _batches(path, count=6, jitter_scale=286 / 256, flip=True)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    plain = {data.to_float(image).numpy().tobytes() for image in synthetic_images(6, 16, "A", 0)}
    jittered = np.concatenate(first)
    assert jittered.shape[1:] == (16, 16, 3)
    assert jittered.min() >= -1.0 and jittered.max() <= 1.0
    # Resized to 18 px and cropped: no output is a pixel-exact copy of an input.
    assert not {image.tobytes() for image in jittered} & plain

"""KID feature sample, content hashes, streamed image-set statistics and the feature cache."""

import logging

import numpy as np
import pytest
from fid_fakes import FAKE_DIM, CountingBackbone, random_images

from cyclegan_tfx.evaluation.fid.distance import kernel_inception_distance
from cyclegan_tfx.evaluation.fid.reference import (
    StreamingFeatures,
    extract_features,
    image_digest,
    reference_stats,
)
from cyclegan_tfx.evaluation.fid.stats import FeatureSample

# --- FeatureSample --------------------------------------------------------------------------


def _keyed_rows(count: int, dim: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    keys = [f"{k:08x}" for k in rng.permutation(10 * count)[:count]]
    return keys, rng.standard_normal((count, dim))


def test_sample_keeps_the_smallest_keys_in_key_order():
    keys, rows = _keyed_rows(50)
    sample = FeatureSample.empty(10, 4).add(keys, rows).truncated()
    order = np.argsort(keys)[:10]
    assert list(sample.keys) == [keys[i] for i in order]
    np.testing.assert_array_equal(sample.rows, rows[order])
    assert len(sample) == 10


def test_sample_split_then_merge_equals_one_pass():
    keys, rows = _keyed_rows(200)
    one_pass = FeatureSample.empty(37, 4).add(keys, rows).truncated()
    rng = np.random.default_rng(1)
    permutation = rng.permutation(200)
    parts = []
    for chunk in np.array_split(permutation, 9):
        part = FeatureSample.empty(37, 4)
        for piece in np.array_split(chunk, 3):
            part.add([keys[i] for i in piece], rows[piece])
        parts.append(part)
    merged = parts[0].merge(*parts[1:]).truncated()
    np.testing.assert_array_equal(merged.keys, one_pass.keys)
    np.testing.assert_array_equal(merged.rows, one_pass.rows)


def test_sample_validation():
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        FeatureSample.empty(0, 4)
    sample = FeatureSample.empty(3, 4)
    with pytest.raises(ValueError, match=r"need \[n, 4\] rows and n keys"):
        sample.add(["a"], np.zeros((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        sample.add(["a"], np.full((1, 4), np.nan))
    with pytest.raises(ValueError, match="dimension"):
        sample.merge(FeatureSample.empty(3, 5))


# --- content hashes -------------------------------------------------------------------------


def test_image_digest_is_content_and_shape_sensitive():
    images = random_images(2, 8, seed=0)
    changed = images[0].copy()
    changed[0, 0, 0] ^= 1
    assert image_digest(changed) != image_digest(images[0])
    assert image_digest(images[0].copy()) == image_digest(images[0])
    flat = images[0].reshape(8, 24, 1)  # same bytes, other shape
    assert image_digest(flat) != image_digest(images[0])


def test_extract_features_groups_by_shape_and_keeps_order():
    backbone = CountingBackbone()
    small, large = random_images(3, 8, seed=1), random_images(2, 12, seed=2)
    images = [small[0], large[0], small[1], large[1], small[2]]
    features = extract_features(images, backbone)
    expected = np.concatenate([backbone(i[None]) for i in images])
    np.testing.assert_allclose(features, expected)
    assert features.shape == (5, FAKE_DIM)


# --- per-image feature cache ----------------------------------------------------------------


def _rows(cache_dir):
    return sorted(cache_dir.rglob("*.npy"))


def test_feature_rows_are_cached_per_image_and_reused(tmp_path, caplog):
    images = list(random_images(12, 8, seed=3))
    backbone = CountingBackbone()
    first = reference_stats(images, backbone, max_samples=5, cache_dir=tmp_path, batch_size=5)
    assert backbone.images_seen == 12 and first.cached == 0
    assert len(_rows(tmp_path)) == 12

    with caplog.at_level(logging.INFO, logger="cyclegan_tfx.evaluation.fid.reference"):
        second = reference_stats(images, backbone, max_samples=5, cache_dir=tmp_path, batch_size=5)
    assert backbone.images_seen == 12, "cached rows must not run the backbone"
    assert second.cached == 12 and "12 from the cache" in caplog.text
    # The same rows added in the same groups: identical sums, bit for bit.
    assert second.stats.count == 12
    np.testing.assert_array_equal(second.stats.outer_sum, first.stats.outer_sum)
    np.testing.assert_array_equal(second.sample.truncated().rows, first.sample.truncated().rows)

    # A new data version with two changed images computes only those two.
    changed = [*images[:10], *random_images(2, 8, seed=9)]
    third = reference_stats(changed, backbone, max_samples=5, cache_dir=tmp_path)
    assert backbone.images_seen == 14 and third.cached == 10
    # Another backbone has its own rows.
    reference_stats(images, CountingBackbone("other"), max_samples=5, cache_dir=tmp_path)
    assert len(_rows(tmp_path)) == 14 + 12


def test_cached_stats_give_identical_fid_inputs_and_kid(tmp_path):
    images = list(random_images(20, 8, seed=4))
    fresh = reference_stats(images, CountingBackbone(), max_samples=20, cache_dir=None)
    reference_stats(images, CountingBackbone(), max_samples=20, cache_dir=tmp_path)
    cached = reference_stats(images, CountingBackbone(), max_samples=20, cache_dir=tmp_path)
    assert cached.cached == 20
    np.testing.assert_array_equal(cached.stats.covariance(), fresh.stats.covariance())
    other = CountingBackbone()(random_images(20, 8, seed=5))
    assert kernel_inception_distance(other, cached.sample.rows, 5, 10) == (
        kernel_inception_distance(other, fresh.sample.rows, 5, 10)
    )


def test_streaming_in_any_split_equals_one_pass():
    images = random_images(30, 8, seed=10)
    backbone = CountingBackbone()
    whole = reference_stats(list(images), backbone, max_samples=7, batch_size=4)
    parts = []
    for chunk in np.array_split(np.random.default_rng(0).permutation(30), 4):
        part = StreamingFeatures(7)
        for index in chunk:
            part.add(images[index], image_digest(images[index]))
            part.flush(backbone, None, batch_size=3)
        parts.append(part)
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    merged.flush(backbone, None, batch_size=3, force=True)
    assert merged.count() == 30 and not merged.pending
    np.testing.assert_allclose(merged.stats.outer_sum, whole.stats.outer_sum, rtol=1e-12)
    np.testing.assert_array_equal(merged.sample.truncated().rows, whole.sample.truncated().rows)


def test_waiting_images_never_exceed_one_batch():
    backbone = CountingBackbone()
    features = StreamingFeatures(4)
    for image in random_images(50, 8, seed=11):
        features.add(image, image_digest(image))
        features.flush(backbone, None, batch_size=6)
        assert len(features.pending) < 6
        assert features.sample.keys.shape[0] <= 2 * 4 if features.sample else True


def test_corrupt_cache_file_is_recomputed(tmp_path, caplog):
    images = list(random_images(4, 8, seed=6))
    backbone = CountingBackbone()
    reference_stats(images, backbone, max_samples=4, cache_dir=tmp_path)
    damaged = _rows(tmp_path)[0]
    damaged.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="cyclegan_tfx.evaluation.fid.reference"):
        result = reference_stats(images, backbone, max_samples=4, cache_dir=tmp_path)
    assert "cannot read" in caplog.text
    assert backbone.images_seen == 5 and result.cached == 3
    assert result.stats.count == 4
    assert np.load(damaged).shape == (FAKE_DIM,)  # rewritten


def test_a_row_of_another_shape_is_a_miss(tmp_path, caplog):
    images = list(random_images(2, 8, seed=12))
    reference_stats(images, CountingBackbone(), max_samples=4, cache_dir=tmp_path)
    np.save(_rows(tmp_path)[0], np.zeros(3))
    backbone = CountingBackbone()
    with caplog.at_level(logging.WARNING, logger="cyclegan_tfx.evaluation.fid.reference"):
        result = reference_stats(images, backbone, max_samples=4, cache_dir=tmp_path)
    assert "not a feature row" in caplog.text and result.cached == 1


def test_unwritable_cache_only_warns_once(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="cyclegan_tfx.evaluation.fid.reference"):
        result = reference_stats(
            list(random_images(3, 8, seed=7)),
            CountingBackbone(),
            max_samples=3,
            cache_dir=blocker / "cache",
            batch_size=1,
        )
    assert result.stats.count == 3
    assert caplog.text.count("cannot write") == 1


def test_no_images_is_an_error():
    with pytest.raises(ValueError, match="no images"):
        reference_stats([], CountingBackbone(), max_samples=3)

"""KID feature sample, content hashes and the reference-statistics cache."""

import logging

import numpy as np
import pytest
from fid_fakes import FAKE_DIM, CountingBackbone, random_images

from cyclegan_tfx.fid.distance import kernel_inception_distance
from cyclegan_tfx.fid.reference import (
    StatsCache,
    dataset_hash,
    extract_features,
    image_digest,
    reference_stats,
)
from cyclegan_tfx.fid.stats import FeatureSample

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


def test_dataset_hash_is_order_independent_and_content_sensitive():
    images = random_images(6, 8, seed=0)
    digests = [image_digest(i) for i in images]
    assert dataset_hash(digests) == dataset_hash(digests[::-1])
    changed = images.copy()
    changed[2, 0, 0, 0] ^= 1
    assert dataset_hash([image_digest(i) for i in changed]) != dataset_hash(digests)
    assert dataset_hash(digests + digests[:1]) != dataset_hash(digests)  # duplicates count
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


# --- reference statistics cache ------------------------------------------------------------


def test_reference_stats_are_cached_and_reused(tmp_path, caplog):
    images = list(random_images(12, 8, seed=3))
    backbone = CountingBackbone()
    first = reference_stats(images, backbone, max_samples=5, cache_dir=tmp_path)
    assert backbone.images_seen == 12
    assert len(list(tmp_path.glob("*.npz"))) == 1

    with caplog.at_level(logging.INFO, logger="cyclegan_tfx.fid.reference"):
        second = reference_stats(images[::-1], backbone, max_samples=5, cache_dir=tmp_path)
    assert backbone.images_seen == 12, "a cache hit must not run the backbone"
    assert "cache hit" in caplog.text
    assert second.stats.count == first.stats.count == 12
    np.testing.assert_array_equal(second.stats.outer_sum, first.stats.outer_sum)
    np.testing.assert_array_equal(second.sample.rows, first.sample.rows)
    assert second.backbone == backbone.name and second.data_hash == first.data_hash

    # Another backbone, another KID sample size or other images: misses.
    reference_stats(images, CountingBackbone("other"), max_samples=5, cache_dir=tmp_path)
    reference_stats(images, backbone, max_samples=6, cache_dir=tmp_path)
    reference_stats(images[:-1], backbone, max_samples=5, cache_dir=tmp_path)
    assert backbone.images_seen == 12 + 12 + 11
    assert len(list(tmp_path.glob("*.npz"))) == 4


def test_cached_stats_give_identical_fid_inputs_and_kid(tmp_path):
    images = list(random_images(20, 8, seed=4))
    fresh = reference_stats(images, CountingBackbone(), max_samples=20, cache_dir=None)
    reference_stats(images, CountingBackbone(), max_samples=20, cache_dir=tmp_path)
    cached = reference_stats(images, CountingBackbone(), max_samples=20, cache_dir=tmp_path)
    np.testing.assert_array_equal(cached.stats.covariance(), fresh.stats.covariance())
    other = CountingBackbone()(random_images(20, 8, seed=5))
    assert kernel_inception_distance(other, cached.sample.rows, 5, 10) == (
        kernel_inception_distance(other, fresh.sample.rows, 5, 10)
    )


def test_corrupt_cache_file_is_recomputed(tmp_path, caplog):
    images = list(random_images(4, 8, seed=6))
    backbone = CountingBackbone()
    reference_stats(images, backbone, max_samples=4, cache_dir=tmp_path)
    (cache_file,) = tmp_path.glob("*.npz")
    cache_file.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="cyclegan_tfx.fid.reference"):
        result = reference_stats(images, backbone, max_samples=4, cache_dir=tmp_path)
    assert "cannot read" in caplog.text
    assert backbone.images_seen == 8
    assert result.stats.count == 4
    assert StatsCache(tmp_path).load(backbone.name, result.data_hash, 4) is not None


def test_unwritable_cache_only_warns(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="cyclegan_tfx.fid.reference"):
        result = reference_stats(
            list(random_images(3, 8, seed=7)),
            CountingBackbone(),
            max_samples=3,
            cache_dir=blocker / "cache",
        )
    assert result.stats.count == 3
    assert "cannot write" in caplog.text

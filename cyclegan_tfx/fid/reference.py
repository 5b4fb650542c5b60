"""Statistics of an image set (FID sums + KID sample), cached on disk per content hash.

The real test images are the same for every evaluated model at a given data version, so their
features need computing once per backbone. :func:`reference_stats` looks the statistics up in a
cache keyed by (backbone name, content hash of the decoded images, KID sample size) and computes
and stores them only on a miss.

Content hash: each image's digest is the SHA-256 of its shape, dtype and pixel bytes
(:func:`image_digest`); the set's hash is the SHA-256 of the sorted digests
(:func:`dataset_hash`), so it does not depend on the order or sharding in which the images were
read, counts duplicates, and changes with any pixel, the image size or the number of images.

The cache key does not see code changes of a backbone with an unchanged name: bump
:data:`STATS_CACHE_VERSION` whenever a backbone's preprocessing or architecture changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cyclegan_tfx.fid.backbone import Backbone
from cyclegan_tfx.fid.stats import FeatureSample, FeatureStats

logger = logging.getLogger(__name__)

STATS_CACHE_VERSION = 1
STATS_DIRNAME = "fid_stats"


def image_digest(image: np.ndarray) -> str:
    """Hex SHA-256 of an image's shape, dtype and pixel bytes."""
    image = np.ascontiguousarray(image)
    digest = hashlib.sha256(f"{image.shape}|{image.dtype.str}|".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def dataset_hash(digests: Sequence[str]) -> str:
    """Order-independent hex SHA-256 of a multiset of image digests."""
    return hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()


@dataclasses.dataclass
class ImageSetStats:
    """FID statistics and KID sample of a set of images, and what produced them.

    Attributes:
        stats: Mergeable FID sufficient statistics of all the images' features.
        sample: The KID feature sample (rows of the images with the smallest digests).
        backbone: Name of the backbone that produced the features.
        data_hash: :func:`dataset_hash` of the images.
    """

    stats: FeatureStats
    sample: FeatureSample
    backbone: str
    data_hash: str


def extract_features(images: Sequence[np.ndarray], backbone: Backbone) -> np.ndarray:
    """Features of images that may differ in size, batched by equal shape, in input order.

    Args:
        images: uint8 images [H, W, 3] (or grayscale [H, W] / [H, W, 1]).
        backbone: The feature extractor.

    Returns:
        float64 [N, D].
    """
    features = np.empty((len(images), backbone.feature_dim), dtype=np.float64)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        by_shape.setdefault(np.shape(image), []).append(index)
    for indices in by_shape.values():
        features[indices] = backbone(np.stack([images[i] for i in indices]))
    return features


def compute_image_set_stats(
    images: Sequence[np.ndarray],
    backbone: Backbone,
    max_samples: int,
    digests: Sequence[str] | None = None,
) -> ImageSetStats:
    """Runs the backbone on `images` and returns their statistics (no cache).

    Args:
        images: uint8 images [H, W, 3] (or grayscale).
        backbone: The feature extractor.
        max_samples: Capacity of the KID sample.
        digests: :func:`image_digest` of each image, if already known.

    Returns:
        The statistics.
    """
    digests = list(digests) if digests is not None else [image_digest(i) for i in images]
    if len(digests) != len(images):
        raise ValueError(f"{len(digests)} digests for {len(images)} images")
    features = extract_features(images, backbone)
    return ImageSetStats(
        stats=FeatureStats.from_features(features),
        sample=FeatureSample.empty(max_samples, backbone.feature_dim)
        .add(digests, features)
        .truncated(),
        backbone=backbone.name,
        data_hash=dataset_hash(digests),
    )


class StatsCache:
    """A directory of :class:`ImageSetStats` files (.npz), keyed by backbone and content.

    Writes are atomic (temporary file + rename), so concurrent evaluations never read a partial
    file. Unreadable or mismatching files count as misses; failures to write are logged, never
    raised (a read-only cache only costs time).
    """

    def __init__(self, directory: str | Path) -> None:
        """Creates the cache (the directory is created on the first store)."""
        self.directory = Path(directory).expanduser()

    @staticmethod
    def key(backbone: str, data_hash: str, max_samples: int) -> str:
        """The cache key of a backbone, content hash and KID sample size."""
        fields = {
            "version": STATS_CACHE_VERSION,
            "backbone": backbone,
            "data_hash": data_hash,
            "kid_max_samples": int(max_samples),
        }
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()

    def path(self, backbone: str, data_hash: str, max_samples: int) -> Path:
        """The file that holds (or would hold) these statistics."""
        return self.directory / f"{self.key(backbone, data_hash, max_samples)[:40]}.npz"

    def load(self, backbone: str, data_hash: str, max_samples: int) -> ImageSetStats | None:
        """Returns the cached statistics, or None on a miss."""
        path = self.path(backbone, data_hash, max_samples)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta != {
                    "version": STATS_CACHE_VERSION,
                    "backbone": backbone,
                    "data_hash": data_hash,
                    "kid_max_samples": int(max_samples),
                }:
                    logger.warning("FID stats cache: %s belongs to %s; ignoring it", path, meta)
                    return None
                stats = FeatureStats(int(data["count"]), data["feature_sum"], data["outer_sum"])
                sample = FeatureSample(max_samples, data["sample_keys"], data["sample_rows"])
                result = ImageSetStats(
                    stats=stats,
                    sample=sample,
                    backbone=backbone,
                    data_hash=data_hash,
                )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            logger.warning("FID stats cache: cannot read %s (%s); recomputing", path, error)
            return None
        logger.info(
            "FID stats cache hit: %d images, backbone %s, data %s (%s)",
            result.stats.count,
            backbone,
            data_hash[:12],
            path,
        )
        return result

    def store(self, result: ImageSetStats) -> Path | None:
        """Writes statistics atomically; returns the file, or None if it could not be written."""
        max_samples = result.sample.capacity
        path = self.path(result.backbone, result.data_hash, max_samples)
        meta = {
            "version": STATS_CACHE_VERSION,
            "backbone": result.backbone,
            "data_hash": result.data_hash,
            "kid_max_samples": int(max_samples),
        }
        sample = result.sample.truncated()
        temp_name = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                dir=self.directory, prefix=".tmp-", suffix=".npz", delete=False
            ) as f:
                temp_name = f.name
                np.savez(
                    f,
                    meta=np.array(json.dumps(meta, sort_keys=True)),
                    count=np.int64(result.stats.count),
                    feature_sum=result.stats.feature_sum,
                    outer_sum=result.stats.outer_sum,
                    sample_keys=sample.keys,
                    sample_rows=sample.rows,
                )
            os.replace(temp_name, path)
        except OSError as error:
            logger.warning("FID stats cache: cannot write %s (%s); continuing", path, error)
            if temp_name is not None:
                Path(temp_name).unlink(missing_ok=True)
            return None
        logger.info("FID stats cached: %s", path)
        return path


def reference_stats(
    images: Sequence[np.ndarray],
    backbone: Backbone,
    *,
    max_samples: int,
    cache_dir: str | Path | None = None,
    digests: Sequence[str] | None = None,
) -> ImageSetStats:
    """Statistics of a reference image set, from the cache when possible.

    Args:
        images: uint8 images [H, W, 3] (or grayscale); not run through the backbone on a hit.
        backbone: The feature extractor; its `name` is part of the cache key.
        max_samples: Capacity of the KID sample (part of the cache key).
        cache_dir: Directory of the cache; None disables caching.
        digests: :func:`image_digest` of each image, if already known.

    Returns:
        The statistics (cached or freshly computed and stored).
    """
    digests = list(digests) if digests is not None else [image_digest(i) for i in images]
    cache = StatsCache(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cached = cache.load(backbone.name, dataset_hash(digests), max_samples)
        if cached is not None:
            return cached
    result = compute_image_set_stats(images, backbone, max_samples, digests)
    if cache is not None:
        cache.store(result)
    return result

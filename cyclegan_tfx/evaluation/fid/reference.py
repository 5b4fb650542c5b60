"""Statistics of an image set (FID sums + KID sample), streamed, with per-image feature caching.

The real test images are the same for every evaluated model at a given data version, so their
features need computing once per backbone. :class:`FeatureCache` stores each image's feature
row under its content digest; :class:`StreamingFeatures` accumulates an image set one image
at a time, taking rows from the cache where it can and running the backbone on batches of the
rest. Memory is one batch of images plus the bounded KID sample, whatever the number of images;
a new data version that adds or changes a few images recomputes only those.

Content digest: the SHA-256 of an image's shape, dtype and pixel bytes (:func:`image_digest`),
so a row is found again whatever the order or sharding in which the images are read.

The cache key does not see code changes of a backbone with an unchanged name: bump
:data:`STATS_CACHE_VERSION` whenever a backbone's preprocessing or architecture changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from cyclegan_tfx.evaluation.fid.backbone import Backbone
from cyclegan_tfx.evaluation.fid.stats import FeatureSample, FeatureStats

logger = logging.getLogger(__name__)

STATS_CACHE_VERSION = 2
"""Version 2: one feature row per image (version 1 cached whole image sets)."""
STATS_DIRNAME = "fid_stats"


def image_digest(image: np.ndarray) -> str:
    """Hex SHA-256 of an image's shape, dtype and pixel bytes."""
    image = np.ascontiguousarray(image)
    digest = hashlib.sha256(f"{image.shape}|{image.dtype.str}|".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


class FeatureCache:
    """A directory of feature rows, one `.npy` file per (backbone, image digest).

    Layout: `<directory>/features-v<version>/<backbone>/<digest[:2]>/<digest>.npy`. Writes are
    atomic (temporary file + rename), so concurrent evaluations never read a partial file.
    Unreadable or mismatching files count as misses; failures to write are logged once, never
    raised (a read-only cache only costs time).

    Args:
        directory: The cache's root folder (created on the first store).
        backbone: The backbone's name (part of the key).
        dim: The backbone's feature dimension (a row of another length is a miss).
    """

    def __init__(self, directory: str | Path, backbone: str, dim: int) -> None:
        readable = re.sub(r"[^A-Za-z0-9._-]+", "_", backbone)[:60]
        identity = hashlib.sha256(backbone.encode()).hexdigest()[:8]
        self.directory = (
            Path(directory).expanduser()
            / f"features-v{STATS_CACHE_VERSION}"
            / f"{readable}-{identity}"
        )
        self.dim = dim
        self._write_failed = False

    def path(self, digest: str) -> Path:
        """The file that holds (or would hold) the row of the image with this digest."""
        return self.directory / digest[:2] / f"{digest}.npy"

    def load(self, digest: str) -> np.ndarray | None:
        """The cached feature row [D] of an image, or None on a miss."""
        path = self.path(digest)
        if not path.is_file():
            return None
        try:
            row = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            logger.warning("FID feature cache: cannot read %s (%s); recomputing", path, error)
            return None
        if row.shape != (self.dim,) or row.dtype != np.float64 or not np.isfinite(row).all():
            logger.warning("FID feature cache: %s is not a feature row; recomputing", path)
            return None
        return row

    def store(self, digests: Sequence[str], rows: np.ndarray) -> None:
        """Writes the rows of these images (atomically; errors are logged, not raised)."""
        for digest, row in zip(digests, rows, strict=True):
            path = self.path(digest)
            temp_name = None
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(
                    dir=path.parent, prefix=".tmp-", suffix=".npy", delete=False
                ) as f:
                    temp_name = f.name
                    np.save(f, np.asarray(row, dtype=np.float64), allow_pickle=False)
                os.replace(temp_name, path)
            except OSError as error:
                if temp_name is not None:
                    Path(temp_name).unlink(missing_ok=True)
                if not self._write_failed:
                    logger.warning(
                        "FID feature cache: cannot write %s (%s); continuing without", path, error
                    )
                self._write_failed = True
                return


def feature_cache(cache_dir: str | Path, backbone: Backbone) -> FeatureCache:
    """The data images' feature cache of a backbone: `<cache_dir>/fid_stats/` (any process).

    Args:
        cache_dir: The backbone's cache folder (`evaluate.backbone.cache_dir`; `~` expands).
        backbone: The feature network (its name and dimension are part of the key).
    """
    root = Path(cache_dir).expanduser() / STATS_DIRNAME
    return FeatureCache(root, backbone.name, backbone.feature_dim)


@dataclasses.dataclass
class StreamingFeatures:
    """FID sums and KID sample of an image set, fed one image at a time; mergeable.

    Images wait until `batch_size` of them have arrived; then the batch's cached rows are
    read, the backbone runs on the rest, and the batch's rows are added in arrival order (a
    cached and an uncached run of the same images in the same order give identical sums).
    Holds no backbone or cache (they are passed in), so Beam can pickle it.

    Attributes:
        max_samples: Capacity of the KID sample.
        stats: FID sufficient statistics of the rows added so far (None before the first).
        sample: The KID sample (rows of the smallest digests).
        pending: Images waiting for the batch to fill.
        pending_digests: Their digests (the keys of the sample).
        pending_cache_keys: Their keys in the feature cache: their own content digests.
        images: Images seen; `cached`: how many of them had a cached row.
    """

    max_samples: int
    stats: FeatureStats | None = None
    sample: FeatureSample | None = None
    pending: list[np.ndarray] = dataclasses.field(default_factory=list)
    pending_digests: list[str] = dataclasses.field(default_factory=list)
    pending_cache_keys: list[str] = dataclasses.field(default_factory=list)
    images: int = 0
    cached: int = 0

    def add(self, image: np.ndarray, digest: str, cache_key: str | None = None) -> None:
        """Queues one uint8 image [H, W, 3].

        Args:
            image: The image.
            digest: Its key in the sample: its :func:`image_digest`, or that of the image it
                pairs with (a translation or a ground truth is keyed by its source image, so
                the samples of both hold the same images, row for row).
            cache_key: Its own :func:`image_digest` when `digest` is another image's (the
                feature cache is keyed by content); default: `digest`.
        """
        self.pending.append(image)
        self.pending_digests.append(digest)
        self.pending_cache_keys.append(digest if cache_key is None else cache_key)
        self.images += 1

    def flush(
        self,
        backbone: Backbone,
        cache: FeatureCache | None,
        batch_size: int,
        force: bool = False,
    ) -> None:
        """Turns the waiting images into rows once a batch is full (or now, with `force`)."""
        while self.pending and (force or len(self.pending) >= batch_size):
            images, self.pending = self.pending[:batch_size], self.pending[batch_size:]
            digests = self.pending_digests[:batch_size]
            self.pending_digests = self.pending_digests[batch_size:]
            cache_keys = self.pending_cache_keys[:batch_size]
            self.pending_cache_keys = self.pending_cache_keys[batch_size:]
            self._add_batch(images, digests, cache_keys, backbone, cache)

    def _add_batch(self, images, digests, cache_keys, backbone, cache) -> None:
        rows = np.empty((len(images), backbone.feature_dim), dtype=np.float64)
        missing = []
        for index, key in enumerate(cache_keys):
            row = cache.load(key) if cache is not None else None
            if row is None:
                missing.append(index)
            else:
                rows[index] = row
        self.cached += len(images) - len(missing)
        if missing:
            rows[missing] = extract_features([images[i] for i in missing], backbone)
            if cache is not None:
                cache.store([cache_keys[i] for i in missing], rows[missing])
        self.add_rows(digests, rows)

    def add_rows(self, digests: Sequence[str], rows: np.ndarray) -> None:
        """Adds feature rows [n, D] with their digests."""
        if self.stats is None:
            self.stats = FeatureStats.empty(rows.shape[1])
            self.sample = FeatureSample.empty(self.max_samples, rows.shape[1])
        self.stats.add(rows)
        self.sample.add(list(digests), rows)

    def count(self) -> int:
        """Images seen (added rows and waiting images)."""
        return self.images

    def merge(self, other: StreamingFeatures) -> None:
        """Adds `other`'s rows and waiting images into this one, in place."""
        self.pending.extend(other.pending)
        self.pending_digests.extend(other.pending_digests)
        self.pending_cache_keys.extend(other.pending_cache_keys)
        self.images += other.images
        self.cached += other.cached
        if other.stats is not None:
            self.stats = other.stats.copy() if self.stats is None else self.stats.merge(other.stats)
            self.sample = (
                other.sample.copy() if self.sample is None else self.sample.merge(other.sample)
            )


@dataclasses.dataclass
class ImageSetStats:
    """FID statistics and KID sample of a set of images, and what produced them.

    Attributes:
        stats: Mergeable FID sufficient statistics of all the images' features.
        sample: The KID feature sample (rows of the images with the smallest digests).
        backbone: Name of the backbone that produced the features.
        cached: How many of the images' rows came from the cache.
    """

    stats: FeatureStats
    sample: FeatureSample
    backbone: str
    cached: int = 0


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


def reference_stats(
    images: Iterable[np.ndarray],
    backbone: Backbone,
    *,
    max_samples: int,
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
) -> ImageSetStats:
    """Statistics of an image set, streamed, with feature rows from the cache when possible.

    Args:
        images: uint8 images [H, W, 3] (or grayscale), any iterable (read once).
        backbone: The feature extractor; its `name` is part of the cache key.
        max_samples: Capacity of the KID sample.
        cache_dir: Directory of the feature cache; None disables caching.
        batch_size: Images per backbone forward pass.

    Returns:
        The statistics.

    Raises:
        ValueError: If there are no images.
    """
    cache = (
        FeatureCache(cache_dir, backbone.name, backbone.feature_dim)
        if cache_dir is not None
        else None
    )
    features = StreamingFeatures(max_samples)
    for image in images:
        features.add(image, image_digest(image))
        features.flush(backbone, cache, batch_size)
    features.flush(backbone, cache, batch_size, force=True)
    if features.stats is None:
        raise ValueError("no images")
    logger.info(
        "FID features: %d images, %d from the cache (backbone %s)",
        features.images,
        features.cached,
        backbone.name,
    )
    return ImageSetStats(features.stats, features.sample, backbone.name, features.cached)

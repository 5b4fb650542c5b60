"""Apache Beam combiner accumulating FID and KID feature statistics, so both run distributed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import apache_beam as beam
import numpy as np

from cyclegan_tfx.evaluation.fid.stats import FeatureSample, FeatureStats


class FeatureSetStats(NamedTuple):
    """What FID and KID need of one image set.

    Attributes:
        stats: Count, sum and sum of outer products of the features (FID).
        sample: The rows with the smallest keys, at most `capacity` (KID); in key order.
    """

    stats: FeatureStats
    sample: FeatureSample


class FeatureStatsCombineFn(beam.CombineFn):
    """Combines `(keys, features)` batches into one :class:`FeatureSetStats`.

    `keys` are one string per row (e.g. the image's SHA-256) and choose the KID sample, so the
    result is the same however a runner splits, orders and merges the batches (the sums up to
    float64 rounding).

    Example:
        stats = batches | beam.CombineGlobally(FeatureStatsCombineFn(2048, kid_max_samples=1000))
    """

    def __init__(self, feature_dim: int, kid_max_samples: int) -> None:
        """Creates the combiner.

        Args:
            feature_dim: Dimension D of the feature vectors (e.g. `Backbone.feature_dim`).
            kid_max_samples: Capacity of the KID sample.

        Raises:
            ValueError: If `feature_dim` or `kid_max_samples` < 1.
        """
        super().__init__()
        if feature_dim < 1:
            raise ValueError(f"feature_dim must be >= 1, got {feature_dim}")
        if kid_max_samples < 1:
            raise ValueError(f"kid_max_samples must be >= 1, got {kid_max_samples}")
        self._feature_dim = feature_dim
        self._kid_max_samples = kid_max_samples

    def create_accumulator(self) -> FeatureSetStats:
        """Returns empty statistics."""
        return FeatureSetStats(
            FeatureStats.empty(self._feature_dim),
            FeatureSample.empty(self._kid_max_samples, self._feature_dim),
        )

    def add_input(
        self, mutable_accumulator: FeatureSetStats, element: tuple[Sequence[str], np.ndarray]
    ) -> FeatureSetStats:
        """Adds one batch `(keys [N], features [N, D])` (in place)."""
        keys, features = element
        features = np.asarray(features)
        mutable_accumulator.stats.add(features)
        mutable_accumulator.sample.add(keys, features)
        return mutable_accumulator

    def merge_accumulators(self, accumulators: Iterable[FeatureSetStats]) -> FeatureSetStats:
        """Merges into the first accumulator (Beam allows mutating only that one)."""
        accumulators = iter(accumulators)
        first = next(accumulators, None)
        if first is None:
            return self.create_accumulator()
        for other in accumulators:
            first.stats.merge(other.stats)
            first.sample.merge(other.sample)
        return first

    def extract_output(self, accumulator: FeatureSetStats) -> FeatureSetStats:
        """Returns the accumulated statistics, the sample truncated to its capacity."""
        accumulator.sample.truncated()
        return accumulator

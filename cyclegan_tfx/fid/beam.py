"""Apache Beam combiner accumulating FID feature statistics, so FID runs distributed."""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
import numpy as np

from cyclegan_tfx.fid.stats import FeatureStats


class FeatureStatsCombineFn(beam.CombineFn):
    """Combines feature batches (np.ndarray [N, D]) into one :class:`FeatureStats`.

    Example:
        stats = batches | beam.CombineGlobally(FeatureStatsCombineFn(backbone.feature_dim))
    """

    def __init__(self, feature_dim: int) -> None:
        """Creates the combiner.

        Args:
            feature_dim: Dimension D of the feature vectors (e.g. `Backbone.feature_dim`).

        Raises:
            ValueError: If `feature_dim` < 1.
        """
        super().__init__()
        if feature_dim < 1:
            raise ValueError(f"feature_dim must be >= 1, got {feature_dim}")
        self._feature_dim = feature_dim

    def create_accumulator(self) -> FeatureStats:
        """Returns empty statistics."""
        return FeatureStats.empty(self._feature_dim)

    def add_input(self, mutable_accumulator: FeatureStats, element: np.ndarray) -> FeatureStats:
        """Adds one batch of features [N, D] (in place)."""
        return mutable_accumulator.add(np.asarray(element))

    def merge_accumulators(self, accumulators: Iterable[FeatureStats]) -> FeatureStats:
        """Merges into the first accumulator (Beam allows mutating only that one)."""
        accumulators = iter(accumulators)
        first = next(accumulators, None)
        if first is None:
            return self.create_accumulator()
        return first.merge(*accumulators)

    def extract_output(self, accumulator: FeatureStats) -> FeatureStats:
        """Returns the accumulated statistics."""
        return accumulator

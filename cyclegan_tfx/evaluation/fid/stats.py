"""Feature statistics for FID and KID, mergeable across batches and Beam workers.

Used by :mod:`cyclegan_tfx.evaluation.fid.beam` and the Evaluator's metric.

- :class:`FeatureStats`: FID's sufficient statistics (count, sum, sum of outer products).
- :class:`FeatureSample`: a bounded, order-independent sample of feature rows (KID, FID's
  bootstrap).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np


@dataclasses.dataclass(eq=False)
class FeatureStats:
    """Sufficient statistics of a set of feature vectors: count, sum and sum of outer products.

    Mutable on purpose: :meth:`add` and :meth:`merge` update the instance in place (and return it)
    so that a Beam CombineFn can accumulate without copying a [D, D] matrix per batch. Use
    :meth:`copy` when an independent instance is needed.

    Numerics: the covariance is computed with the one-pass formula
    ``(sum(x xᵀ) - n μ μᵀ) / (n - 1)``, which loses about ``log10(|μ|² / σ²)`` digits to
    cancellation. Inception features are O(1) (|μ|²/σ² of order 1 to 100), so float64 keeps
    well over 10 significant digits; do not use this for features with a huge offset.

    Attributes:
        count: Number of feature vectors seen.
        feature_sum: Sum of the feature vectors, float64 [D].
        outer_sum: Sum of their outer products x xᵀ, float64 [D, D].
    """

    count: int
    feature_sum: np.ndarray
    outer_sum: np.ndarray

    def __post_init__(self) -> None:
        self.feature_sum = np.asarray(self.feature_sum, dtype=np.float64)
        self.outer_sum = np.asarray(self.outer_sum, dtype=np.float64)
        if self.feature_sum.ndim != 1:
            raise ValueError(f"feature_sum must be 1-D, got shape {self.feature_sum.shape}")
        dim = self.feature_sum.shape[0]
        if self.outer_sum.shape != (dim, dim):
            raise ValueError(f"outer_sum must have shape {(dim, dim)}, got {self.outer_sum.shape}")
        if isinstance(self.count, bool) or int(self.count) != self.count or self.count < 0:
            raise ValueError(f"count must be a non-negative integer, got {self.count!r}")
        self.count = int(self.count)

    @classmethod
    def empty(cls, dim: int) -> FeatureStats:
        """Returns statistics of zero feature vectors of dimension `dim`."""
        if dim < 1:
            raise ValueError(f"feature dimension must be >= 1, got {dim}")
        return cls(0, np.zeros(dim), np.zeros((dim, dim)))

    @classmethod
    def from_features(cls, features: np.ndarray) -> FeatureStats:
        """Returns the statistics of a [N, D] batch of features."""
        features = np.asarray(features)
        if features.ndim != 2:
            raise ValueError(f"features must be [N, D], got shape {features.shape}")
        return cls.empty(features.shape[1]).add(features)

    @property
    def dim(self) -> int:
        """Feature dimension D."""
        return self.feature_sum.shape[0]

    def add(self, features: np.ndarray) -> FeatureStats:
        """Adds a batch of features, in place.

        Args:
            features: Array [N, D] (any float dtype; accumulated in float64). N may be 0.

        Returns:
            This instance, updated.

        Raises:
            ValueError: If the shape does not match or features are not finite.
        """
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"features must be [N, {self.dim}], got shape {features.shape}")
        if not np.isfinite(features).all():
            raise ValueError("features contain NaN or inf")
        self.count += features.shape[0]
        self.feature_sum += features.sum(axis=0)
        self.outer_sum += features.T @ features
        return self

    def merge(self, *others: FeatureStats) -> FeatureStats:
        """Adds the statistics of `others` into this instance, in place (others are unchanged).

        Returns:
            This instance, updated.

        Raises:
            ValueError: If a dimension differs.
        """
        for other in others:
            if other.dim != self.dim:
                raise ValueError(f"cannot merge stats of dimension {other.dim} into {self.dim}")
            self.count += other.count
            self.feature_sum += other.feature_sum
            self.outer_sum += other.outer_sum
        return self

    def copy(self) -> FeatureStats:
        """Returns an independent copy."""
        return FeatureStats(self.count, self.feature_sum.copy(), self.outer_sum.copy())

    def mean(self) -> np.ndarray:
        """Returns the mean feature vector, float64 [D].

        Raises:
            ValueError: If no features were added.
        """
        if self.count < 1:
            raise ValueError("mean of empty FeatureStats (count == 0)")
        return self.feature_sum / self.count

    def covariance(self) -> np.ndarray:
        """Returns the unbiased covariance (ddof=1, as np.cov), float64 [D, D].

        Raises:
            ValueError: If fewer than 2 features were added.
        """
        if self.count < 2:
            raise ValueError(f"covariance needs at least 2 feature vectors, got {self.count}")
        mean = self.mean()
        # One-pass formula; see the class docstring about cancellation.
        cov = (self.outer_sum - self.count * np.outer(mean, mean)) / (self.count - 1)
        return (cov + cov.T) / 2

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-serialisable dict; :meth:`from_dict` restores it exactly."""
        return {
            "count": self.count,
            "feature_sum": self.feature_sum.tolist(),
            "outer_sum": self.outer_sum.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureStats:
        """Rebuilds statistics from :meth:`to_dict` output."""
        return cls(data["count"], np.asarray(data["feature_sum"]), np.asarray(data["outer_sum"]))

    def save(self, path: str | Path) -> None:
        """Writes the statistics to a .npz file (compact, exact; preferred for D = 2048)."""
        with Path(path).open("wb") as f:
            np.savez(
                f,
                count=np.int64(self.count),
                feature_sum=self.feature_sum,
                outer_sum=self.outer_sum,
            )

    @classmethod
    def load(cls, path: str | Path) -> FeatureStats:
        """Reads statistics written by :meth:`save`."""
        with np.load(Path(path)) as data:
            return cls(int(data["count"]), data["feature_sum"], data["outer_sum"])


@dataclasses.dataclass(eq=False)
class FeatureSample:
    """A bounded, mergeable sample of feature rows for KID: the rows with the smallest keys.

    Each row comes with a key (e.g. the hex SHA-256 of its image). The sample keeps the
    `capacity` rows with the smallest keys ("bottom-k" sampling): the same rows however the data
    was split, ordered and merged, and a uniform random sample when the keys behave like random
    numbers (content hashes do). The truncated sample is in key order, so it is reproducible.
    Mutable like :class:`FeatureStats`: :meth:`add` and :meth:`merge` work in place. To keep
    adds cheap the sample may hold up to 2 * capacity rows in any order between truncations;
    call :meth:`truncated` before reading `keys` / `rows`.

    Attributes:
        capacity: Maximum number of rows kept.
        keys: The rows' keys, a str array [n].
        rows: The feature rows, float64 [n, D].
    """

    capacity: int
    keys: np.ndarray
    rows: np.ndarray

    def __post_init__(self) -> None:
        if isinstance(self.capacity, bool) or int(self.capacity) != self.capacity:
            raise ValueError(f"capacity must be an integer, got {self.capacity!r}")
        if self.capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {self.capacity}")
        self.capacity = int(self.capacity)
        self.keys = np.asarray(self.keys, dtype=str).reshape(-1)
        self.rows = np.asarray(self.rows, dtype=np.float64)
        if self.rows.ndim != 2 or self.rows.shape[0] != self.keys.shape[0]:
            raise ValueError(
                f"rows must be [n, D] with one key per row, got {self.rows.shape} rows and "
                f"{self.keys.shape[0]} keys"
            )
        self._shrink(2 * self.capacity)

    @classmethod
    def empty(cls, capacity: int, dim: int) -> FeatureSample:
        """Returns an empty sample of rows of dimension `dim`."""
        if dim < 1:
            raise ValueError(f"feature dimension must be >= 1, got {dim}")
        return cls(capacity, np.empty(0, dtype=str), np.empty((0, dim)))

    @property
    def dim(self) -> int:
        """Feature dimension D."""
        return self.rows.shape[1]

    def __len__(self) -> int:
        """Number of rows the final (truncated) sample has."""
        return min(self.keys.shape[0], self.capacity)

    def _shrink(self, limit: int) -> None:
        """Keeps the `capacity` smallest keys, sorted, once more than `limit` rows are held."""
        if self.keys.shape[0] > limit:
            order = np.argsort(self.keys, kind="stable")[: self.capacity]
            self.keys, self.rows = self.keys[order], self.rows[order]

    def add(self, keys: list[str] | np.ndarray, rows: np.ndarray) -> FeatureSample:
        """Adds rows with their keys, in place.

        Args:
            keys: One key per row (str).
            rows: Array [n, D].

        Returns:
            This instance, updated.

        Raises:
            ValueError: If shapes do not match or rows are not finite.
        """
        keys = np.asarray(keys, dtype=str).reshape(-1)
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.dim or rows.shape[0] != keys.shape[0]:
            raise ValueError(
                f"need [n, {self.dim}] rows and n keys, got rows {rows.shape} and "
                f"{keys.shape[0]} keys"
            )
        if not np.isfinite(rows).all():
            raise ValueError("features contain NaN or inf")
        self.keys = np.concatenate([self.keys, keys])
        self.rows = np.concatenate([self.rows, rows])
        self._shrink(2 * self.capacity)
        return self

    def merge(self, *others: FeatureSample) -> FeatureSample:
        """Adds the rows of `others` into this sample, in place (others are unchanged)."""
        for other in others:
            if other.dim != self.dim:
                raise ValueError(f"cannot merge a sample of dimension {other.dim} into {self.dim}")
            self.keys = np.concatenate([self.keys, other.keys])
            self.rows = np.concatenate([self.rows, other.rows])
            self._shrink(2 * self.capacity)
        return self

    def truncated(self) -> FeatureSample:
        """Cuts this sample to its `capacity` smallest keys, sorted by key, in place.

        Returns:
            This instance, with at most `capacity` rows in key order.
        """
        order = np.argsort(self.keys, kind="stable")[: self.capacity]
        self.keys, self.rows = self.keys[order], self.rows[order]
        return self

    def copy(self) -> FeatureSample:
        """Returns an independent copy."""
        return FeatureSample(self.capacity, self.keys.copy(), self.rows.copy())

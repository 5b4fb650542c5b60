"""FID and KID from image features, in pure numpy (float64).

Follows pytorch-fid / TTUR (Heusel et al. 2017) for the Fréchet distance and Bińkowski et al.
2018 for the Kernel Inception Distance. Feature statistics are kept as mergeable sufficient
statistics (:class:`FeatureStats`) so that they can be accumulated batch by batch and across
workers (see :mod:`cyclegan_tfx.fid.beam`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.linalg

logger = logging.getLogger(__name__)

FrechetMethod = Literal["eigh", "sqrtm"]


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


def _check_gaussian(mu: np.ndarray, sigma: np.ndarray, which: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1:
        raise ValueError(f"mu{which} must be 1-D, got shape {mu.shape}")
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(
            f"sigma{which} must have shape {(mu.shape[0], mu.shape[0])} to match mu{which}, "
            f"got {sigma.shape}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"mu{which}/sigma{which} contain NaN or inf")
    return mu, sigma


def _clip_round_off(eigvals: np.ndarray) -> np.ndarray:
    """Zeroes the eigenvalues of a PSD matrix that are round-off noise.

    Eigenvalues below max|λ| * D * machine-eps (numpy's matrix_rank tolerance), negative ones
    included, are set to 0: the square root would amplify noise ε to √ε (e.g. 1e-14 -> 1e-7 per
    eigenvalue, summed over the up to D - N null directions of a covariance from N < D samples).
    """
    tol = np.abs(eigvals).max(initial=0.0) * eigvals.shape[0] * np.finfo(np.float64).eps
    return np.where(eigvals > tol, eigvals, 0.0)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix."""
    eigvals, eigvecs = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigvecs * np.sqrt(_clip_round_off(eigvals))) @ eigvecs.T


def _trace_sqrt_product_eigh(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    # tr sqrt(S1 S2) = tr sqrt(sqrt(S1) S2 sqrt(S1)): the two matrices are similar, and the
    # second is symmetric PSD, so its square root's trace is the sum of sqrt(eigenvalues).
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    eigvals = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(_clip_round_off(eigvals)).sum())


def _trace_sqrt_product_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    # The pytorch-fid / TTUR reference route.
    covmean, _ = scipy.linalg.sqrtm(sigma1 @ sigma2, disp=False)
    if not np.isfinite(covmean).all():
        logger.warning("FID: singular product; adding %g to the diagonal of the covariances", eps)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean, _ = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset), disp=False)
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"FID (sqrtm): imaginary component {np.max(np.abs(covmean.imag)):g}; "
                "use method='eigh'"
            )
        covmean = covmean.real
    return float(np.trace(covmean))


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    method: FrechetMethod = "eigh",
    eps: float = 1e-6,
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    d² = ‖mu1 - mu2‖² + tr(sigma1) + tr(sigma2) - 2 tr(sqrt(sigma1 sigma2)).

    Args:
        mu1: Mean [D] of the first Gaussian.
        sigma1: Covariance [D, D] of the first Gaussian (symmetric PSD).
        mu2: Mean [D] of the second Gaussian.
        sigma2: Covariance [D, D] of the second Gaussian.
        method: "eigh" (default): tr(sqrt(sqrt(S1) S2 sqrt(S1))) with symmetric
            eigendecompositions, where eigenvalues below max|λ| * D * eps (round-off, negative
            ones included) count as 0; stable and never NaN for singular covariances (N < D).
            "sqrtm": the pytorch-fid / TTUR reference (scipy.linalg.sqrtm of S1 S2, retried with
            eps * I added when not finite, small imaginary parts dropped), for cross-checking;
            like the reference it raises on a large imaginary part, which happens for strongly
            singular covariances (e.g. N = 100, D = 256).
        eps: Diagonal offset of the "sqrtm" retry.

    Returns:
        The squared Fréchet distance (the "FID" value), clipped at 0 against round-off.

    Raises:
        ValueError: On mismatched shapes, non-finite inputs or an unknown method.
    """
    mu1, sigma1 = _check_gaussian(mu1, sigma1, "1")
    mu2, sigma2 = _check_gaussian(mu2, sigma2, "2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"dimension mismatch: mu1 {mu1.shape} vs mu2 {mu2.shape}")
    if method == "eigh":
        tr_covmean = _trace_sqrt_product_eigh(sigma1, sigma2)
    elif method == "sqrtm":
        tr_covmean = _trace_sqrt_product_sqrtm(sigma1, sigma2, eps)
    else:
        raise ValueError(f"unknown method {method!r}; expected 'eigh' or 'sqrtm'")
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
    return max(value, 0.0)


def fid_from_stats(
    stats_a: FeatureStats, stats_b: FeatureStats, method: FrechetMethod = "eigh"
) -> float:
    """FID between two sets of features given as :class:`FeatureStats`.

    Logs a warning when a set has fewer samples than feature dimensions: FID is strongly biased
    upwards at small N (Chong & Forsyth 2020), so only compare values computed at the same N.

    Args:
        stats_a: Statistics of the first set (at least 2 samples).
        stats_b: Statistics of the second set (at least 2 samples).
        method: See :func:`frechet_distance`.

    Returns:
        The FID.

    Raises:
        ValueError: On a dimension mismatch or fewer than 2 samples in a set.
    """
    if stats_a.dim != stats_b.dim:
        raise ValueError(f"feature dimension mismatch: {stats_a.dim} vs {stats_b.dim}")
    for label, stats in (("a", stats_a), ("b", stats_b)):
        if stats.count < stats.dim:
            logger.warning(
                "FID: set %s has %d samples < feature dimension %d; the covariance is singular "
                "and FID is biased upwards at small N: compare only FIDs computed at equal N",
                label,
                stats.count,
                stats.dim,
            )
    return frechet_distance(
        stats_a.mean(), stats_a.covariance(), stats_b.mean(), stats_b.covariance(), method
    )


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def kernel_inception_distance(
    features1: np.ndarray,
    features2: np.ndarray,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al. 2018), as in their reference code.

    Per subset, the unbiased MMD² estimate with the cubic polynomial kernel
    k(x, y) = (x·y / D + 1)³: the within-set kernel means exclude the diagonal, the cross term
    is the mean over all m² pairs (the reference "unbiased" estimator, as in torch-fidelity and
    clean-fid). Subsets are drawn without replacement from each set.

    Args:
        features1: Features [N1, D].
        features2: Features [N2, D].
        num_subsets: Number of random subsets.
        subset_size: Samples per subset; clipped (with a warning) to min(N1, N2). When it
            equals both N1 and N2 every subset is the whole data: one estimate, std 0.
        seed: Seed of the subset sampling.

    Returns:
        (mean, std) of the per-subset MMD² estimates (std with ddof=0, as the references).

    Raises:
        ValueError: On bad shapes, fewer than 2 samples, or non-positive sizes.
    """
    x = np.asarray(features1, dtype=np.float64)
    y = np.asarray(features2, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"features must be [N1, D] and [N2, D], got {x.shape} and {y.shape}")
    if num_subsets < 1 or subset_size < 2:
        raise ValueError("num_subsets must be >= 1 and subset_size >= 2")
    m = min(x.shape[0], y.shape[0])
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {x.shape[0]}, {y.shape[0]}")
    if subset_size > m:
        logger.warning("KID: subset_size %d > available samples; using %d", subset_size, m)
        subset_size = m
    if subset_size == x.shape[0] == y.shape[0]:
        # Every subset is the whole of both sets: all estimates are equal (std exactly 0).
        num_subsets = 1
    rng = np.random.default_rng(seed)
    estimates = np.empty(num_subsets)
    for i in range(num_subsets):
        xs = x[rng.choice(x.shape[0], subset_size, replace=False)]
        ys = y[rng.choice(y.shape[0], subset_size, replace=False)]
        k_xx = _polynomial_kernel(xs, xs)
        k_yy = _polynomial_kernel(ys, ys)
        k_xy = _polynomial_kernel(xs, ys)
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (
            subset_size * (subset_size - 1)
        )
        estimates[i] = within - 2.0 * k_xy.sum() / subset_size**2
    return float(estimates.mean()), float(estimates.std())


def fid_from_rows(rows_a: np.ndarray, rows_b: np.ndarray) -> float:
    """FID between two sets of feature rows, computed in sample space.

    With centred rows X_a [n, D] and X_b [m, D], Σ_a = X_aᵀX_a / (n-1) and likewise Σ_b. The
    non-zero eigenvalues of Σ_a Σ_b are those of (X_a X_bᵀ)(X_b X_aᵀ) / ((n-1)(m-1)), so
    tr √(Σ_a Σ_b) is the sum of the singular values of X_a X_bᵀ divided by √((n-1)(m-1)):
    an exact identity, and for N ≪ D (test splits against Inception's 2048 features) an n x m
    problem instead of two D x D eigendecompositions. Equal to :func:`fid_from_stats` on the
    same rows up to round-off (tested).

    Args:
        rows_a: Features [n, D], n >= 2.
        rows_b: Features [m, D], m >= 2.

    Returns:
        The FID, clipped at 0 against round-off.
    """
    rows_a, rows_b = np.asarray(rows_a, np.float64), np.asarray(rows_b, np.float64)
    if rows_a.ndim != 2 or rows_b.ndim != 2 or rows_a.shape[1] != rows_b.shape[1]:
        raise ValueError(f"need [n, D] and [m, D] rows, got {rows_a.shape} and {rows_b.shape}")
    n, m = rows_a.shape[0], rows_b.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"FID needs at least 2 rows per set, got {n} and {m}")
    mu_a, mu_b = rows_a.mean(axis=0), rows_b.mean(axis=0)
    centred_a, centred_b = rows_a - mu_a, rows_b - mu_b
    trace_a = float((centred_a**2).sum()) / (n - 1)
    trace_b = float((centred_b**2).sum()) / (m - 1)
    singular = np.linalg.svd(centred_a @ centred_b.T, compute_uv=False)
    tr_covmean = float(singular.sum()) / np.sqrt((n - 1) * (m - 1))
    diff = mu_a - mu_b
    return max(float(diff @ diff) + trace_a + trace_b - 2.0 * tr_covmean, 0.0)


def bootstrap_fid_std(
    rows_a: np.ndarray, rows_b: np.ndarray, samples: int, seed: int = 0
) -> float | None:
    """The spread of FID over the test images: std of FID over bootstrap resamples.

    Each resample draws n of the rows of `rows_a` and m of `rows_b` with replacement (the test
    images of both sides resampled independently) and computes :func:`fid_from_rows`.

    Args:
        rows_a: Features [n, D] of one set (all of its images, or a uniform sample of them).
        rows_b: Features [m, D] of the other.
        samples: Number of resamples; 0 disables (returns None).
        seed: Seed of the resampling (reports are reproducible).

    Returns:
        The standard deviation (ddof=1), or None.
    """
    if samples <= 0 or len(rows_a) < 2 or len(rows_b) < 2:
        return None
    rng = np.random.default_rng(seed)
    values = [
        fid_from_rows(
            rows_a[rng.integers(0, len(rows_a), len(rows_a))],
            rows_b[rng.integers(0, len(rows_b), len(rows_b))],
        )
        for _ in range(samples)
    ]
    return float(np.std(values, ddof=1))


def bootstrap_fid_ratio_std(
    rows_fake: np.ndarray,
    rows_source: np.ndarray,
    rows_target: np.ndarray,
    samples: int,
    seed: int = 0,
) -> float | None:
    """The spread of FID(translated, target) / FID(source, target) over the test images.

    `rows_fake[i]` must be the translation of the image of `rows_source[i]`: each resample draws
    the same source images for both FIDs (and the same target images), so the noise the two
    FIDs share cancels in the ratio, as it does in the gate's comparison.

    Args:
        rows_fake: Features [n, D] of the translated images.
        rows_source: Features [n, D] of the same images untranslated, row for row.
        rows_target: Features [m, D] of the real target domain.
        samples: Number of resamples; 0 disables (returns None).
        seed: Seed of the resampling.

    Returns:
        The standard deviation (ddof=1) of the ratio, or None.
    """
    if len(rows_fake) != len(rows_source):
        raise ValueError(f"{len(rows_fake)} translated rows for {len(rows_source)} source rows")
    if samples <= 0 or len(rows_fake) < 2 or len(rows_target) < 2:
        return None
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(samples):
        i = rng.integers(0, len(rows_fake), len(rows_fake))
        j = rng.integers(0, len(rows_target), len(rows_target))
        identity = fid_from_rows(rows_source[i], rows_target[j])
        ratios.append(fid_from_rows(rows_fake[i], rows_target[j]) / identity)
    return float(np.std(ratios, ddof=1))

"""FID and KID from image features, in pure numpy (float64).

Follows pytorch-fid / TTUR (Heusel et al. 2017) for the Fréchet distance and Bińkowski et al.
2018 for the Kernel Inception Distance. The feature statistics these take are in
:mod:`cyclegan_tfx.evaluation.fid.stats` (mergeable, so they accumulate batch by batch and across
workers).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import scipy.linalg

from cyclegan_tfx.evaluation.fid.stats import FeatureStats

logger = logging.getLogger(__name__)

FrechetMethod = Literal["eigh", "sqrtm"]


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
        subset_size: Samples per subset; clipped (logged) to min(N1, N2). When it
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
        logger.info("KID: subset_size %d > available samples; using %d", subset_size, m)
        subset_size = m
    if subset_size == x.shape[0] == y.shape[0]:
        # Every subset is the whole of both sets: all estimates are equal (std exactly 0).
        num_subsets = 1
    rng = np.random.default_rng(seed)
    estimates = np.empty(num_subsets)
    for i in range(num_subsets):
        xs = x[rng.choice(x.shape[0], subset_size, replace=False)]
        ys = y[rng.choice(y.shape[0], subset_size, replace=False)]
        estimates[i] = kid_estimate(xs, ys)
    return float(estimates.mean()), float(estimates.std())


def kid_estimate(xs: np.ndarray, ys: np.ndarray) -> float:
    """The reference KID estimate (unbiased MMD²) of two equal-size sets [m, D]."""
    m = xs.shape[0]
    k_xx = _polynomial_kernel(xs, xs)
    k_yy = _polynomial_kernel(ys, ys)
    k_xy = _polynomial_kernel(xs, ys)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / m**2)


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


def fid_gap_closed(fid: float, fid_identity: float, fid_truth: float) -> float:
    """The share of FID's gap from doing nothing to the ground truth that a translation closes.

    (FID(identity) - FID(translated)) / (FID(identity) - FID(truth)), each against the real
    target images: 1 for a perfect translation (it scores what the true translations score),
    0 for doing nothing, negative when worse than doing nothing. FID(truth) is the floor that
    no translation can go below in expectation: the true translations of the test source
    images are not the test target images (different content), and FID measures that too.

    When doing nothing already scores at or below the truth (FID cannot tell the domains apart
    on these images): 1 if the translation scores at or below the truth too, else 0.
    """
    gap = fid_identity - fid_truth
    if gap <= 0:
        return 1.0 if fid <= fid_truth else 0.0
    return (fid_identity - fid) / gap

"""Paired (ground-truth) image metrics: MAE, PSNR and SSIM, per image, in pure NumPy.

Used where a test image comes with its true translation (see `data/testA_truthB/`): the
translated image is compared pixel by pixel with the truth, as papers do on paired benchmarks
(maps, facades, Cityscapes). All inputs are uint8 RGB images `[H, W, 3]` in 0-255.

- MAE: mean absolute difference in grey levels (0-255), over pixels and channels.
- PSNR: `10 log10(255^2 / MSE)` dB; identical images give :data:`PSNR_CAP` instead of infinity.
- SSIM: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  L = 255, computed per channel on the "valid" region and averaged (scikit-image's
  `structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=255, channel_axis=-1)`, against which it is tested).

:func:`bootstrap_mean_std` gives the spread of a mean over test images.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

PSNR_CAP = 100.0
"""dB reported for identical images (PSNR is infinite there)."""
_SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5  # an 11x11 window: radius int(3.5 * 1.5 + 0.5) = 5
_K1, _K2, _RANGE = 0.01, 0.03, 255.0


@dataclasses.dataclass(frozen=True)
class PairedScores:
    """The three scores of one image against its ground truth."""

    mae: float
    psnr: float
    ssim: float


def _check_pair(image: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image, truth = np.asarray(image), np.asarray(truth)
    if image.shape != truth.shape or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected two [H, W, 3] images of one shape, got {image.shape} and {truth.shape}"
        )
    return image.astype(np.float64), truth.astype(np.float64)


def mae(image: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error in grey levels."""
    x, y = _check_pair(image, truth)
    return float(np.abs(x - y).mean())


def psnr(image: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB (capped at :data:`PSNR_CAP`)."""
    x, y = _check_pair(image, truth)
    mse = float(((x - y) ** 2).mean())
    if mse == 0.0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * np.log10(_RANGE**2 / mse))


def ssim(image: np.ndarray, truth: np.ndarray) -> float:
    """Structural similarity (see the module docstring for the exact variant)."""
    x, y = _check_pair(image, truth)
    radius = int(_SSIM_TRUNCATE * _SSIM_SIGMA + 0.5)
    if min(x.shape[:2]) < 2 * radius + 1:
        raise ValueError(f"SSIM needs images of at least {2 * radius + 1} px, got {x.shape}")
    c1, c2 = (_K1 * _RANGE) ** 2, (_K2 * _RANGE) ** 2
    values = []
    for channel in range(3):
        a, b = x[..., channel], y[..., channel]

        def blur(z):
            return ndimage.gaussian_filter(z, _SSIM_SIGMA, truncate=_SSIM_TRUNCATE)

        mu_a, mu_b = blur(a), blur(b)
        var_a = blur(a * a) - mu_a**2
        var_b = blur(b * b) - mu_b**2
        cov = blur(a * b) - mu_a * mu_b
        index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
            (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
        )
        values.append(index[radius:-radius, radius:-radius].mean())
    return float(np.mean(values))


def paired_scores(image: np.ndarray, truth: np.ndarray) -> PairedScores:
    """MAE, PSNR and SSIM of `image` against `truth`."""
    return PairedScores(mae(image, truth), psnr(image, truth), ssim(image, truth))


def bootstrap_mean_std(values: np.ndarray, samples: int, seed: int = 0) -> float | None:
    """Standard deviation of the mean of `values` over bootstrap resamples of them.

    Args:
        values: One value per test image.
        samples: Number of resamples (0: none, returns None).
        seed: Seed of the resampling (fixed, so reports are reproducible).

    Returns:
        The spread, or None with no resamples or fewer than 2 values.
    """
    values = np.asarray(values, dtype=np.float64)
    if samples <= 0 or values.size < 2:
        return None
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, values.size, size=(samples, values.size))
    return float(values[indices].mean(axis=1).std(ddof=1))

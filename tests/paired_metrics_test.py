"""Paired metrics against closed forms and scikit-image's reference implementations."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from cyclegan_tfx.evaluation import paired_metrics


def _images(seed, size=32):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 256, (size, size, 3)).astype(np.uint8)
    noise = rng.normal(0, 20, truth.shape)
    image = np.clip(truth + noise, 0, 255).astype(np.uint8)
    return image, truth


def test_mae_closed_form():
    truth = np.zeros((16, 16, 3), np.uint8)
    assert paired_metrics.mae(truth + 10, truth) == 10.0
    half = truth.copy()
    half[:8] = 255
    assert paired_metrics.mae(half, truth) == pytest.approx(127.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psnr_matches_scikit_image(seed):
    image, truth = _images(seed)
    expected = peak_signal_noise_ratio(truth, image, data_range=255)
    assert paired_metrics.psnr(image, truth) == pytest.approx(expected, rel=1e-12)


def test_psnr_closed_form_and_cap():
    truth = np.full((16, 16, 3), 100, np.uint8)
    # MSE = 1 -> 10 log10(255^2) = 48.13 dB
    assert paired_metrics.psnr(truth + 1, truth) == pytest.approx(20 * np.log10(255), rel=1e-12)
    assert paired_metrics.psnr(truth, truth) == paired_metrics.PSNR_CAP


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_matches_scikit_image(seed):
    image, truth = _images(seed, size=40)
    expected = structural_similarity(
        truth,
        image,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1,
    )
    assert paired_metrics.ssim(image, truth) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_ssim_is_one_for_identical_images_and_lower_for_different_ones():
    image, truth = _images(3)
    assert paired_metrics.ssim(truth, truth) == pytest.approx(1.0)
    assert paired_metrics.ssim(image, truth) < 0.99
    assert paired_metrics.ssim(np.zeros_like(truth), truth) < 0.05


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="one shape"):
        paired_metrics.mae(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)))
    with pytest.raises(ValueError, match="at least 11 px"):
        paired_metrics.ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))


def test_bootstrap_spread_matches_the_standard_error():
    values = np.random.default_rng(4).normal(0, 1, 400)
    spread = paired_metrics.bootstrap_mean_std(values, samples=2000, seed=1)
    standard_error = values.std(ddof=1) / np.sqrt(values.size)
    assert spread == pytest.approx(standard_error, rel=0.1)
    assert paired_metrics.bootstrap_mean_std(values, samples=0) is None
    assert paired_metrics.bootstrap_mean_std(values[:1], samples=10) is None
    once = paired_metrics.bootstrap_mean_std(values, 50, seed=3)
    assert once == paired_metrics.bootstrap_mean_std(values, 50, 3)

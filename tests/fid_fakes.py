"""Test doubles for the FID tests: a tiny deterministic backbone that counts its images."""

from __future__ import annotations

import numpy as np

FAKE_DIM = 8


class CountingBackbone:
    """Maps uint8 images to 8 cheap features (channel means, stds, ...) and counts the calls."""

    is_standard = False
    feature_dim = FAKE_DIM

    def __init__(self, name: str = "fake-colour-stats") -> None:
        self.name = name
        self.images_seen = 0
        self.calls = 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ValueError("images must be uint8")
        x = images.astype(np.float64) / 255.0
        self.calls += 1
        self.images_seen += x.shape[0]
        mean = x.mean(axis=(1, 2))
        std = x.std(axis=(1, 2))
        extra = [mean[:, :1] * std[:, 1:2], x.max(axis=(1, 2, 3))[:, None]]
        return np.concatenate([mean, std, *extra], axis=1)


def random_images(count: int, size: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Random smooth-ish uint8 images; `shift` brightens them."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 200, (count, 1, 1, 3)) + rng.uniform(0, 55, (count, size, size, 3))
    return np.clip(base + shift, 0, 255).astype(np.uint8)

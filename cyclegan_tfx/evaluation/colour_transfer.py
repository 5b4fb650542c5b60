"""The colour-transfer baseline: per-channel statistics matching (Reinhard et al. 2001).

What a translation must beat besides doing nothing: each domain's per-channel mean and standard
deviation, fitted on its training split, and every image mapped channel by channel,
`(x - mean_source) / std_source * std_target + mean_target`. Six numbers per domain and no
training; it reproduces any global colour grade well and no change of texture or structure.

The channels are CIE L*a*b* (D65): measured on the colour-grade sample dataset, Lab is the
stronger baseline (MAE against the ground truth 5.0 / 8.2 grey levels A->B / B->A, against
RGB's 10.3 / 10.4 and Reinhard's own l-alpha-beta's 8.1 / 12.5), because its channels are
decorrelated and its lightness is perceptual. `docs/gate.md` has the table.

The math is written once against a NumPy-like module `xp` (`numpy`, or `tf.experimental.numpy`
inside a SavedModel), so the statistics fitted in the Beam job and a model that applies them
compute the same thing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

# sRGB (D65) -> XYZ, and the D65 white point (the conversion of skimage.color.rgb2lab).
_RGB_TO_XYZ = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
_WHITE = np.array([0.95047, 1.0, 1.08883])
_EPSILON = (6.0 / 29.0) ** 3
_MIN_STD = 1e-3  # a flat channel (a constant-colour domain) is not amplified into noise


def rgb_to_lab(rgb: Any, xp: Any = np) -> Any:
    """uint8 or [0, 255] float RGB [..., 3] -> CIE L*a*b* [..., 3] (L in 0..100)."""
    x = xp.asarray(rgb, dtype=xp.float64) / 255.0
    linear = xp.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
    xyz = xp.matmul(linear, xp.asarray(_RGB_TO_XYZ.T)) / xp.asarray(_WHITE)
    f = xp.where(xyz > _EPSILON, xp.cbrt(xyz), xyz / (3 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return xp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_rgb(lab: Any, xp: Any = np) -> Any:
    """CIE L*a*b* [..., 3] -> RGB [..., 3] as float in [0, 255] (out-of-gamut clipped)."""
    lab = xp.asarray(lab, dtype=xp.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = xp.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    delta = 6.0 / 29.0
    xyz = xp.where(f > delta, f**3, 3 * delta**2 * (f - 4.0 / 29.0)) * xp.asarray(_WHITE)
    linear = xp.clip(xp.matmul(xyz, xp.asarray(np.linalg.inv(_RGB_TO_XYZ).T)), 0.0, 1.0)
    rgb = xp.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, 12.92 * linear)
    return xp.clip(rgb * 255.0, 0.0, 255.0)


@dataclasses.dataclass(frozen=True)
class ChannelStats:
    """Per-channel mean and standard deviation of a domain's pixels in Lab."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def to_dict(self) -> dict[str, list[float]]:
        """JSON form."""
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> ChannelStats:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["mean"]), tuple(data["std"]))  # type: ignore[arg-type]


@dataclasses.dataclass
class ChannelSums:
    """Mergeable sums of Lab pixels: what the Beam job accumulates per domain."""

    count: int = 0
    total: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))
    squares: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))

    def add(self, image: np.ndarray) -> ChannelSums:
        """Adds the pixels of one uint8 RGB image [H, W, 3]."""
        lab = rgb_to_lab(image).reshape(-1, 3)
        self.count += lab.shape[0]
        self.total = self.total + lab.sum(axis=0)
        self.squares = self.squares + (lab**2).sum(axis=0)
        return self

    def merge(self, other: ChannelSums) -> ChannelSums:
        """The sums of both."""
        return ChannelSums(
            self.count + other.count, self.total + other.total, self.squares + other.squares
        )

    def stats(self) -> ChannelStats:
        """Mean and (population) standard deviation per channel.

        Raises:
            ValueError: Without any pixel.
        """
        if self.count == 0:
            raise ValueError("colour statistics of a domain without images")
        mean = self.total / self.count
        std = np.sqrt(np.maximum(self.squares / self.count - mean**2, 0.0))
        return ChannelStats(tuple(float(v) for v in mean), tuple(float(v) for v in std))


def fit(images: Any) -> ChannelStats:
    """The Lab statistics of uint8 RGB images [N, H, W, 3] (or an iterable of [H, W, 3])."""
    sums = ChannelSums()
    for image in images:
        sums.add(np.asarray(image))
    return sums.stats()


def transfer_float(images: Any, source: ChannelStats, target: ChannelStats, xp: Any = np) -> Any:
    """Colour transfer of RGB images [..., H, W, 3] in [0, 255], as float in [0, 255]."""
    lab = rgb_to_lab(images, xp)
    source_std = xp.maximum(xp.asarray(source.std), _MIN_STD)
    scaled = (lab - xp.asarray(source.mean)) / source_std * xp.asarray(target.std)
    return lab_to_rgb(scaled + xp.asarray(target.mean), xp)


def transfer(images: Any, source: ChannelStats, target: ChannelStats) -> np.ndarray:
    """Colour transfer of uint8 RGB images [..., H, W, 3] from `source` to `target` statistics.

    Returns:
        uint8 images of the same shape (rounded, clipped).
    """
    return np.round(transfer_float(images, source, target)).astype(np.uint8)

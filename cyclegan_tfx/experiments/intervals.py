"""Means over seeds with confidence intervals, and paired differences (for studies).

Seeds are few (3 to 10), so intervals use Student's t distribution: mean ± t(0.975, n-1) *
sd / sqrt(n). A paired difference compares two variants run with the same seeds: the interval
of the per-seed differences, which removes the seed-to-seed variation both share.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from scipy import stats


@dataclasses.dataclass(frozen=True)
class Interval:
    """A mean and the half-width of its confidence interval.

    Attributes:
        mean: The mean of the values.
        half_width: Half-width of the interval (NaN for fewer than 2 values).
        n: Number of values.
    """

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        """Lower end of the interval."""
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        """Upper end of the interval."""
        return self.mean + self.half_width

    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of 0 (a difference beyond the noise)."""
        return math.isfinite(self.half_width) and (self.low > 0 or self.high < 0)

    def format(self, digits: int = 3) -> str:
        """`mean ± half_width` with `digits` significant digits."""
        if not math.isfinite(self.half_width):
            return f"{self.mean:.{digits}g}"
        return f"{self.mean:.{digits}g} ± {self.half_width:.2g}"


def mean_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """The mean of `values` with its Student-t confidence interval.

    Args:
        values: One value per seed (finite).
        level: Confidence level.

    Raises:
        ValueError: If there are no values or one is not finite.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no values")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"values must be finite, got {values}")
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return Interval(mean, float("nan"), n)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    t = float(stats.t.ppf(0.5 + level / 2, n - 1))
    return Interval(mean, t * sd / math.sqrt(n), n)


def paired_difference(
    treatment: Sequence[float], control: Sequence[float], level: float = 0.95
) -> Interval:
    """Interval of treatment - control over runs paired by seed.

    Raises:
        ValueError: If the two sequences differ in length.
    """
    if len(treatment) != len(control):
        raise ValueError(f"{len(treatment)} treatment values for {len(control)} control values")
    return mean_interval([t - c for t, c in zip(treatment, control, strict=True)], level)

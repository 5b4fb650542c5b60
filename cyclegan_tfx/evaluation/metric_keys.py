"""The names of every metric the Evaluator emits, defined once.

Per translation direction (`a2b`: translated test A images judged against domain B, `b2a` the
reverse), :class:`DirectionKeys` names the keys of the TFMA metric
(`components/quality_metrics.py`), of `metrics/evaluation.json`, the registry and the plots.
"""

from __future__ import annotations

import dataclasses

from cyclegan_tfx.config import DIRECTIONS

PAIRED_METRICS = ("mae", "psnr", "ssim")
"""Ground-truth metrics: MAE (grey levels, lower is better), PSNR (dB) and SSIM (higher)."""
HIGHER_IS_BETTER = frozenset({"psnr", "ssim"})
PAIRED_SUFFIXES = ("", "_std", "_identity", "_colour_transfer", "_colour_transfer_std")
"""Of a paired metric: the translation's, its spread, doing nothing's, colour transfer's."""


@dataclasses.dataclass(frozen=True)
class DirectionKeys:
    """Every metric key of one direction.

    Attributes:
        direction: "a2b" or "b2a".
        fid: FID of the translated images against the real target domain.
        fid_std: Its bootstrap spread over the test images.
        num_fake: N of translated images.
        num_real: N of real target images.
        backbone: The feature network's name.
        fid_identity: FID of doing nothing: the untranslated source images against the target.
        fid_identity_std: Its bootstrap spread.
        fid_vs_identity: `fid / fid_identity` (gated: a translation must beat doing nothing).
        fid_vs_identity_std: Its bootstrap spread (both FIDs on the same resampled images).
        fid_vs_bound: `fid / bound` for an absolute bound calibrated on this backbone, else 0.
        fid_bound_applied: 1 when that bound applied, 0 when absent or for another backbone.
        kid: KID (Binkowski et al. 2018), mean over subsets.
        kid_std: Its standard deviation over subsets.
        kid_vs_bound: As `fid_vs_bound`, for KID.
        kid_bound_applied: As `fid_bound_applied`, for KID.
        paired_num: N of test images with ground truth (paired keys exist only when > 0).
        mae_vs_identity: `mae / mae_identity` (gated when the data has ground truth).
        fid_truth: FID of the true translations against the target: the floor of `fid`.
        fid_gap_closed: `(fid_identity - fid) / (fid_identity - fid_truth)`: 1 for a perfect
            translation, 0 for doing nothing (gated when the data has ground truth).
        fid_gap_closed_std: Its bootstrap spread.
        fid_colour_transfer: FID of the colour-transfer baseline (Reinhard et al. 2001).
        fid_colour_transfer_std: Its bootstrap spread.
        fid_vs_colour_transfer: `fid / fid_colour_transfer` (gated without ground truth).
        fid_vs_colour_transfer_std: Its bootstrap spread (both FIDs on the same images).
        mae_vs_colour_transfer: `mae / mae_colour_transfer` (gated with ground truth).
    """

    direction: str
    fid: str
    fid_std: str
    num_fake: str
    num_real: str
    backbone: str
    fid_identity: str
    fid_identity_std: str
    fid_vs_identity: str
    fid_vs_identity_std: str
    fid_vs_bound: str
    fid_bound_applied: str
    kid: str
    kid_std: str
    kid_vs_bound: str
    kid_bound_applied: str
    paired_num: str
    mae_vs_identity: str
    fid_truth: str
    fid_gap_closed: str
    fid_gap_closed_std: str
    fid_colour_transfer: str
    fid_colour_transfer_std: str
    fid_vs_colour_transfer: str
    fid_vs_colour_transfer_std: str
    mae_vs_colour_transfer: str

    @classmethod
    def of(cls, direction: str) -> DirectionKeys:
        """The keys of `direction`."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        fid, kid = f"fid_{direction}", f"kid_{direction}"
        return cls(
            direction=direction,
            fid=fid,
            fid_std=f"{fid}_std",
            num_fake=f"{fid}_num_fake",
            num_real=f"{fid}_num_real",
            backbone=f"{fid}_backbone",
            fid_identity=f"{fid}_identity",
            fid_identity_std=f"{fid}_identity_std",
            fid_vs_identity=f"{fid}_vs_identity",
            fid_vs_identity_std=f"{fid}_vs_identity_std",
            fid_vs_bound=f"{fid}_vs_bound",
            fid_bound_applied=f"{fid}_bound_applied",
            kid=kid,
            kid_std=f"{kid}_std",
            kid_vs_bound=f"{kid}_vs_bound",
            kid_bound_applied=f"{kid}_bound_applied",
            paired_num=f"paired_{direction}_num",
            mae_vs_identity=f"mae_{direction}_vs_identity",
            fid_truth=f"{fid}_truth",
            fid_gap_closed=f"{fid}_gap_closed",
            fid_gap_closed_std=f"{fid}_gap_closed_std",
            fid_colour_transfer=f"{fid}_colour_transfer",
            fid_colour_transfer_std=f"{fid}_colour_transfer_std",
            fid_vs_colour_transfer=f"{fid}_vs_colour_transfer",
            fid_vs_colour_transfer_std=f"{fid}_vs_colour_transfer_std",
            mae_vs_colour_transfer=f"mae_{direction}_vs_colour_transfer",
        )

    def paired(self, metric: str, suffix: str = "") -> str:
        """A ground-truth key: `paired("mae")` is `mae_a2b`; suffix "_std" or "_identity".

        Raises:
            ValueError: For a metric other than those of :data:`PAIRED_METRICS`.
        """
        if metric not in PAIRED_METRICS:
            raise ValueError(f"paired metric must be one of {PAIRED_METRICS}, got {metric!r}")
        return f"{metric}_{self.direction}{suffix}"

    def ground_truth_only(self) -> tuple[str, ...]:
        """The non-paired-metric keys that exist only for data with ground truth."""
        return (
            self.paired_num,
            self.mae_vs_identity,
            self.fid_truth,
            self.fid_gap_closed,
            self.fid_gap_closed_std,
            self.mae_vs_colour_transfer,
        )

    def all(self, ground_truth: bool = True) -> list[str]:
        """Every key of this direction (the paired ones only with `ground_truth`)."""
        keys = [getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "direction"]
        if not ground_truth:
            return [k for k in keys if k not in self.ground_truth_only()]
        for metric in PAIRED_METRICS:
            keys += [self.paired(metric, suffix) for suffix in PAIRED_SUFFIXES]
        return keys


KEYS = {direction: DirectionKeys.of(direction) for direction in DIRECTIONS}
"""The keys of each direction."""
UNPAIRED_METRICS = ("fid", "kid")


def metric_key(metric: str, direction: str, suffix: str = "") -> str:
    """The key of `fid`, `kid` or a paired metric in a direction, e.g. ("mae", "a2b").

    Raises:
        ValueError: For an unknown metric or direction.
    """
    keys = KEYS.get(direction)
    if keys is None:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if metric in UNPAIRED_METRICS:
        return getattr(keys, metric) + suffix
    return keys.paired(metric, suffix)

"""The gate's checks: every check of an evaluation, with the numbers it compared.

Pure functions of what the TFX Evaluator stored (its EvalConfig with the thresholds it used,
TFMA's metrics and the failures of its ValidationResult; :mod:`.gate_report` reads them): they
turn TFMA's per-key verdicts into rows a user can read:

| row (metric, check) | TFMA key behind it | compares |
| --- | --- | --- |
| `fid_<d>`, vs identity | `fid_<d>_gap_closed` | (ground truth) share of the gap to the truth |
| `fid_<d>`, vs identity | `fid_<d>_vs_identity` | (no ground truth) FID with doing nothing's |
| `mae_<d>`, vs identity | `mae_<d>_vs_identity` | MAE with MAE of doing nothing (ground truth) |
| `mae_<d>`, vs colour transfer | `mae_<d>_vs_colour_transfer` | (ground truth) MAE, colour |
| `fid_<d>`, vs colour transfer | `fid_<d>_vs_colour_transfer` | (no ground truth) FID likewise |
| `fid_<d>`, vs baseline | `fid_<d>` (change) | FID with the baseline's (no ground truth) |
| `mae_<d>`, vs baseline | `mae_<d>` (change) | MAE with the blessed baseline's |
| `fid_<d>` / `kid_<d>`, absolute | `<m>_<d>_vs_bound` | value with a bound for this backbone |
| `mae`/`psnr`/`ssim_<d>`, absolute | the key itself | value with a bound |
| `kid`/`psnr`/`ssim_<d>`, report | - | reported, not gated |

TFMA's verdict decides pass/fail; the bounds are recomputed from the stored thresholds only to
show them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_specs

from cyclegan_tfx.config import DIRECTIONS
from cyclegan_tfx.evaluation.metric_keys import KEYS, PAIRED_METRICS, PAIRED_SUFFIXES, DirectionKeys

VS_IDENTITY, VS_BASELINE, ABSOLUTE, REPORT = "vs identity", "vs baseline", "absolute", "report"
VS_COLOUR = "vs colour transfer"
MISSING_TRUTH = "missing: no ground truth in the test split?"
NO_BASELINE = "not applied: no blessed baseline yet"
PAIRED_DECIDES = "not applied: with ground truth the paired error is compared with the baseline"


class MixedBackbonesError(ValueError):
    """An evaluation's FIDs come from different backbones (they must never be compared)."""


@dataclasses.dataclass(frozen=True)
class GateCheck:
    """One check of the gate.

    Attributes:
        metric: The metric, e.g. "fid_a2b".
        check: "vs identity", "vs baseline", "absolute" or "report" (not gated).
        candidate: The candidate's value.
        std: Its spread (bootstrap over the test images; KID: over subsets), if known.
        reference: What it is compared with: the identity mapping's or the baseline's value.
        threshold: The threshold in words, e.g. "<= 0.8 x identity = 70.4".
        bound: The effective numeric bound on the candidate (None if none applies).
        passed: True/False, or None when the check does not apply (reported only).
    """

    metric: str
    check: str
    candidate: float | None
    std: float | None
    reference: float | None
    threshold: str
    bound: float | None
    passed: bool | None

    @property
    def result(self) -> str:
        """The verdict in words: pass, FAIL, or - (not gated)."""
        return "-" if self.passed is None else ("pass" if self.passed else "FAIL")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (NaN/inf become None)."""
        data = dataclasses.asdict(self)
        data["result"] = self.result
        return {
            k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in data.items()
        }


def fmt(value: float | None) -> str:
    """A number for tables: 6 significant digits, "-" for none."""
    return "-" if value is None else f"{value:.6g}"


def check_single_backbone(metrics: dict[str, dict[str, Any]]) -> str | None:
    """Returns the one backbone all FIDs of an evaluation come from.

    Raises:
        MixedBackbonesError: If candidate/baseline or the two directions used different ones.
    """
    names = {
        value
        for values in metrics.values()
        for key, value in values.items()
        if key.endswith("_backbone")
    }
    if len(names) > 1:
        raise MixedBackbonesError(
            f"this evaluation mixes FID backbones {sorted(names)}; FIDs from different backbones "
            "are not comparable. Re-run the evaluation with one backbone."
        )
    return next(iter(names), None)


def _metric_settings(eval_config: tfma.EvalConfig) -> dict[str, Any]:
    """The quality metric's settings as stored in the EvalConfig (bounds, ground truth...)."""
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            if metric.config:
                return json.loads(metric.config)
    return {}


class _Thresholds:
    """The candidate's thresholds of a stored EvalConfig, by (key, is_diff)."""

    def __init__(self, eval_config: tfma.EvalConfig) -> None:
        self.by_key: dict[tuple[str, bool], Any] = {}
        thresholds = metric_specs.metric_thresholds_from_metrics_specs(
            eval_config.metrics_specs, eval_config
        )
        for key, items in thresholds.items():
            if key.model_name == "baseline":
                continue
            for _, threshold in items:
                self.by_key[key.name, key.is_diff] = threshold

    def value(self, key: str) -> tuple[float | None, float | None] | None:
        """(lower, upper) of a value threshold on `key`, or None."""
        threshold = self.by_key.get((key, False))
        if threshold is None:
            return None
        lower = threshold.lower_bound.value if threshold.HasField("lower_bound") else None
        upper = threshold.upper_bound.value if threshold.HasField("upper_bound") else None
        return lower, upper

    def change(self, key: str) -> Any:
        """The change threshold on `key` (present only when a baseline existed), or None."""
        return self.by_key.get((key, True))


class _CheckBuilder:
    """Builds the rows of one direction."""

    def __init__(
        self,
        keys: DirectionKeys,
        thresholds: _Thresholds,
        settings: dict[str, Any],
        candidate: dict[str, Any],
        baseline: dict[str, Any],
        failures: set[tuple[str, bool]] | None,
    ) -> None:
        self.keys = keys
        self.thresholds = thresholds
        self.settings = settings
        self.candidate = candidate
        self.baseline = baseline
        self.failures = failures

    def _verdict(self, tfma_key: str, is_diff: bool, computed: bool | None) -> bool | None:
        if self.failures is None:
            return computed
        return (tfma_key, is_diff) not in self.failures

    def vs_identity(self, metric: str, ratio_key: str) -> GateCheck | None:
        """A value against doing nothing's: `metric` <= limit x `<metric>_identity`."""
        return self._vs_reference(metric, ratio_key, VS_IDENTITY, "identity", MISSING_TRUTH)

    def vs_colour_transfer(self, metric: str, ratio_key: str) -> GateCheck | None:
        """A value against the colour-transfer baseline's."""
        missing = "missing: the test examples carry no colour transfer (rerun preprocessing)"
        return self._vs_reference(metric, ratio_key, VS_COLOUR, "colour transfer", missing)

    def _vs_reference(self, metric, ratio_key, check, label, missing) -> GateCheck | None:
        limits = self.thresholds.value(ratio_key)
        if limits is None:
            return None
        value = self.candidate.get(metric)
        reference = self.candidate.get(f"{metric}_{label.replace(' ', '_')}")
        limit = limits[1]
        if value is None or reference is None:
            text = f"<= {fmt(limit)} x {label}; {missing}"
            return GateCheck(metric, check, value, None, reference, text, None, False)
        bound = limit * reference
        computed = value <= bound
        text = f"<= {fmt(limit)} x {label} = {fmt(bound)}"
        ratio_std = self.candidate.get(f"{ratio_key}_std")
        if ratio_std is not None:  # the spread that matters: both values on the same resamples
            text += f" (ratio {value / reference:.3g} ± {ratio_std:.2g})"
        std = self.candidate.get(f"{metric}_std")
        passed = self._verdict(ratio_key, False, computed)
        return GateCheck(metric, check, value, std, reference, text, bound, passed)

    def gap_closed(self) -> GateCheck | None:
        """FID with ground truth: the share of the gap from doing nothing to the truth."""
        keys = self.keys
        limits = self.thresholds.value(keys.fid_gap_closed)
        if limits is None:
            return None
        least = limits[0]
        fid, std = self.candidate.get(keys.fid), self.candidate.get(keys.fid_std)
        identity, truth = self.candidate.get(keys.fid_identity), self.candidate.get(keys.fid_truth)
        closed = self.candidate.get(keys.fid_gap_closed)
        if None in (fid, identity, truth, closed):
            text = f"closes >= {fmt(least)} of the gap to the truth; missing: no ground truth?"
            return GateCheck(keys.fid, VS_IDENTITY, fid, std, identity, text, None, False)
        bound = identity - least * (identity - truth)
        text = f"closes >= {fmt(least)} of the gap identity -> truth {fmt(truth)}: <= {fmt(bound)}"
        closed_std = self.candidate.get(keys.fid_gap_closed_std)
        text += f" (closed {closed:.3g}" + (f" ± {closed_std:.2g})" if closed_std else ")")
        passed = self._verdict(keys.fid_gap_closed, False, closed >= least)
        return GateCheck(keys.fid, VS_IDENTITY, fid, std, identity, text, bound, passed)

    def vs_baseline(self, metric: str, applies: bool, reason: str = NO_BASELINE):
        if not applies:
            return None
        value, base = self.candidate.get(metric), self.baseline.get(metric)
        std = self.candidate.get(f"{metric}_std")
        threshold = self.thresholds.change(metric)
        if base is None:
            return GateCheck(metric, VS_BASELINE, value, std, None, NO_BASELINE, None, None)
        if threshold is None:
            return GateCheck(metric, VS_BASELINE, value, std, base, reason, None, None)
        lower_is_better = threshold.direction == tfma.MetricDirection.LOWER_IS_BETTER
        sign = "<=" if lower_is_better else ">="
        if threshold.HasField("relative"):
            relative = threshold.relative.value
            bound, text = base * (1 + relative), f"baseline x {fmt(1 + relative)}"
        else:
            absolute = threshold.absolute.value
            bound = base + absolute
            text = f"baseline {'+' if absolute >= 0 else '-'} {fmt(abs(absolute))}"
        computed = (
            None if value is None else (value <= bound if lower_is_better else value >= bound)
        )
        passed = self._verdict(metric, True, computed)
        return GateCheck(
            metric, VS_BASELINE, value, std, base, f"{sign} {text} = {fmt(bound)}", bound, passed
        )

    def backbone_bound(self, metric: str, ratio_key: str, applied_key: str, bounds: str):
        value = self.candidate.get(metric)
        std = self.candidate.get(f"{metric}_std")
        if self.thresholds.value(ratio_key) is None:
            return GateCheck(metric, REPORT, value, std, None, "no bound", None, None)
        config = self.settings.get(bounds) or {}
        bound = config.get(self.keys.direction)
        if not self.candidate.get(applied_key):
            used = self.candidate.get(self.keys.backbone, "?")
            text = f"not applied: bound {fmt(bound)} is for backbone {config.get('backbone')}, "
            text += f"this evaluation used {used}"
            return GateCheck(metric, ABSOLUTE, value, std, None, text, None, None)
        computed = None if value is None else value <= bound
        passed = self._verdict(ratio_key, False, computed)
        return GateCheck(metric, ABSOLUTE, value, std, None, f"<= {fmt(bound)}", bound, passed)

    def paired_bound(self, metric: str) -> GateCheck | None:
        if metric not in self.candidate and self.thresholds.value(metric) is None:
            return None
        value, std = self.candidate.get(metric), self.candidate.get(f"{metric}_std")
        limits = self.thresholds.value(metric)
        if limits is None:
            return GateCheck(metric, REPORT, value, std, None, "no bound", None, None)
        lower, upper = limits
        text = f">= {fmt(lower)}" if lower is not None else f"<= {fmt(upper)}"
        computed = None
        if value is not None:
            computed = (lower is None or value >= lower) and (upper is None or value <= upper)
        passed = self._verdict(metric, False, computed)
        return GateCheck(metric, ABSOLUTE, value, std, None, text, lower or upper, passed)


def gate_checks(
    eval_config: tfma.EvalConfig,
    metrics: dict[str, dict[str, Any]],
    failures: set[tuple[str, bool]] | None = None,
) -> list[GateCheck]:
    """Every check of an evaluation, both directions, in a fixed order (module docstring).

    Args:
        eval_config: The EvalConfig the Evaluator ran with (as stored with its output: without a
            baseline, TFX has already removed the change thresholds).
        metrics: {"candidate"|"baseline": {metric name: value}} (see :func:`evaluation_metrics`).
        failures: (metric key, is_diff) pairs TFMA's validation reported as failed; when given,
            they decide pass/fail (the numbers here are recomputed for display only).

    Returns:
        The rows, then a row for any failure TFMA reported that no row explains.
    """
    thresholds = _Thresholds(eval_config)
    settings = _metric_settings(eval_config)
    candidate, baseline = metrics.get("candidate", {}), metrics.get("baseline") or {}
    paired = bool(settings.get("ground_truth"))
    checks: list[GateCheck | None] = []
    explained: set[tuple[str, bool]] = set()
    for direction in DIRECTIONS:
        keys = KEYS[direction]
        mae = keys.paired("mae")
        build = _CheckBuilder(keys, thresholds, settings, candidate, baseline, failures)
        checks += [
            build.gap_closed(),
            build.vs_identity(keys.fid, keys.fid_vs_identity),
            build.vs_identity(mae, keys.mae_vs_identity),
            build.vs_colour_transfer(mae, keys.mae_vs_colour_transfer),
            build.vs_colour_transfer(keys.fid, keys.fid_vs_colour_transfer),
            build.vs_baseline(
                keys.fid, applies=True, reason=PAIRED_DECIDES if paired else NO_BASELINE
            ),
            build.vs_baseline(mae, applies=paired),
            build.backbone_bound(keys.fid, keys.fid_vs_bound, keys.fid_bound_applied, "fid_bound"),
            build.backbone_bound(keys.kid, keys.kid_vs_bound, keys.kid_bound_applied, "kid_bound"),
            build.paired_bound(mae) if thresholds.value(mae) else None,
            build.paired_bound(keys.paired("psnr")),
            build.paired_bound(keys.paired("ssim")),
        ]
        explained |= {
            (keys.fid_gap_closed, False),
            (keys.fid_vs_identity, False),
            (keys.mae_vs_identity, False),
            (keys.mae_vs_colour_transfer, False),
            (keys.fid_vs_colour_transfer, False),
            (keys.fid, True),
            (mae, True),
            (mae, False),
            (keys.fid_vs_bound, False),
            (keys.kid_vs_bound, False),
            (keys.paired("psnr"), False),
            (keys.paired("ssim"), False),
        }
    result = [c for c in checks if c is not None]
    for name, is_diff in sorted((failures or set()) - explained):
        result.append(
            GateCheck(
                name,
                VS_BASELINE if is_diff else ABSOLUTE,
                candidate.get(name),
                None,
                baseline.get(name),
                "see the TFMA validation result",
                None,
                False,
            )
        )
    return result


def summary_values(values: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one model worth a DVC metric: per direction FID, KID, paired scores, N."""
    result: dict[str, Any] = {}
    for direction in DIRECTIONS:
        keys = KEYS[direction]
        names = [keys.fid, keys.fid_std, keys.fid_identity, keys.fid_identity_std]
        names += [keys.fid_truth, keys.fid_gap_closed, keys.fid_gap_closed_std]
        names += [keys.num_fake, keys.num_real, keys.kid, keys.kid_std, keys.paired_num]
        names += [keys.fid_colour_transfer, keys.fid_colour_transfer_std]
        for metric in PAIRED_METRICS:
            names += [keys.paired(metric, suffix) for suffix in PAIRED_SUFFIXES]
        result |= {name: values[name] for name in names if name in values}
    return result


def format_gate_table(checks: list[GateCheck]) -> str:
    """The checks as an aligned text table, one row per check."""
    header = ("metric", "check", "candidate", "compared with", "threshold", "result")
    rows = [header]
    for c in checks:
        candidate = fmt(c.candidate)
        if c.std is not None and c.candidate is not None:
            candidate += f" ± {c.std:.2g}"
        reference = fmt(c.reference)
        if c.check in (VS_IDENTITY, VS_BASELINE, VS_COLOUR) and c.reference is not None:
            reference = f"{c.check.split(' ', 1)[1]} {reference}"
        rows.append((c.metric, c.check, candidate, reference, c.threshold, c.result))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

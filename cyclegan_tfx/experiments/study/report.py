"""The study's report: means with intervals over seeds, paired differences, curves.

Every run of a variant uses the same seeds as the reference variant's runs, so a variant's
effect is measured per seed (variant - reference with the same seed: same initial weights and
data order) and summarised as the mean difference with its Student-t interval
(:mod:`..intervals`). A difference is "beyond the seed-to-seed noise" when that
interval excludes 0.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from cyclegan_tfx.config import DIRECTIONS
from cyclegan_tfx.evaluation.metric_keys import HIGHER_IS_BETTER, KEYS
from cyclegan_tfx.experiments.intervals import Interval, mean_interval, paired_difference
from cyclegan_tfx.experiments.study.grid import Grid

ARROWS = {"a2b": "A→B", "b2a": "B→A"}


@dataclasses.dataclass(frozen=True)
class Measure:
    """One reported score: label, key in a run's metrics, and its direction."""

    label: str
    key: str
    higher_is_better: bool
    decimals: int = 1

    def format(self, interval: Interval) -> str:
        """`mean ± half-width` with this measure's decimals (KID in units of 1e-3)."""
        scale = 1e3 if self.key.startswith("kid") else 1.0
        text = f"{interval.mean * scale:.{self.decimals}f}"
        if math.isfinite(interval.half_width):
            text += f" ± {interval.half_width * scale:.{self.decimals}f}"
        return text


def measures() -> list[Measure]:
    """Every column, both ways: paired MAE, PSNR, SSIM, FID, KID, FID's gap closed.

    MAE, PSNR, SSIM and the gap closed (the share of the way from doing nothing's FID to the
    truth's, what the gate's `fid_gap_closed_min` bounds) need ground truth: a dataset without
    it has none of them (:func:`summarise` shows a column only where every run has it).
    """
    found = []
    for metric in ("mae", "psnr", "ssim"):
        for d in DIRECTIONS:
            found.append(
                Measure(
                    f"{metric.upper()} {ARROWS[d]}",
                    KEYS[d].paired(metric),
                    metric in HIGHER_IS_BETTER,
                    {"mae": 1, "psnr": 2, "ssim": 3}[metric],
                )
            )
    found += [Measure(f"FID {ARROWS[d]}", KEYS[d].fid, False) for d in DIRECTIONS]
    found += [Measure(f"KID {ARROWS[d]}", KEYS[d].kid, False) for d in DIRECTIONS]
    found += [
        Measure(f"FID gap closed {ARROWS[d]}", KEYS[d].fid_gap_closed, True, 2) for d in DIRECTIONS
    ]
    return found


CURVE_KEYS = {f"MAE {ARROWS[d]}": KEYS[d].paired("mae") for d in DIRECTIONS}
"""Measures drawn over training (the DVC plot), label -> key: the paired error, the one score
each run computes at every evaluation (FID/KID only at the end)."""


def _runs_of(runs: Iterable[dict], dataset: str, variant: str) -> dict[int, dict]:
    return {r["seed"]: r for r in runs if r["dataset"] == dataset and r["variant"] == variant}


def _paired(
    found: dict[int, dict], other: dict[int, dict], columns: list[Measure]
) -> dict[str, Interval] | None:
    """Differences `found - other` per measure, paired by seed (None: under 2 shared seeds)."""
    shared = sorted(s for s in found if s in other)
    if len(shared) < 2:
        return None
    return {
        m.key: paired_difference(
            [found[s]["metrics"][m.key] for s in shared],
            [other[s]["metrics"][m.key] for s in shared],
        )
        for m in columns
    }


def _comparisons(grid: Grid, entry: dict[str, Any]) -> list[tuple[str, dict[str, Interval]]]:
    """(compared-with variant, differences) of one summary entry: the reference, `versus`."""
    found = []
    if "difference" in entry:
        found.append((grid.reference, entry["difference"]))
    if "versus" in entry:
        found.append((entry["versus"]["variant"], entry["versus"]["difference"]))
    return found


def summarise(grid: Grid, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per dataset and variant: mean interval and paired difference of every measure.

    Args:
        grid: The grid the runs belong to.
        runs: {"dataset", "variant", "seed", "metrics"} per finished run.

    Returns:
        {dataset: {"measures": [...], "variants": {variant: {"cause", "seeds", "mean":
        {key: Interval}, "difference": {key: Interval} (not for the reference), "versus":
        {"variant", "difference"} (with `versus` in the grid)}}}}.
    """
    summary: dict[str, Any] = {}
    datasets = [d for d in dict.fromkeys(r["dataset"] for r in runs)]
    for dataset in datasets:
        reference = _runs_of(runs, dataset, grid.reference)
        # A column shows where every run of the dataset has it: not the paired scores without
        # ground truth, not a measure added after older runs were recorded (--from-runs).
        of_dataset = [r for r in runs if r["dataset"] == dataset]
        columns = [*measures(), Measure("wall time (s)", "wall_seconds", False, 0)]
        columns = [m for m in columns if all(m.key in r["metrics"] for r in of_dataset)]
        variants: dict[str, Any] = {}
        for variant in grid.variants:
            found = _runs_of(runs, dataset, variant.name)
            if not found:
                continue
            seeds = sorted(found)
            entry: dict[str, Any] = {
                "cause": variant.cause,
                "seeds": seeds,
                "mean": {
                    m.key: mean_interval([found[s]["metrics"][m.key] for s in seeds])
                    for m in columns
                },
            }
            if variant.name != grid.reference:
                difference = _paired(found, reference, columns)
                if difference is not None:
                    entry["difference"] = difference
            if variant.versus is not None:
                other = _runs_of(runs, dataset, variant.versus)
                difference = _paired(found, other, columns)
                if difference is not None:
                    entry["versus"] = {"variant": variant.versus, "difference": difference}
            variants[variant.name] = entry
        summary[dataset] = {"measures": columns, "variants": variants}
    return summary


def verdict(measure: Measure, difference: Interval) -> str:
    """'better' / 'worse' (than the reference) when beyond the noise, else ''."""
    if not difference.excludes_zero():
        return ""
    if measure.key == "wall_seconds":
        return "slower" if difference.mean > 0 else "faster"
    return "better" if (difference.mean > 0) == measure.higher_is_better else "worse"


def beyond_noise(grid: Grid, summary: dict[str, Any]) -> list[str]:
    """One line per (dataset, variant, compared-with, measure) whose interval excludes 0."""
    lines = []
    for dataset, found in summary.items():
        for name, entry in found["variants"].items():
            for other, differences in _comparisons(grid, entry):
                for measure in found["measures"]:
                    diff = differences.get(measure.key)
                    if diff is None or measure.key == "wall_seconds":
                        continue
                    word = verdict(measure, diff)
                    if word:
                        lines.append(
                            f"`{dataset}`, {name}: {measure.label} {measure.format(diff)} "
                            f"vs {other} ({word})"
                        )
    return lines


def comparisons(grid: Grid, summary: dict[str, Any]) -> int:
    """How many paired quality comparisons (vs the reference or `versus`) the report makes."""
    return sum(
        len([m for m in found["measures"] if m.key != "wall_seconds"])
        for found in summary.values()
        for entry in found["variants"].values()
        for _ in _comparisons(grid, entry)
    )


def _cell(interval: Interval | None, measure: Measure, mark: bool) -> str:
    if interval is None:
        return "-"
    text = measure.format(interval)
    word = verdict(measure, interval) if mark else ""
    return f"**{text}** {word}" if word else text


def markdown(grid: Grid, summary: dict[str, Any], facts: dict[str, Any]) -> str:
    """The report (see the module docstring); `facts` describe the run of the study."""
    budget = grid.budget
    sources = facts.get("sources", [facts])
    produced = "; ".join(
        f"`{s['command']}` on commit {s['commit']}, machine: {s['machine']}: {s['runs']} runs "
        f"in {s['wall_seconds'] / 60:.0f} min"
        for s in sources
    )
    lines = [
        "# Do separate optimizers per network help? The optimizer study",
        "",
        f"Produced by {produced}. {facts['runs']} runs in these tables (DVC experiments "
        "`study-*`: `dvc exp show`).",
        f"Grid: `{facts['grid']}`. Budget per run: {budget.epochs:g} epochs (constant for "
        f"{budget.epochs - budget.decay_epochs:g}, then the schedule's decay over "
        f"{budget.decay_epochs:g}), seeds {list(grid.seeds)}; scores of the final model on the "
        f"test split. FID/KID use the backbone `{facts['backbone']}` (comparable between rows, "
        "not with published FIDs). KID in units of 1e-3 below.",
        "",
        "Each cell: mean ± half-width of the 95 % Student-t interval over seeds. Differences "
        f"are variant - `{grid.reference}` with the same seed (same initial weights and data "
        "order), **bold** with better / worse where their interval excludes 0: larger than the "
        "seed-to-seed noise.",
        "",
        "Not in the grid: how the optimizers are grouped. One Adam per network, one per pair or "
        "one over all four train bit-identical weights when their settings are equal (Adam is "
        "per coordinate; `tests/cyclegan_test.py::test_grouping_alone_changes_nothing`), so "
        "every run is spent on settings that differ between networks.",
    ]
    if facts.get("rendered"):
        lines += ["", facts["rendered"]]
    for dataset, found in summary.items():
        columns = found["measures"]
        header = "| variant | " + " | ".join(m.label for m in columns) + " |"
        rule = "| --- |" + " ---: |" * len(columns)
        lines += ["", f"## Dataset `{dataset}`", "", "Mean over seeds:", "", header, rule]
        for name, entry in found["variants"].items():
            cells = [_cell(entry["mean"][m.key], m, False) for m in columns]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += ["", f"Difference to `{grid.reference}`, paired by seed:", "", header, rule]
        for name, entry in found["variants"].items():
            if "difference" not in entry:
                continue
            cells = [_cell(entry["difference"][m.key], m, True) for m in columns]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        versus = [(n, e["versus"]) for n, e in found["variants"].items() if "versus" in e]
        if versus:
            lines += ["", "Difference to the variant each is stated against, paired by seed:"]
            lines += ["", header.replace("| variant |", "| variant - versus |", 1), rule]
            for name, other in versus:
                cells = [_cell(other["difference"][m.key], m, True) for m in columns]
                lines.append(f"| {name} - {other['variant']} | " + " | ".join(cells) + " |")
        lines += ["", "What each variant changes (and nothing else):", ""]
        lines += [f"- {name}: {entry['cause']}" for name, entry in found["variants"].items()]
    hits = beyond_noise(grid, summary)
    total = comparisons(grid, summary)
    lines += [
        "",
        "## Beyond the seed-to-seed noise",
        "",
        f"{len(hits)} of {total} comparisons have an interval that excludes 0; with no real "
        f"effect anywhere, about {0.05 * total:.1f} would by chance (5 % each), so a single "
        "hit is weak evidence on its own. The measures are not independent either: MAE, PSNR "
        "and SSIM of one direction move together, and the two directions share a cycle loss.",
        "",
    ]
    lines += [f"- {line}" for line in hits] or ["- none"]
    return "\n".join(lines) + "\n"


def curves(grid: Grid, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the DVC plot: per dataset, variant, measure and epoch, mean and interval."""
    rows = []
    for dataset in dict.fromkeys(r["dataset"] for r in runs):
        for variant in grid.variants:
            found = _runs_of(runs, dataset, variant.name)
            epochs = sorted({round(p["epoch"], 6) for r in found.values() for p in r["curve"]})
            for label, key in CURVE_KEYS.items():
                for epoch in epochs:
                    values = [
                        p[key]
                        for r in found.values()
                        for p in r["curve"]
                        if round(p["epoch"], 6) == epoch and key in p
                    ]
                    if not values:
                        continue
                    interval = mean_interval(values)
                    half = interval.half_width if math.isfinite(interval.half_width) else 0.0
                    rows.append(
                        {
                            "dataset": dataset,
                            "variant": variant.name,
                            "measure": label,
                            "epoch": epoch,
                            "mean": interval.mean,
                            "low": interval.mean - half,
                            "high": interval.mean + half,
                            "seeds": len(values),
                        }
                    )
    return rows


def to_json(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary as plain data (intervals as {mean, half_width, n})."""
    plain: dict[str, Any] = {}
    for dataset, found in summary.items():
        plain[dataset] = {}
        for name, entry in found["variants"].items():
            plain[dataset][name] = {
                "cause": entry["cause"],
                "seeds": entry["seeds"],
                **{part: _plain(entry[part]) for part in ("mean", "difference") if part in entry},
            }
            if "versus" in entry:
                plain[dataset][name]["versus"] = {
                    "variant": entry["versus"]["variant"],
                    "difference": _plain(entry["versus"]["difference"]),
                }
    return plain


def _plain(intervals: dict[str, Interval]) -> dict[str, dict[str, float]]:
    return {key: dataclasses.asdict(interval) for key, interval in intervals.items()}

"""`make study`: runs the optimizer study's grid as DVC experiments and writes the report.

1. `dvc repro` the preprocessing of both datasets (the experiments reuse their outputs);
2. one DVC experiment per variant x dataset x seed of the grid (`study/study.yaml`), skipping
   those already run for this commit;
3. reads every run's metrics and curve back from its experiment and writes
   `reports/optimizer_study.md` (tables), `.json` (every run, every interval) and
   `optimizer_study_curves.json` (the DVC plot "Optimizer study": `dvc plots show`).

A smaller grid: `--variants ttur --datasets sample --seeds 1 2 --epochs 2` (the reference
variant is always included). `--from-runs reports/optimizer_study.json [more.json ...]` runs
nothing: it re-renders the reports from the runs recorded in those files (after a change to the
report's code, or to join a follow-up study to the first), keeping their facts (command, commit,
machine, wall time) and saying so in the report. A run recorded in two files must have the same
scores in both (a reproducibility check across commits).
Exit status 2: a grid, configuration or recorded-runs error; 1: a run failed.

Usage: python -m cyclegan_tfx.experiments.study [--grid study/study.yaml] [--variants ...]
       [--datasets ...] [--seeds ...] [--epochs N] [--eval-every N] [--report-dir reports]
       [--from-runs FILE [FILE ...]]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from cyclegan_tfx.config import STUDY_DATASETS, ConfigError, load_config
from cyclegan_tfx.experiments.study import report
from cyclegan_tfx.experiments.study.experiments import StudyRunError, read_result, run_experiments
from cyclegan_tfx.experiments.study.grid import Budget, Grid, load_grid
from cyclegan_tfx.registry.provenance import run_git

logger = logging.getLogger(__name__)

REPORT_MD = "optimizer_study.md"
REPORT_JSON = "optimizer_study.json"
CURVES_JSON = "optimizer_study_curves.json"
PREPROCESS_STAGES = (
    "dvc.yaml:preprocess",
    "study/dvc.yaml:preprocess_uneven",
    "study/dvc.yaml:preprocess_grade",
)


def _commit(repo: Path) -> str:
    def git(*args: str) -> str:
        result = run_git(repo, *args)
        return result.stdout.strip() if result is not None else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"{commit} with uncommitted changes" if dirty else commit


def _machine() -> str:
    return f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} CPUs"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--grid", default="study/study.yaml")
    parser.add_argument("--variants", nargs="+", help="default: every variant of the grid")
    parser.add_argument("--datasets", nargs="+", choices=sorted(STUDY_DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, help="at least 2 (for intervals)")
    parser.add_argument("--epochs", type=float, help="budget per run (default: the grid's)")
    parser.add_argument("--eval-every", type=float, help="epochs between scores on the curve")
    parser.add_argument("--report-dir", default=None, help="default: paths.reports")
    parser.add_argument(
        "--from-runs",
        type=Path,
        nargs="+",
        help="re-render the reports from these optimizer_study.json files",
    )
    given = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(given)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    started = time.monotonic()
    try:
        config = load_config(args.params)
        grid = load_grid(args.grid)
        budget = grid.budget
        if args.epochs is not None:
            budget = dataclasses.replace(
                budget,
                epochs=args.epochs,
                decay_epochs=args.epochs * budget.decay_epochs / budget.epochs,
                eval_every_epochs=min(budget.eval_every_epochs, args.epochs),
            )
        if args.eval_every is not None:
            budget = dataclasses.replace(budget, eval_every_epochs=args.eval_every)
        if args.seeds is not None and len(args.seeds) < 2:
            raise ConfigError("--seeds: intervals over seeds need at least 2 seeds")
        grid = grid.select(args.variants, args.datasets, args.seeds, budget)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    repo = Path(config.paths.root)
    out = Path(args.report_dir) if args.report_dir else config.paths.resolve("reports")
    if args.from_runs is not None:
        try:
            grid, runs, facts = _recorded(args.from_runs, grid, repo)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        _write_reports(out, grid, runs, facts)
        return 0
    dvc = str(Path(sys.executable).with_name("dvc"))
    experiments = grid.experiments()
    logger.info("%d runs: %s", len(experiments), ", ".join(e.name for e in experiments))
    try:
        for stage in PREPROCESS_STAGES:
            result = subprocess.run([dvc, "repro", stage], cwd=repo, check=False)
            if result.returncode != 0:
                raise StudyRunError(f"`dvc repro {stage}` failed")
        revisions = run_experiments(
            dvc, repo, experiments, config.paths.resolve("pipeline_root").parent / "study-logs"
        )
        runs = []
        for experiment in experiments:
            found = read_result(repo, revisions[experiment.name], config.paths.study_run)
            runs.append(
                {
                    "experiment": experiment.name,
                    "revision": revisions[experiment.name],
                    "dataset": experiment.dataset,
                    "variant": experiment.variant,
                    "seed": experiment.seed,
                    **found,
                }
            )
    except StudyRunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    command = "make study" + (f" STUDY_ARGS={shlex.quote(shlex.join(given))}" if given else "")
    facts = {
        "command": command,
        "commit": _commit(repo),
        "machine": _machine(),
        "runs": len(runs),
        "wall_seconds": time.monotonic() - started,
        "grid": args.grid,
        "budget": dataclasses.asdict(grid.budget),
        "backbone": runs[0]["metrics"].get("backbone", "?"),
    }
    _write_reports(out, grid, runs, facts)
    return 0


SCORE_FACTS = ("wall_seconds", "code")
"""Fields of a run's metrics that may differ between two recordings of the same run."""


def _recorded(paths: list[Path], grid: Grid, repo: Path) -> tuple[Grid, list[dict], dict]:
    """The runs and facts of earlier reports, and the grid narrowed to what they cover.

    Raises:
        ConfigError: On an unreadable file, runs whose budget is not the grid's, or a run
            recorded twice with different scores.
    """
    runs: dict[tuple, dict] = {}
    sources, budgets, reproduced = [], set(), 0
    first: dict = {}  # the first file's own facts: a re-rendered file's sources lack grid, backbone
    for path in paths:
        try:
            data = json.loads(path.read_text())
            found, facts = data["runs"], data["facts"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"{path}: not a study report with recorded runs ({error})") from error
        budget = Budget(**facts["budget"]) if "budget" in facts else grid.budget
        epochs = {r["metrics"].get("epochs") for r in found}
        if epochs != {budget.epochs}:
            raise ConfigError(
                f"{path}: runs of {sorted(map(str, epochs))} epochs, the grid's budget is "
                f"{budget.epochs:g}; pass the --grid (or --epochs) those runs used"
            )
        budgets.add(budget)
        first = first or facts
        for run in found:
            key = (run["dataset"], run["variant"], run["seed"])
            if key in runs:
                scores = [
                    {k: v for k, v in r["metrics"].items() if k not in SCORE_FACTS}
                    for r in (runs[key], run)
                ]
                if scores[0] != scores[1]:
                    raise ConfigError(
                        f"{path}: run {run.get('experiment', key)} differs from its earlier "
                        "recording: not the same code, data or settings"
                    )
                reproduced += 1
            else:
                runs[key] = run
        sources += facts.get("sources", [facts])
    if len(budgets) > 1:
        raise ConfigError(f"{', '.join(map(str, paths))}: runs of different budgets")
    budget = budgets.pop()
    chosen = list(runs.values())
    grid = grid.select(
        sorted({r["variant"] for r in chosen}),
        sorted({r["dataset"] for r in chosen}),
        sorted({r["seed"] for r in chosen}),
        budget,
    )
    names = ", ".join(f"`{p.name if p.is_absolute() else p.as_posix()}`" for p in paths)
    rendered = f"Tables re-rendered from the runs recorded in {names} on commit {_commit(repo)}"
    rendered += " (`--from-runs`: no run repeated)."
    if reproduced:
        rendered += (
            f" {reproduced} runs were recorded twice, by different studies, with identical scores."
        )
    facts = {
        "sources": [
            {k: s[k] for k in ("command", "commit", "runs", "wall_seconds", "machine") if k in s}
            for s in sources
        ],
        "runs": len(chosen),
        "grid": first.get("grid", "study/study.yaml"),
        "backbone": first.get("backbone", "?"),
        "budget": dataclasses.asdict(budget),
        "rendered": rendered,
    }
    return grid, chosen, facts


def _write_reports(out: Path, grid: Grid, runs: list[dict], facts: dict) -> None:
    summary = report.summarise(grid, runs)
    out.mkdir(parents=True, exist_ok=True)
    text = report.markdown(grid, summary, facts)
    (out / REPORT_MD).write_text(text)
    (out / REPORT_JSON).write_text(
        json.dumps({"facts": facts, "summary": report.to_json(summary), "runs": runs}, indent=1)
        + "\n"
    )
    (out / CURVES_JSON).write_text(json.dumps(report.curves(grid, runs), indent=1) + "\n")
    print(text)
    print(f"reports in {out}; every run: dvc exp show; curves: dvc plots show")


if __name__ == "__main__":
    sys.exit(main())

"""Runs the study's grid as DVC experiments and reads their results back.

Each run is `dvc exp run --temp -n NAME -S ... study/dvc.yaml:study_run`: DVC copies the
workspace (HEAD plus uncommitted changes) to a temporary folder, applies the `-S` values to
params.yaml there, runs the stage and keeps the result as an experiment: `dvc exp show` lists
it, `dvc exp apply NAME` brings its params and metrics into the workspace. Experiments run one
after the other (`--temp`, not the Celery-backed `--queue`/`--run-all`, which hung here without
starting a worker); an experiment that already exists for the current commit is reused, so an
interrupted study resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cyclegan_tfx.experiments.study.grid import Experiment
from cyclegan_tfx.experiments.study.run import CURVE_FILE, METRICS_FILE

logger = logging.getLogger(__name__)

STAGE = "study/dvc.yaml:study_run"


class StudyRunError(RuntimeError):
    """A DVC experiment of the study failed (the message names it and its log)."""


def _run(args: list[str], cwd: Path, log: Path | None = None) -> subprocess.CompletedProcess:
    if log is None:
        return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        return subprocess.run(args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)


def existing(dvc: str, repo: Path) -> dict[str, str]:
    """Experiments of the current commit: name -> revision (`dvc exp show --json`).

    Raises:
        StudyRunError: If DVC cannot list them.
    """
    result = _run([dvc, "exp", "show", "--json", "--no-fetch"], repo)
    if result.returncode != 0:
        result = _run([dvc, "exp", "show", "--json"], repo)
    if result.returncode != 0:
        raise StudyRunError(f"`dvc exp show` failed: {result.stderr.strip()}")
    found = {}
    for baseline in json.loads(result.stdout or "[]"):
        for experiment in baseline.get("experiments") or []:
            for rev in experiment.get("revs") or []:
                if rev.get("name") and not rev.get("error"):
                    found[rev["name"]] = rev["rev"]
    return found


def run_experiments(
    dvc: str,
    repo: Path,
    experiments: list[Experiment],
    log_dir: Path,
    on_done: Callable[[Experiment, str], None] | None = None,
) -> dict[str, str]:
    """Runs every experiment not run yet for this commit; returns name -> revision.

    Raises:
        StudyRunError: After the others have run, if any experiment failed (its log named).
    """
    known = existing(dvc, repo)
    failed = []
    for number, experiment in enumerate(experiments, 1):
        if experiment.name in known:
            logger.info("[%d/%d] %s: already run", number, len(experiments), experiment.name)
            continue
        logger.info("[%d/%d] %s", number, len(experiments), experiment.name)
        args = [dvc, "exp", "run", "--temp", "-n", experiment.name]
        for override in experiment.overrides:
            args += ["-S", override]
        log = log_dir / f"{experiment.name}.log"
        if _run([*args, STAGE], repo, log).returncode != 0:
            failed.append(f"{experiment.name} (log: {log})")
            continue
        known = existing(dvc, repo)
        if on_done is not None:
            on_done(experiment, log.read_text())
    if failed:
        raise StudyRunError("experiment(s) failed: " + ", ".join(failed))
    return known


def read_result(repo: Path, revision: str, run_dir: str) -> dict[str, Any]:
    """An experiment's metrics and curve, read from its Git commit.

    Raises:
        StudyRunError: If the commit lacks them.
    """
    found = {}
    for key, name in (("metrics", METRICS_FILE), ("curve", CURVE_FILE)):
        result = _run(["git", "show", f"{revision}:{run_dir}/{name}"], repo)
        if result.returncode != 0:
            raise StudyRunError(f"experiment {revision[:7]} has no {run_dir}/{name}")
        data = json.loads(result.stdout)
        found[key] = data["curve"] if key == "curve" else data
    return found

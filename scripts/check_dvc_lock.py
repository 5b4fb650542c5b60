"""Fails when the committed dvc.lock does not describe the committed code and params.

dvc.lock records the hash of every dependency a stage ran with. The committed run outputs
(metrics/, plots/, reports/) are only honest if the code and params they were produced from are
the ones in the repository: after a code change, `make run` must run again before committing.

This asks DVC itself (`dvc status --json`) and reports every stage whose *code* dependencies
(paths git tracks) or params changed. Data and build outputs are not checked here: a fresh
clone has not pulled or produced them yet. A stage that has never run in the workspace (absent
from its dvc.lock) has produced none of the committed outputs, so it cannot be stale. The
optimizer study's `study_run` has run once in the workspace (study/run/, so that `dvc status` is
clean after `make run`) and is checked like the others.

Usage: python scripts/check_dvc_lock.py [--repo DIR]   (part of `make lint`)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml


def tracked_paths(repo: Path) -> set[str]:
    """Every file git tracks, and every folder above one."""
    listing = subprocess.run(
        ["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split()
    paths = set(listing)
    for name in listing:
        parts = name.split("/")
        paths.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
    return paths


def locked_stages(repo: Path, status: dict) -> set[str]:
    """The stages of `status` that have an entry in their dvc.lock (have run here)."""
    locked = set()
    for stage in status:
        dvcfile, _, name = stage.rpartition(":")
        lock = repo / (dvcfile or "dvc.yaml")
        lock = lock.with_suffix(".lock")
        if lock.is_file() and name in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}):
            locked.add(stage)
    return locked


def stale_entries(status: dict, tracked: set[str], locked: set[str] | None = None) -> list[str]:
    """What `dvc status --json` says changed in code deps or params, one line per entry.

    Stages outside `locked` (never run) are skipped; None checks every stage.
    """
    lines = []
    for stage, changes in status.items():
        if locked is not None and stage not in locked:
            continue
        for change in changes if isinstance(changes, list) else []:
            if not isinstance(change, dict):
                continue
            for path, state in (change.get("changed deps") or {}).items():
                if isinstance(state, dict):  # a params file: {param name: state}
                    lines += [f"{stage}: param {k} ({path}) {v}" for k, v in state.items()]
                elif path in tracked:
                    lines.append(f"{stage}: code dependency {path} {state}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; exit status 1 when dvc.lock is stale."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=".", type=Path)
    args = parser.parse_args(argv)
    dvc = Path(sys.executable).with_name("dvc")
    result = subprocess.run(
        [str(dvc), "status", "--json"], cwd=args.repo, capture_output=True, text=True
    )
    if result.returncode != 0:
        print(f"check_dvc_lock: dvc status failed:\n{result.stderr}", file=sys.stderr)
        return 2
    status = json.loads(result.stdout or "{}")
    stale = stale_entries(status, tracked_paths(args.repo), locked_stages(args.repo, status))
    if stale:
        print(
            "dvc.lock does not describe the committed code/params (the committed metrics and "
            "plots came from other code):\n  "
            + "\n  ".join(stale)
            + "\nRun `make run` (for study/dvc.yaml stages: `PATH=.venv/bin:$PATH dvc repro "
            "study/dvc.yaml`) and commit the lock files with the refreshed outputs.",
            file=sys.stderr,
        )
        return 1
    print("dvc.lock matches the code and params")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where a model came from: data version (DVC), code version (git), params hash, strategy."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from cyclegan_tfx.config import Config, TrainConfig
from cyclegan_tfx.model.optimizer_strategies import OptimizerStrategy

logger = logging.getLogger(__name__)

DATA_DVC_FILE = "data.dvc"
DEFAULT_STRATEGY = OptimizerStrategy.INDEPENDENT.value


def data_version(project_root: str | Path, dvc_file: str = DATA_DVC_FILE) -> dict[str, Any] | None:
    """The DVC version of the dataset: the md5 of `data.dvc`'s output, with its size.

    Args:
        project_root: The folder holding params.yaml and data.dvc.
        dvc_file: The .dvc file name.

    Returns:
        `{"dvc_file", "path", "md5", "nfiles", "size"}`, or None if the file is absent or not a
        DVC file (logged).
    """
    path = Path(project_root) / dvc_file
    if not path.is_file():
        return None
    try:
        outs = yaml.safe_load(path.read_text())["outs"]
        out = outs[0]
        return {
            "dvc_file": dvc_file,
            "path": out.get("path"),
            "md5": out["md5"],
            "nfiles": out.get("nfiles"),
            "size": out.get("size"),
        }
    except (yaml.YAMLError, KeyError, IndexError, TypeError) as error:
        logger.warning("%s is not a DVC file with an md5 (%s); data version unknown", path, error)
        return None


def run_git(root: str | Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    """Runs `git ARGS` in `root` (30 s at most); None when git is missing or times out."""
    try:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def _git(root: Path, *args: str) -> str | None:
    """Output of `git ARGS`, or None when git is missing, fails or times out."""
    result = run_git(root, *args)
    return result.stdout if result is not None and result.returncode == 0 else None


def git_state(project_root: str | Path, outputs: Sequence[str] = ()) -> dict[str, Any] | None:
    """The git commit of the project and whether the run's inputs had uncommitted changes.

    Args:
        project_root: The git working tree.
        outputs: Paths (relative to `project_root`) the run itself writes, such as `dvc.lock`,
            `metrics/` and `plots/`: changes there do not make the tree dirty, so a run on a
            clean checkout is recorded as built from its commit.

    Returns:
        `{"commit": sha, "dirty": bool}`, or None outside a git repository (or without git).
    """
    root = Path(project_root)
    commit = _git(root, "rev-parse", "--verify", "HEAD")
    if commit is None:
        return None
    excluded = [f":(exclude){path}" for path in outputs]
    status = _git(root, "status", "--porcelain", "--", ".", *excluded)
    return {"commit": commit.strip(), "dirty": bool(status and status.strip())}


def params_hash(config: Config) -> str:
    """`sha256:<hex>` of the canonical JSON of the whole configuration.

    The checkout location (`paths.root`) is left out, so the same params give the same hash in
    any clone.
    """
    data = config.to_dict()
    data.get("paths", {}).pop("root", None)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def optimizer_strategy(train: TrainConfig) -> str:
    """The optimizer strategy of a training config (`train.optimizer.strategy`).

    Configurations from before strategies existed had four independent optimizers, so that is
    the answer when the field is absent.
    """
    optimizer = getattr(train, "optimizer", None)
    for candidate in (
        getattr(optimizer, "strategy", None),
        getattr(train, "optimizer_strategy", None),
        getattr(train, "strategy", None),
    ):
        if isinstance(candidate, str) and candidate:
            return str(candidate)
    return DEFAULT_STRATEGY

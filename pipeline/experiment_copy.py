"""A queued or `--temp` DVC experiment compares its model with the workspace's blessed one.

DVC runs `dvc exp run --queue` (then `dvc queue start`) and `dvc exp run --temp` experiments in
a copy of the repository under `<workspace>/.dvc/tmp/exps/`, and sets `DVC_ROOT` to the
workspace (dvc/repo/experiments/queue/base.py). The copy has no `paths.pipeline_root`: it is an
untracked DVC output (`cache: false`). Its pipeline would start without ML Metadata, so without
a blessed baseline, and the gate's "vs baseline" checks would silently not apply.

Before such a run, :func:`seed_from_workspace` copies the workspace's ML Metadata store into
the copy's pipeline root with SQLite's backup API (a consistent snapshot, even while a
workspace run is writing it). The copy's Resolver then finds the workspace's last blessed
model. That model's files stay in the workspace and are only read: every component writes its
outputs under the copy's pipeline root, and the copy's ML Metadata is the snapshot, so the
workspace's store never sees the experiment. Where the workspace has no blessed model yet, the
gate report says the baseline checks did not apply (`baseline_applied: false`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path

from cyclegan_tfx.config import Config

logger = logging.getLogger(__name__)

DVC_ROOT = "DVC_ROOT"
"""Set by DVC for every stage command: the repository root, the workspace's for experiments."""


def workspace_metadata_path(config: Config, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The workspace's ML Metadata store when this run is a DVC experiment in a copy, else None.

    None also when the pipeline root is the same directory in both (an absolute
    `paths.pipeline_root`): the run already uses the workspace's ML Metadata.
    """
    root = environ.get(DVC_ROOT)
    if not root:
        return None
    workspace = dataclasses.replace(config.paths, root=root).metadata_path
    return None if workspace == config.paths.metadata_path else workspace


def seed_from_workspace(config: Config, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Copies the workspace's ML Metadata into an experiment copy that has none yet.

    Returns:
        The workspace store that was copied, or None (not an experiment copy, the copy
        already has a store, or the workspace has none).
    """
    source = workspace_metadata_path(config, environ)
    target = config.paths.metadata_path
    if source is None or target.exists():
        return None
    if not source.is_file():
        logger.info(
            "DVC experiment copy of %s: the workspace has no ML Metadata (%s), so no blessed "
            "baseline; the checks against a baseline will not apply",
            environ[DVC_ROOT],
            source,
        )
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    read_only = f"{source.as_uri()}?mode=ro"
    with (
        closing(sqlite3.connect(read_only, uri=True)) as reader,
        closing(sqlite3.connect(target)) as writer,
    ):
        reader.backup(writer)
    logger.info(
        "DVC experiment copy of %s: the workspace's blessed model is this run's baseline "
        "(ML Metadata snapshot of %s; the workspace's files are only read)",
        environ[DVC_ROOT],
        source,
    )
    return source

"""A DVC experiment copy gets a snapshot of the workspace's ML Metadata (pipeline.experiment_copy).

The end-to-end check, with `dvc exp run --queue` and `dvc queue start`, is in dvc_test.py.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing

from conftest import tiny_config

from pipeline.experiment_copy import DVC_ROOT, seed_from_workspace, workspace_metadata_path


def _store(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE IF NOT EXISTS Artifact (id INTEGER, uri TEXT)")
        db.executemany("INSERT INTO Artifact VALUES (?, ?)", rows)
        db.commit()


def _rows(path):
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT id, uri FROM Artifact ORDER BY id").fetchall()


def test_an_experiment_copy_starts_from_the_workspace_store(tmp_path):
    workspace, copy = tmp_path / "workspace", tmp_path / "workspace/.dvc/tmp/exps/tmp1"
    rows = [(1, str(workspace / "build/tfx/Trainer/model/3"))]
    _store(tiny_config(workspace).paths.metadata_path, rows)
    config = tiny_config(copy)

    assert seed_from_workspace(config, {DVC_ROOT: str(workspace)}) is not None
    assert _rows(config.paths.metadata_path) == rows
    # The copy's own store is never replaced (a second run in the same copy).
    _store(config.paths.metadata_path, [(2, "copy's own")])
    assert seed_from_workspace(config, {DVC_ROOT: str(workspace)}) is None
    assert _rows(config.paths.metadata_path) == [*rows, (2, "copy's own")]
    assert _rows(tiny_config(workspace).paths.metadata_path) == rows  # only read


def test_a_workspace_run_or_a_workspace_without_a_store_copies_nothing(tmp_path):
    workspace, copy = tmp_path / "workspace", tmp_path / "copy"
    config = tiny_config(copy)
    assert workspace_metadata_path(config, {}) is None  # not run by DVC
    assert workspace_metadata_path(config, {DVC_ROOT: str(copy)}) is None  # `dvc repro`
    assert seed_from_workspace(config, {DVC_ROOT: str(workspace)}) is None  # none to copy
    assert not config.paths.metadata_path.exists()

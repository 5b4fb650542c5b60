"""Crash-safe training checkpoints on any TensorFlow filesystem (local, gs://, s3://, hdfs://).

A checkpoint holds the networks, optimizer slots, step, image pools and data iterators (TF
checkpoint `state.*`) and, optionally, a snapshot of a local folder (the DVCLive curves of a
run whose checkpoints are remote). Everything is written through `tf.io.gfile` into
`step-<N>/`; the commit marker `step-<N>/COMMITTED`, listing every file with its size, is
written last. Object stores have no atomic folder rename, but they do
write each object atomically, so the marker is the commit: a process killed at any moment
leaves either a committed checkpoint or an uncommitted folder, which the next start ignores and
deletes. A committed checkpoint whose files do not match its marker (e.g. a bucket lifecycle
rule deleted one) is skipped for the previous one. The newest `keep` checkpoints are kept, and
an older one is deleted only after a newer one is committed, so the last good checkpoint is
never lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import posixpath
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import tensorflow as tf

from cyclegan_tfx.uri import join, parent

logger = logging.getLogger(__name__)

_STEP_FOLDER = re.compile(r"^step-(\d+)/?$")
_TF_PREFIX = "state"
_FILES_FOLDER = "files"
COMMIT_MARKER = "COMMITTED"


def _write_bytes(path: str, data: bytes) -> None:
    # Make the parent folder explicitly: listing (`walk`) on filesystems with implicit folders,
    # such as TensorFlow's `ram://`, does not show a folder that was never made.
    tf.io.gfile.makedirs(parent(path))
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)


def _read_bytes(path: str) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def _remove(path: str) -> None:
    """Deletes a folder and everything below it; a missing folder is not an error.

    Object stores' folders are implicit (and TensorFlow's `ram://` reports a deleted one as
    existing), so "exists, then delete" is not reliable: deleting and ignoring NotFound is.
    """
    with contextlib.suppress(tf.errors.NotFoundError):
        tf.io.gfile.rmtree(path)


def _files_below(directory: str) -> list[str]:
    """Relative POSIX paths of every file under `directory`."""
    found = []
    for root, _, files in tf.io.gfile.walk(directory):
        relative = posixpath.relpath(root.replace("\\", "/"), directory.replace("\\", "/"))
        found.extend(name if relative == "." else f"{relative}/{name}" for name in files)
    return sorted(found)


class TrainingCheckpoints:
    """Saves and restores everything a bit-identical resume needs."""

    def __init__(
        self,
        directory: str | Path,
        trackables: Mapping[str, object],
        keep: int = 2,
        before_commit: Callable[[str], None] | None = None,
        files_dir: str | Path | None = None,
        read_only: bool = False,
    ) -> None:
        """Creates the checkpointer.

        Args:
            directory: Folder of this run's checkpoints: a local path or a URL of any
                filesystem TensorFlow can write.
            trackables: TF objects to save (networks, optimizers, step, pools, iterators).
            keep: How many complete checkpoints to keep.
            before_commit: Called with the checkpoint's folder after its files are written and
                before the commit marker (a test seam for interrupting a save).
            files_dir: A local folder saved with every checkpoint and put back on restore.
            read_only: Only restore; never write or delete (the non-chief workers of a
                multi-worker run, which resume from the chief's checkpoints).
        """
        self.directory = str(directory)
        self._checkpoint = tf.train.Checkpoint(**trackables)
        self._keep = keep
        self._before_commit = before_commit
        self._files_dir = Path(files_dir) if files_dir is not None else None
        self._read_only = read_only

    def _folder(self, step: int) -> str:
        return join(self.directory, f"step-{step}")

    def _step_folders(self) -> dict[int, str]:
        if not tf.io.gfile.isdir(self.directory):
            return {}
        found = (_STEP_FOLDER.match(name) for name in tf.io.gfile.listdir(self.directory))
        return {int(m.group(1)): self._folder(int(m.group(1))) for m in found if m}

    def _marker(self, folder: str) -> dict[str, int] | None:
        """The committed checkpoint's files and sizes, or None if `folder` is not committed."""
        path = join(folder, COMMIT_MARKER)
        if not tf.io.gfile.exists(path):
            return None
        try:
            return {str(k): int(v) for k, v in json.loads(_read_bytes(path))["files"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            logger.warning("checkpoint %s: unreadable commit marker (%s)", folder, error)
            return None

    def steps(self) -> list[int]:
        """Steps of the committed checkpoints, oldest first."""
        return sorted(s for s, f in self._step_folders().items() if self._marker(f) is not None)

    def _is_intact(self, folder: str, files: dict[str, int]) -> bool:
        for name, size in files.items():
            path = join(folder, name)
            if not tf.io.gfile.exists(path) or tf.io.gfile.stat(path).length != size:
                logger.warning("checkpoint %s: %s is missing or changed; skipping it", folder, name)
                return False
        return True

    def restore_latest(self) -> int | None:
        """Restores the newest intact committed checkpoint; returns its step, or None if none.

        Uncommitted folders (a save that was interrupted) are deleted first.
        """
        committed = {}
        for step, folder in self._step_folders().items():
            files = self._marker(folder)
            if files is None:
                if self._read_only:
                    continue
                logger.info("deleting the uncommitted checkpoint %s (an interrupted save)", folder)
                _remove(folder)
            else:
                committed[step] = (folder, files)
        for step in sorted(committed, reverse=True):
            folder, files = committed[step]
            if self._is_intact(folder, files):
                self._restore(folder, files)
                logger.info("resumed from checkpoint %s", folder)
                return step
        return None

    def _restore(self, folder: str, files: dict[str, int]) -> None:
        self._checkpoint.read(join(folder, _TF_PREFIX)).assert_consumed()
        if self._files_dir is not None:
            prefix = f"{_FILES_FOLDER}/"
            for name in (n for n in files if n.startswith(prefix)):
                target = self._files_dir / name[len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(_read_bytes(join(folder, name)))

    def save(self, step: int) -> str:
        """Writes and commits the checkpoint of `step` (unless read-only); returns its folder."""
        folder = self._folder(step)
        if self._read_only:
            return folder
        if self._marker(folder) is not None:
            return folder
        _remove(folder)
        tf.io.gfile.makedirs(folder)
        self._checkpoint.write(join(folder, _TF_PREFIX))
        if self._files_dir is not None and self._files_dir.is_dir():
            for path in sorted(p for p in self._files_dir.rglob("*") if p.is_file()):
                relative = path.relative_to(self._files_dir).as_posix()
                _write_bytes(join(folder, _FILES_FOLDER, relative), path.read_bytes())
        if self._before_commit is not None:
            self._before_commit(folder)
        files = {name: tf.io.gfile.stat(join(folder, name)).length for name in _files_below(folder)}
        marker = json.dumps({"step": step, "files": files}, sort_keys=True)
        _write_bytes(join(folder, COMMIT_MARKER), marker.encode())
        for old in self.steps()[: -self._keep]:
            _remove(self._folder(old))
        return folder

    def remove_all(self) -> None:
        """Deletes every checkpoint of this run (after a successful export)."""
        if self._read_only:
            return
        _remove(self.directory)

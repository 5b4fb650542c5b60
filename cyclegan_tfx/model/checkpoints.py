"""Crash-safe training checkpoints: networks, optimizer slots, step, data iterators, pools, RNG.

Each checkpoint is written into a temporary folder (`.tmp-<step>`) and then renamed to
`step-<step>` in one atomic `os.replace`. A process killed at any moment therefore leaves either
the new complete checkpoint or none: the last good one is never touched. Leftover temporary
folders are removed on the next start. The newest `keep` checkpoints are kept.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf

from cyclegan_tfx.model.image_pool import ImagePool

logger = logging.getLogger(__name__)

_COMMITTED = re.compile(r"^step-(\d+)$")
_TF_PREFIX = "state"
_POOLS_FILE = "pools.npz"


class TrainingCheckpoints:
    """Saves and restores everything a bit-identical resume needs."""

    def __init__(
        self,
        directory: str | Path,
        trackables: Mapping[str, object],
        pools: Mapping[str, ImagePool],
        keep: int = 2,
        before_commit: Callable[[Path], None] | None = None,
    ) -> None:
        """Creates the checkpointer.

        Args:
            directory: Folder of this run's checkpoints.
            trackables: TF objects to save (networks, optimizers, step, iterators).
            pools: Image pools by name (saved with their RNG state).
            keep: How many complete checkpoints to keep.
            before_commit: Called with the temporary folder just before the atomic rename
                (a test seam for interrupting a save).
        """
        self.directory = Path(directory)
        self._checkpoint = tf.train.Checkpoint(**trackables)
        self._pools = dict(pools)
        self._keep = keep
        self._before_commit = before_commit

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        found = (_COMMITTED.match(p.name) for p in self.directory.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in found if m)

    def restore_latest(self) -> int | None:
        """Restores the newest complete checkpoint; returns its step, or None if none."""
        if self.directory.is_dir():
            for leftover in self.directory.glob(".tmp-*"):
                shutil.rmtree(leftover, ignore_errors=True)
        steps = self.steps()
        if not steps:
            return None
        folder = self.directory / f"step-{steps[-1]}"
        self._checkpoint.read(str(folder / _TF_PREFIX)).assert_consumed()
        with np.load(folder / _POOLS_FILE, allow_pickle=False) as saved:
            for name, pool in self._pools.items():
                pool.restore(
                    {
                        "images": saved[f"{name}_images"],
                        "rng": json.loads(str(saved[f"{name}_rng"])),
                    }
                )
        logger.info("resumed from checkpoint %s", folder)
        return steps[-1]

    def save(self, step: int) -> Path:
        """Writes the checkpoint of `step` atomically; returns its folder."""
        final = self.directory / f"step-{step}"
        if final.exists():
            return final
        temporary = self.directory / f".tmp-{step}"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        self._checkpoint.write(str(temporary / _TF_PREFIX))
        arrays = {}
        for name, pool in self._pools.items():
            state = pool.state()
            arrays[f"{name}_images"] = state["images"]
            arrays[f"{name}_rng"] = np.array(json.dumps(state["rng"]))
        np.savez(temporary / _POOLS_FILE, **arrays)
        if self._before_commit is not None:
            self._before_commit(temporary)
        os.replace(temporary, final)
        for old in self.steps()[: -self._keep]:
            shutil.rmtree(self.directory / f"step-{old}", ignore_errors=True)
        return final

    def remove_all(self) -> None:
        """Deletes every checkpoint of this run (after a successful export)."""
        shutil.rmtree(self.directory, ignore_errors=True)

"""One local run per pipeline root at a time.

Two runs of the same workspace (`dvc repro` in one terminal, `cyclegan-tfx run` in another)
would share the pipeline root: its ML Metadata, the Trainer's checkpoint folder, the live
training curves and the serving folder. They would resume from each other's half-written
checkpoints and report each other's runs. So a local run takes an exclusive lock on
`<pipeline_root>/run.lock` before anything else, and a second run is refused at once, naming
the run that holds it.

The lock is an advisory `flock` on a local file: the kernel releases it when the holding
process ends, however it ends (SIGKILL included), so a crashed run never leaves a stale lock
behind. It holds on local disks; on NFS `flock` may be emulated per client, so two machines
sharing a pipeline root over NFS are not protected. Kubeflow runs are separate pods with
their own run ids and do not use this lock.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import shlex
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from cyclegan_tfx.config import RUN_OUTPUT_PATHS

LOCK_FILE = "run.lock"


class PipelineRootBusyError(RuntimeError):
    """Another live run holds the pipeline root's lock."""


def _holder_text(path: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:
        return "another process (it has not written its details yet)"
    return (
        f"process {holder.get('pid')} on {holder.get('host')}, started "
        f"{holder.get('started')}: {holder.get('command')}"
    )


@contextlib.contextmanager
def hold_pipeline_root(pipeline_root: Path) -> Iterator[None]:
    """Holds the pipeline root's run lock for the duration of the block.

    Args:
        pipeline_root: The local pipeline root (created if missing).

    Raises:
        PipelineRootBusyError: At once, if another live process holds the lock.
    """
    pipeline_root.mkdir(parents=True, exist_ok=True)
    path = pipeline_root / LOCK_FILE
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PipelineRootBusyError(
                f"the pipeline root {pipeline_root} is in use by another run "
                f"({_holder_text(path)}). Wait for it to finish, or run in parallel in a "
                "separate workspace: `dvc exp run --temp` or `--queue` (a copy of the "
                f"repository), or a params file whose `paths` ({', '.join(RUN_OUTPUT_PATHS)}) "
                "point elsewhere."
            ) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": shlex.join(sys.argv),
        }
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder) + "\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()

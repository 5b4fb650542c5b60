"""The training curves, through DVCLive: per-step loss and learning rate of each network.

DVCLive appends one row per step to `<dir>/plots/metrics/{loss,lr}/<network>.tsv` (constant
work per step, visible while training runs: `dvc plots show`, DVC Studio, the VS Code
extension) and keeps the latest values in `<dir>/metrics.json` (`dvc exp show`).

A resumed run continues the same curves: the directory lives beside the checkpoints (or where
the caller says, e.g. the workspace's `dvclive/`), and rows after the restored checkpoint's step
(logged before a crash, then trained again) are dropped first, so every step appears once.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
from pathlib import Path

import tensorflow as tf
from scmrepo.exceptions import SCMError

from cyclegan_tfx.uri import is_url
from dvclive import Live

logger = logging.getLogger(__name__)


class _Live(Live):
    """DVCLive that also works in a Git repository without commits.

    DVCLive 3 asks the DVC repository's Git for its HEAD while starting and fails with
    "Empty git repo" before its own no-commits check (a `git init` followed by `dvc repro`
    before the first commit). The curves need none of that integration (this log saves no DVC
    experiment and writes no dvc.yaml), so it is skipped there with a note.
    """

    def _init_dvc(self) -> None:
        try:
            super()._init_dvc()
        except SCMError as error:
            logger.info("DVCLive: %s (no commit yet); logging the curves without Git", error)


METRIC_GROUPS = ("loss", "lr")
"""`loss/<network>` and `lr/<network>` curves."""


def curve_files(live_dir: str | Path) -> list[Path]:
    """Every per-step TSV DVCLive wrote under `live_dir`."""
    root = Path(live_dir) / "plots" / "metrics"
    return sorted(root.rglob("*.tsv")) if root.is_dir() else []


def truncate(live_dir: str | Path, last_step: int) -> None:
    """Drops the rows after `last_step` from every curve (a resume from that checkpoint)."""
    for path in curve_files(live_dir):
        rows = list(csv.reader(io.StringIO(path.read_text()), delimiter="\t"))
        if not rows:
            continue
        step = rows[0].index("step")
        kept = [rows[0], *(row for row in rows[1:] if int(row[step]) <= last_step)]
        buffer = io.StringIO()
        csv.writer(buffer, delimiter="\t", lineterminator="\n").writerows(kept)
        path.write_text(buffer.getvalue())


class TrainingLog:
    """Per-step losses and learning rates of the four networks.

    Args:
        live_dir: DVCLive's directory.
        resume_step: The step a resumed run restarts from (its rows up to there are kept), or
            None for a fresh run (the directory is emptied).
    """

    def __init__(self, live_dir: str | Path, resume_step: int | None) -> None:
        self.live_dir = Path(live_dir)
        if resume_step is None:
            shutil.rmtree(self.live_dir, ignore_errors=True)
        else:
            truncate(self.live_dir, resume_step)
        self.live = _Live(
            dir=str(self.live_dir),
            resume=resume_step is not None,
            report=None,
            save_dvc_exp=False,
            dvcyaml=False,
        )

    def log(self, step: int, losses: dict[str, float], rates: dict[str, float]) -> None:
        """Records one step's loss and learning rate of every network."""
        self.live.step = step
        for name, value in losses.items():
            self.live.log_metric(f"loss/{name}", float(value))
        for name, value in rates.items():
            self.live.log_metric(f"lr/{name}", float(value))
        self.live.next_step()

    def close(self, copy_to: str | Path | None = None) -> None:
        """Ends the log; optionally copies the directory (e.g. into the run's artifact).

        Args:
            copy_to: A local folder or a URL of any filesystem TensorFlow writes (gs://...).
        """
        self.live.end()
        if copy_to is None:
            return
        if not is_url(copy_to):
            if Path(copy_to).resolve() != self.live_dir.resolve():
                shutil.copytree(self.live_dir, copy_to, dirs_exist_ok=True)
            return
        for path in sorted(p for p in self.live_dir.rglob("*") if p.is_file()):
            target = f"{str(copy_to).rstrip('/')}/{path.relative_to(self.live_dir).as_posix()}"
            tf.io.gfile.makedirs(target.rsplit("/", 1)[0])
            tf.io.gfile.copy(str(path), target, overwrite=True)

"""Paths that are either local or a filesystem URL TensorFlow writes (`gs://b/x`, `ram://x`).

Used wherever such a path is built or told apart: the configuration (`paths.serving`, the
Kubeflow roots), the training run's folders (checkpoints, logs, export, training state) and
the model registry's files. It imports nothing of the project, so every module may use it.
"""

from __future__ import annotations

import posixpath
from pathlib import Path


def is_url(path: str | Path) -> bool:
    """Whether `path` is a filesystem URL (`scheme://...`) rather than a local path."""
    return "://" in str(path)


def join(directory: str | Path, *names: str) -> str:
    """Joins path components of a local path or a filesystem URL."""
    if is_url(directory):
        return posixpath.join(str(directory), *names)
    return str(Path(directory, *names))


def parent(path: str) -> str:
    """The folder holding `path`, a local path or a filesystem URL."""
    return posixpath.dirname(path) if is_url(path) else str(Path(path).parent)

"""The registry's file operations, on any filesystem TensorFlow writes (`tf.io.gfile`).

Paths are strings: a local path, or a URI of a TensorFlow filesystem (`gs://` is built into
TensorFlow, `s3://` comes with `tensorflow-io`, `ram://` is in-process memory, used by the
tests). Paths are joined with :func:`cyclegan_tfx.uri.join` (`pathlib` would fold the
`//` of a URI).

What each write relies on:

- **Local disk**: a file is written beside its target, flushed to disk and renamed over it
  (`os.replace`: POSIX rename is atomic), so a reader sees the old or the new file. Writers of
  one registry are serialised by an advisory lock (`flock`) on a file beside it.
- **Object stores** (GCS, S3): an object is replaced whole when its upload completes (GCS and
  S3 both: no reader sees a partial object, and both are strongly consistent for
  read-after-write). They have no rename and no locks, and `tf.io.gfile` exposes none of their
  conditional writes (GCS `ifGenerationMatch`, S3 `If-Match`). So a writer is detected, not
  excluded: the registry carries a revision number, and a write first re-reads it and refuses
  if it moved (`store.ConcurrentWriteError`). Two writers that re-read within the same moment
  (milliseconds) can still both write; the later one wins whole. Promotion is a human action,
  so that window is accepted; schedule promotions from one place if it is not.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import posixpath
from collections.abc import Iterator

from cyclegan_tfx.uri import is_url, join


def is_local(path: str) -> bool:
    """Whether `path` is on the local disk (no URI scheme, or `file://`)."""
    return not is_url(path) or path.startswith("file://")


def local_path(path: str) -> str:
    """`path` without a `file://` scheme."""
    return path[len("file://") :] if path.startswith("file://") else path


def absolute(path: str) -> str:
    """A local path made absolute; a URI unchanged (TF Serving reads it as it is)."""
    return os.path.abspath(local_path(path)) if is_local(path) else path


def _gfile():
    """tf.io.gfile; TensorFlow imports slowly, so only once a file is touched."""
    import tensorflow as tf

    return tf.io.gfile


def exists(path: str) -> bool:
    """Whether a file or folder exists at `path`."""
    return _gfile().exists(path)


def isdir(path: str) -> bool:
    """Whether `path` is a folder (on an object store: a prefix with objects under it)."""
    return _gfile().isdir(path)


def listdir(path: str) -> list[str]:
    """The names in the folder `path` (without a trailing `/`)."""
    return [name.rstrip("/") for name in _gfile().listdir(path)]


def makedirs(path: str) -> None:
    """Creates the folder `path` and its parents (nothing to do on an object store)."""
    _gfile().makedirs(path)


def read_text(path: str) -> str:
    """The UTF-8 text of the file `path`."""
    with _gfile().GFile(path, "r") as handle:
        return handle.read()


def replace_text(path: str, text: str) -> None:
    """Replaces the file `path` with `text` whole (see the module docstring for how)."""
    if not is_local(path):
        gfile = _gfile()
        if path.startswith("ram://") and gfile.exists(path):
            # TensorFlow's ram:// opens an existing file for append, even in "w" mode (object
            # stores replace it); it lives in this process, so no reader sees the gap.
            gfile.remove(path)
        with gfile.GFile(path, "w") as handle:
            handle.write(text)
        return
    path = local_path(path)
    directory, name = os.path.split(path)
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def copy_folder(source: str, target: str) -> None:
    """Copies the folder `source` (any filesystem) to the local or remote folder `target`.

    Only entries that exist as files are copied: TensorFlow's `ram://` filesystem lists
    `assets.extra/x` also as `assets/.extra` (its listing matches name prefixes, not folders),
    a name that cannot be opened.
    """
    gfile = _gfile()
    for folder, _, names in gfile.walk(source):
        relative = posixpath.relpath(folder, source) if folder != source else ""
        gfile.makedirs(join(target, relative))
        for name in names:
            path = join(folder, name)
            if gfile.exists(path) and not gfile.isdir(path):
                gfile.copy(path, join(target, relative, name), overwrite=True)


def remove_stale_link(path: str) -> bool:
    """Removes a symlink at `path` (the pointer older registries kept); True if one was there."""
    if is_local(path) and os.path.islink(local_path(path)):
        os.unlink(local_path(path))
        return True
    return False


@contextlib.contextmanager
def exclusive(lock_path: str) -> Iterator[None]:
    """Holds an exclusive lock on a local file while the block runs; nothing on object stores."""
    if not is_local(lock_path):
        yield
        return
    with open(local_path(lock_path), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

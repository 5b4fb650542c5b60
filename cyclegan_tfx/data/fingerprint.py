"""Fingerprints of data files by their content, for TFX's cache key.

TFX's ExampleGen fingerprints its input files by their modification times, so rewriting
byte-identical files (`dvc repro -f`, `dvc checkout`, `dvc exp apply`) looks like new data and
retrains everything downstream. :func:`files_fingerprint` hashes what the files hold instead:
the SHA-256 over each matched file's path (relative to the folder), size and bytes, in sorted
order. Reading costs about a second per GB here; it happens on every run, before TFX's cache
check.
"""

from __future__ import annotations

import hashlib
import posixpath

from tfx.dsl.io import fileio

_CHUNK = 1 << 20


def files_fingerprint(split_name: str, input_base: str, pattern: str) -> str:
    """The content fingerprint of the files of one split.

    Args:
        split_name: The split, e.g. "train" (part of the text).
        input_base: The folder (any filesystem TFX's `fileio` reads: local, gs://, ...).
        pattern: The split's glob relative to it, e.g. "train/*.tfrecord".

    Returns:
        "split:<name>,num_files:<n>,total_bytes:<b>,sha256:<hex>", the format of TFX's own
        fingerprint with the checksums of the mtimes replaced by one of the contents.
    """
    files = sorted(fileio.glob(posixpath.join(input_base, pattern)))
    digest, total = hashlib.sha256(), 0
    for path in files:
        size = fileio.stat(path).length
        total += size
        relative = posixpath.relpath(path, input_base) if "://" not in path else path
        digest.update(f"{relative}\0{size}\0".encode())
        with fileio.open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                digest.update(chunk)
    return (
        f"split:{split_name},num_files:{len(files)},total_bytes:{total},sha256:{digest.hexdigest()}"
    )

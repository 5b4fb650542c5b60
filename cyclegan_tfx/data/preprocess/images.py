"""Pure image functions of the preprocessing job: decode, normalise to 8-bit RGB, resize, encode.

Everything here works on bytes and PIL images only (no Beam, no TensorFlow), so it is easy to
test. Any problem with an input file is reported as :class:`ImageRejected`, which carries a short
machine-readable `reason` (one of the `*` constants below) and a human-readable `message`.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

# Reason codes of rejected files (the `reason` column of reports/rejects.csv).
EMPTY_FILE = "empty_file"
NOT_AN_IMAGE = "not_an_image"
TRUNCATED = "truncated"
CORRUPT = "corrupt"
UNSUPPORTED_MODE = "unsupported_mode"
TOO_SMALL = "too_small"
TOO_LARGE = "too_large"

MIN_SOURCE_SIDE = 16
"""Images whose shorter side is below this many pixels are rejected as `too_small`."""

_WHITE = (255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_DIRECT_MODES = frozenset({"1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "HSV"})
_MAX_MESSAGE_CHARS = 200


class ImageRejected(Exception):  # noqa: N818 - it is an outcome, not an error
    """An input file that cannot become a training image.

    Attributes:
        reason: Short machine-readable code, e.g. `truncated`.
        message: Human-readable explanation.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason, message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


def decode_to_rgb(data: bytes, path: str) -> Image.Image:
    """Fully decodes an image file and converts it to 8-bit RGB.

    The image is decoded completely (so truncated files fail here, not later), rotated
    according to its EXIF orientation, and converted from any Pillow mode to RGB:

    - `1`, `L`, `P` (without transparency), `CMYK`, `YCbCr`, `HSV`: Pillow's conversion.
      CMYK uses Pillow's naive formula; embedded ICC profiles are ignored.
    - `RGBA`, `LA`, `PA`, `P` with transparency: alpha-composited onto a **white** background,
      so transparent regions become white (not black, and not the undefined colour
      underneath).
    - 16-bit integer (`I;16`, `I;16B`, ...): `round(value / 257)`, which maps 0..65535 onto
      0..255 exactly (65535 -> 255, 32768 -> 128).
    - 32-bit integer (`I`): treated as 16-bit data (as Pillow decodes 16-bit files) when all
      values lie in 0..65535; otherwise the image's own min..max is stretched to 0..255.
    - 32-bit float (`F`): values in [0, 1] are scaled by 255; values in [0, 255] are kept;
      other ranges are min..max stretched. NaN becomes 0.

    Multi-frame files (animated GIF, multi-page TIFF) contribute their first frame.

    Args:
        data: The raw bytes of the file.
        path: The file's path, used in error messages only.

    Returns:
        A fully loaded 8-bit RGB image.

    Raises:
        ImageRejected: If the file is empty, not an image, truncated, corrupt, too large
            (Pillow's decompression-bomb limit) or in an unsupported mode.
    """
    if not data:
        raise ImageRejected(EMPTY_FILE, f"{path}: file is empty (0 bytes)")
    image = _open_and_load(data, path)
    try:
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, TypeError, KeyError) as error:
        raise ImageRejected(CORRUPT, f"{path}: invalid EXIF data: {_describe(error)}") from None
    return _to_rgb(image, path)


def resize_square(image: Image.Image, size: int) -> Image.Image:
    """Resizes so that the shorter side equals `size`, then centre-crops to `size` x `size`.

    Both steps are done in one Lanczos (antialiased) resampling of the centred square of side
    `min(width, height)`, which is equivalent to resizing first and cropping afterwards but
    avoids rounding the intermediate size.

    Args:
        image: Any PIL image.
        size: The output side length in pixels (>= 1).

    Returns:
        A `size` x `size` image in the mode of `image`.

    Raises:
        ValueError: If `size` is not positive or the image is empty.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    width, height = image.size
    if width < 1 or height < 1:
        raise ValueError(f"cannot resize an empty image of size {image.size}")
    side = min(width, height)
    left = (width - side) / 2
    top = (height - side) / 2
    box = (left, top, left + side, top + side)
    return image.resize((size, size), Image.Resampling.LANCZOS, box=box)


def encode_png(image: Image.Image) -> bytes:
    """Encodes an image as PNG, byte-deterministically.

    The pixels are copied into a fresh image first, so no metadata of the source file (ICC
    profile, EXIF, text chunks, DPI) is written; Pillow writes no timestamps. The same pixels
    therefore always give the same bytes (for a given Pillow/zlib build).

    Args:
        image: The image to encode (any PNG-compatible mode; the pipeline passes RGB).

    Returns:
        The PNG file's bytes.
    """
    clean = Image.frombytes(image.mode, image.size, image.tobytes())
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def process_image(data: bytes, path: str, size: int, min_side: int = MIN_SOURCE_SIDE) -> bytes:
    """Decodes, converts, resizes and re-encodes one image file.

    Args:
        data: The raw bytes of the file.
        path: The file's path, used in error messages only.
        size: Output side length in pixels.
        min_side: Smallest accepted shorter side of the source image.

    Returns:
        PNG bytes of the `size` x `size` RGB image.

    Raises:
        ImageRejected: If the file cannot be used (see :func:`decode_to_rgb`), or its shorter
            side is below `min_side` (`too_small`).
    """
    image = decode_to_rgb(data, path)
    if min(image.size) < min_side:
        raise ImageRejected(
            TOO_SMALL,
            f"{path}: {image.size[0]}x{image.size[1]} pixels; the shorter side must be "
            f">= {min_side}",
        )
    return encode_png(resize_square(image, size))


def _open_and_load(data: bytes, path: str) -> Image.Image:
    """Opens and fully decodes `data`, mapping Pillow's many error types to ImageRejected."""
    try:
        image = Image.open(io.BytesIO(data))
    except Image.UnidentifiedImageError:
        # Pillow's message contains the BytesIO's memory address: keep ours deterministic.
        raise ImageRejected(NOT_AN_IMAGE, f"{path}: not a recognised image format") from None
    except Image.DecompressionBombError as error:
        raise ImageRejected(TOO_LARGE, f"{path}: {_describe(error)}") from None
    # Pillow raises OSError, SyntaxError, ValueError, struct.error, EOFError, ... on corrupt
    # data; for an untrusted input file every failure is a reject, never a crash.
    except Exception as error:
        raise ImageRejected(_reason_for(error), f"{path}: {_describe(error)}") from None
    try:
        image.load()
    except Image.DecompressionBombError as error:
        raise ImageRejected(TOO_LARGE, f"{path}: {_describe(error)}") from None
    except Exception as error:  # see above: Pillow's decoders raise many exception types
        raise ImageRejected(_reason_for(error), f"{path}: {_describe(error)}") from None
    return image


def _reason_for(error: Exception) -> str:
    if isinstance(error, EOFError) or "truncated" in str(error).lower():
        return TRUNCATED
    return CORRUPT


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text[:_MAX_MESSAGE_CHARS]


def _to_rgb(image: Image.Image, path: str) -> Image.Image:
    """Converts a loaded image of any supported mode to 8-bit RGB (see decode_to_rgb)."""
    mode = image.mode
    if mode == "P" and "transparency" in image.info:
        return _composite_on_white(image.convert("RGBA"))
    if mode in _ALPHA_MODES:
        return _composite_on_white(image.convert("RGBA") if mode != "RGBA" else image)
    if mode in _DIRECT_MODES:
        return image.convert("RGB")
    if mode == "LAB":
        # Pillow's LAB -> RGB conversion is not colour-managed; refuse rather than guess.
        raise ImageRejected(UNSUPPORTED_MODE, f"{path}: image mode LAB is not supported")
    if mode == "F" or mode == "I" or mode.startswith("I;16"):
        return _gray_to_rgb(_scale_to_uint8(np.asarray(image), mode))
    raise ImageRejected(UNSUPPORTED_MODE, f"{path}: image mode {mode} is not supported")


def _composite_on_white(rgba: Image.Image) -> Image.Image:
    if rgba.mode == "RGBa":
        rgba = rgba.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (*_WHITE, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Maps a single-channel integer or float array to uint8 (see decode_to_rgb)."""
    if mode.startswith("I;16"):
        return _round_to_uint8(values.astype(np.float64) / 257.0)
    data = values.astype(np.float64)
    if mode == "F":
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    if mode == "I" and low >= 0 and high <= 65535:
        return _round_to_uint8(data / 257.0)
    if mode == "F" and low >= 0 and high <= 1:
        return _round_to_uint8(data * 255.0)
    if mode == "F" and low >= 0 and high <= 255:
        return _round_to_uint8(data)
    if high == low:
        return np.zeros(data.shape, dtype=np.uint8)
    return _round_to_uint8((data - low) * (255.0 / (high - low)))


def _round_to_uint8(data: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(data), 0, 255).astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(gray)).convert("RGB")

"""A small dataset with every kind of file the preprocessing job must handle.

Used by the preprocessing tests on each runner: odd image modes, nested folders, upper-case
extensions, a train/test leak, an in-split duplicate, truncated/empty/non-image files, a hidden
file, and the paired layout's ground truth (one orphan, one undecodable).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from cyclegan_tfx.data.preprocess import beam_pipeline, images


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def noise_rgb(seed: int, width: int = 40, height: int = 32) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def palette_png() -> bytes:
    indices = np.zeros((20, 20), dtype=np.uint8)
    indices[:, 10:] = 1
    image = Image.fromarray(indices, mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    return encode(image, transparency=0)


def gray16_png() -> bytes:
    values = np.full((20, 20), 32768, dtype=np.uint16)
    values[0, 0] = 65535
    values[0, 1] = 0
    return encode(Image.fromarray(values))


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def write(root: Path, relative: str, data: bytes) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def make_dataset(root: Path) -> None:
    leak = encode(noise_rgb(10))
    b1 = encode(noise_rgb(11))
    files = {
        "trainA/gray.png": encode(Image.fromarray(np.full((30, 40), 90, dtype=np.uint8))),
        "trainA/rgba.png": encode(Image.fromarray(np.full((30, 40, 4), 200, dtype=np.uint8))),
        "trainA/palette.png": palette_png(),
        "trainA/gray16.png": gray16_png(),
        "trainA/cmyk.tif": encode(Image.new("CMYK", (40, 30), (0, 255, 0, 0)), "TIFF"),
        "trainA/sub/nested.png": encode(noise_rgb(12)),
        "trainA/UPPER.PNG": encode(noise_rgb(13)),
        "trainA/leak.png": leak,
        "trainA/truncated.png": truncated(encode(noise_rgb(14, 64, 64))),
        "trainA/truncated.jpg": truncated(encode(noise_rgb(15, 64, 64), "JPEG")),
        "trainA/empty.png": b"",
        "trainA/notes.png": b"hello, I am text\n",
        "trainA/readme.txt": b"not an image\n",
        "trainA/.DS_Store": b"\x00\x00\x00\x01Bud1",
        "trainB/b1.png": b1,
        "trainB/copy.png": b1,
        "trainB/b2.jpg": encode(noise_rgb(16), "JPEG"),
        "testA/leak.png": leak,
        "testA/a1.png": encode(noise_rgb(17)),
        "testB/t1.png": encode(noise_rgb(18)),
        # Paired layout: ground truth under the test image's file name.
        "testA_truthB/a1.png": encode(noise_rgb(19)),
        "testA_truthB/leak.png": encode(noise_rgb(20)),
        "testA_truthB/orphan.png": encode(noise_rgb(21)),  # no testA/orphan.png
        "testB_truthA/t1.png": b"not a png either",  # t1 stays unpaired
    }
    for relative, data in files.items():
        write(root, relative, data)


EXPECTED_REJECTS = [
    ("testA_truthB/orphan.png", beam_pipeline.TRUTH_WITHOUT_IMAGE),
    ("testB_truthA/t1.png", images.NOT_AN_IMAGE),
    ("trainA/.DS_Store", beam_pipeline.HIDDEN_FILE),
    ("trainA/empty.png", images.EMPTY_FILE),
    ("trainA/notes.png", images.NOT_AN_IMAGE),
    ("trainA/readme.txt", beam_pipeline.UNSUPPORTED_EXTENSION),
    ("trainA/truncated.jpg", images.TRUNCATED),
    ("trainA/truncated.png", images.TRUNCATED),
]
EXPECTED_DUPLICATES = [("trainA/leak.png", "testA/leak.png"), ("trainB/copy.png", "trainB/b1.png")]
EXPECTED_EXAMPLES = {"testA": 2, "testB": 1, "trainA": 7, "trainB": 2}

"""PNG grids of images (rows of real | translated | reconstructed), PNG encoding and decoding."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image


def image_grid(columns: Sequence[np.ndarray], padding: int = 2) -> np.ndarray:
    """Lays out `columns` (each uint8 [N, H, W, 3]) side by side, one row per index.

    Args:
        columns: Same-shaped batches, e.g. (real_a, fake_b, reconstructed_a).
        padding: White pixels between cells.

    Returns:
        uint8 [rows * (H + p) + p, cols * (W + p) + p, 3].
    """
    if not columns:
        raise ValueError("image_grid needs at least one column")
    rows, height, width, _ = columns[0].shape
    grid = np.full(
        (rows * (height + padding) + padding, len(columns) * (width + padding) + padding, 3),
        255,
        np.uint8,
    )
    for c, column in enumerate(columns):
        if column.shape != columns[0].shape:
            raise ValueError(f"column {c} has shape {column.shape}, expected {columns[0].shape}")
        for r in range(rows):
            y, x = padding + r * (height + padding), padding + c * (width + padding)
            grid[y : y + height, x : x + width] = column[r]
    return grid


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encodes an `(H, W, 3)` uint8 array as PNG without metadata (byte-deterministic)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """A PNG (or any image Pillow reads) as a uint8 RGB array [H, W, 3]."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

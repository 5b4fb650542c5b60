"""History of generated images (Shrivastava et al. 2017), as used by CycleGAN."""

from __future__ import annotations

import numpy as np


class ImagePool:
    """Returns either the new fake images or, with probability 1/2 each, older ones.

    Same rule as the reference implementation: while the pool has room, images are stored and
    returned unchanged; afterwards each image is, with probability 1/2, swapped with a random
    stored one (the stored one is returned). `pool_size == 0` disables the pool.
    """

    def __init__(self, pool_size: int, seed: int) -> None:
        self.pool_size = pool_size
        self._images: list[np.ndarray] = []
        self._rng = np.random.default_rng(seed)

    def query(self, images: np.ndarray) -> np.ndarray:
        """Returns a batch of the same shape drawn from the history and `images`."""
        if self.pool_size == 0:
            return images
        out = []
        for image in images:
            if len(self._images) < self.pool_size:
                self._images.append(image.copy())
                out.append(image)
            elif self._rng.uniform() > 0.5:
                index = int(self._rng.integers(self.pool_size))
                out.append(self._images[index])
                self._images[index] = image.copy()
            else:
                out.append(image)
        return np.stack(out)

    def state(self) -> dict[str, object]:
        """Everything needed to resume: stored images and the RNG state."""
        images = np.stack(self._images) if self._images else np.zeros((0,), np.float32)
        return {"images": images, "rng": self._rng.bit_generator.state}

    def restore(self, state: dict[str, object]) -> None:
        """Restores what :meth:`state` returned."""
        images = np.asarray(state["images"])
        self._images = [image.copy() for image in images] if images.ndim == 4 else []
        self._rng.bit_generator.state = state["rng"]

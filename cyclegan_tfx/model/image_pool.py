"""History of generated images (Shrivastava et al. 2017), as used by CycleGAN, in the graph.

The rule is the reference implementation's: while the pool has room, images are stored and
returned unchanged; afterwards each image is, with probability 1/2, swapped with a random
stored one (the stored one is returned). `pool_size == 0` disables the pool.

The stored images, their count and the number of random draws so far are TensorFlow
variables, so the pool runs inside the compiled training step (no copy to the host per step)
and is saved and restored with the training checkpoint. The random numbers are stateless,
keyed by (seed, draw number): a resumed run draws exactly what an uninterrupted one does.
"""

from __future__ import annotations

import tensorflow as tf


class ImagePool(tf.Module):
    """A pool of `pool_size` images of `image_shape` (see the module docstring)."""

    def __init__(self, pool_size: int, image_shape: tuple[int, ...], seed: int, name: str) -> None:
        super().__init__(name=name)
        self.pool_size = pool_size
        self.seed = seed
        self.images = tf.Variable(
            tf.zeros([max(pool_size, 1), *image_shape], tf.float32),
            trainable=False,
            name="images",
        )
        self.count = tf.Variable(0, dtype=tf.int32, trainable=False, name="count")
        self.draws = tf.Variable(0, dtype=tf.int64, trainable=False, name="draws")

    def _query_one(self, image: tf.Tensor) -> tf.Tensor:
        coin, position = tf.unstack(
            tf.random.stateless_uniform(
                [2], seed=tf.stack([tf.constant(self.seed, tf.int64), self.draws])
            )
        )
        self.draws.assign_add(1)
        full = self.count >= self.pool_size
        swap = tf.logical_and(full, coin > 0.5)
        index = tf.where(
            full,
            tf.minimum(tf.cast(position * self.pool_size, tf.int32), self.pool_size - 1),
            self.count,
        )
        stored = self.images[index]
        store = tf.logical_or(tf.logical_not(full), swap)
        self.images.scatter_nd_update([[index]], [tf.where(store, image, stored)])
        self.count.assign(tf.minimum(self.count + 1, self.pool_size))
        return tf.where(swap, stored, image)

    def query(self, images: tf.Tensor) -> tf.Tensor:
        """A batch of the same (static) shape drawn from the history and `images`."""
        if self.pool_size == 0:
            return images
        images = tf.cast(images, tf.float32)
        return tf.stack([self._query_one(images[i]) for i in range(images.shape[0])])

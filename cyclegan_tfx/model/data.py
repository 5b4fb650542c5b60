"""tf.data input for training and evaluation, from the `tf.Example` TFRecords."""

from __future__ import annotations

import tensorflow as tf

from cyclegan_tfx.data import schema

_FEATURES = {
    schema.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
    schema.DOMAIN_KEY: tf.io.FixedLenFeature([], tf.string),
}


def _compression(files: list[str]) -> str:
    return "GZIP" if files and all(f.endswith(".gz") for f in files) else ""


def parse_examples(serialized: tf.Tensor, image_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Parses a batch of serialized examples into (uint8 images [N,S,S,3], is_domain_a [N])."""
    parsed = tf.io.parse_example(serialized, _FEATURES)
    images = tf.map_fn(
        lambda png: tf.ensure_shape(tf.io.decode_png(png, channels=3), [image_size, image_size, 3]),
        parsed[schema.IMAGE_KEY],
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.uint8),
    )
    return images, tf.equal(parsed[schema.DOMAIN_KEY], b"A")


def to_float(images: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """Float [-1, 1] -> uint8 [0, 255] (rounded, clipped)."""
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def domain_images(files: list[str], domain: str, image_size: int) -> tf.data.Dataset:
    """All images of one domain as a dataset of uint8 [S,S,3], in file order."""
    dataset = tf.data.TFRecordDataset(files, compression_type=_compression(files))
    dataset = dataset.batch(256).map(lambda s: parse_examples(s, image_size)).unbatch()
    want_a = domain == "A"
    return dataset.filter(lambda image, is_a: tf.equal(is_a, want_a)).map(lambda image, _: image)


def count_domains(files: list[str]) -> dict[str, int]:
    """Counts examples per domain (one pass over the records)."""
    counts = {"A": 0, "B": 0}
    dataset = tf.data.TFRecordDataset(files, compression_type=_compression(files)).batch(1024)
    for serialized in dataset:
        domains = tf.io.parse_example(serialized, {schema.DOMAIN_KEY: _FEATURES[schema.DOMAIN_KEY]})
        for domain in domains[schema.DOMAIN_KEY].numpy():
            counts[domain.decode()] += 1
    return counts


def training_stream(
    files: list[str],
    domain: str,
    image_size: int,
    batch_size: int,
    seed: int,
    *,
    jitter_scale: float = 1.0,
    flip: bool = True,
) -> tf.data.Dataset:
    """An endless, shuffled, augmented stream of float batches of one domain.

    Augmentation (the paper's): with `jitter_scale` > 1 each image is resized (bicubic, to
    uint8 like the reference's PIL resize, once: the enlarged images are cached) to
    `round(image_size * jitter_scale)` and a random `image_size` window is cropped per draw;
    with `flip` it is mirrored left-right with probability 1/2. Deterministic for a given
    seed: shuffling uses the seed, crops and flips are stateless and keyed by the element's
    position in the stream (so a resumed run continues with the same augmentations).
    """
    jittered = max(image_size, round(image_size * jitter_scale))

    def enlarge(image):  # once per image: the cache holds the enlarged uint8 images
        image = tf.image.resize(tf.cast(image, tf.float32), [jittered, jittered], "bicubic")
        return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)

    images = domain_images(files, domain, image_size)
    if jittered > image_size:
        images = images.map(enlarge, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    stream = images.cache().shuffle(4096, seed=seed, reshuffle_each_iteration=True).repeat()

    def augment(index, image):
        key = tf.stack([tf.constant(seed, tf.int64), index])
        if jittered > image_size:
            image = tf.image.stateless_random_crop(
                image, [image_size, image_size, 3], seed=key + tf.constant([0, 1], tf.int64)
            )
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, seed=key)
        return image

    # One thread: crops and flips are cheap, and on a CPU the step already uses every core (a
    # parallel map only competes with it; measured by `make bench-loop`).
    stream = stream.enumerate().map(augment).batch(batch_size, drop_remainder=True)
    return stream.map(to_float).prefetch(2)

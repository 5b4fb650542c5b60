"""The `tf.Example` schema shared by the Beam preprocessing job, the Trainer and the Evaluator.

Every example is one image of one domain:

- `image`: PNG bytes, RGB, `preprocess.image_size` square.
- `domain`: b"A" or b"B".
- `split`: b"train" or b"test".
- `source_sha256`: hex SHA-256 of the original file's bytes.
- `source_path`: path of the original file, relative to the dataset root.
"""

from __future__ import annotations

IMAGE_KEY = "image"
DOMAIN_KEY = "domain"
SPLIT_KEY = "split"
SOURCE_SHA256_KEY = "source_sha256"
SOURCE_PATH_KEY = "source_path"

DOMAINS = ("A", "B")
SPLITS = ("train", "test")


def layout_dir(split: str, domain: str) -> str:
    """Returns the CycleGAN-layout folder name, e.g. `trainA`."""
    return f"{split}{domain}"

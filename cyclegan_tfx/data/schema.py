"""The `tf.Example` schema shared by the Beam preprocessing job, the Trainer and the Evaluator.

Every example is one image of one domain:

- `image`: PNG bytes, RGB, `preprocess.image_size` square.
- `domain`: b"A" or b"B".
- `split`: b"train" or b"test".
- `source_sha256`: hex SHA-256 of the original file's bytes.
- `source_path`: path of the original file, relative to the dataset root.
- `truth` (only test examples of a paired dataset): PNG bytes of the image's true translation
  into the other domain, preprocessed like `image`.
- `colour_transfer` (only test examples): PNG bytes of the colour-transfer baseline's
  translation of `image` (:mod:`cyclegan_tfx.evaluation.colour_transfer`, fitted on the
  training split by the preprocessing job).

Paired layout (optional, test split only): `testA_truthB/<name>` holds the true B-domain
version of `testA/<name>`, and `testB_truthA/<name>` the true A-domain version of
`testB/<name>` (same file name). Without these folders a dataset is unpaired and its examples
have no `truth`.
"""

from __future__ import annotations

IMAGE_KEY = "image"
DOMAIN_KEY = "domain"
SPLIT_KEY = "split"
SOURCE_SHA256_KEY = "source_sha256"
SOURCE_PATH_KEY = "source_path"
TRUTH_KEY = "truth"
COLOUR_TRANSFER_KEY = "colour_transfer"

DOMAINS = ("A", "B")
SPLITS = ("train", "test")
TRUTH_SPLIT = "test"


def layout_dir(split: str, domain: str) -> str:
    """Returns the CycleGAN-layout folder name, e.g. `trainA`."""
    return f"{split}{domain}"


def other_domain(domain: str) -> str:
    """The other domain: A for B, B for A."""
    return "B" if domain == "A" else "A"


def truth_dir(domain: str) -> str:
    """The folder of ground truth for the test images of `domain`, e.g. `testA_truthB`."""
    return f"{layout_dir(TRUTH_SPLIT, domain)}_truth{other_domain(domain)}"

"""Scores of in-memory generators on the test split, outside the pipeline (studies, curves).

The same measures as the Evaluator's metric (`components/quality_metrics.py`), computed on the
whole test split at once: FID and KID per direction with the gate's backbone, FID of doing
nothing, and where the test split has ground truth, MAE / PSNR / SSIM of the translation and of
doing nothing. The real images' features are computed once.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import tensorflow as tf
from PIL import Image

from cyclegan_tfx import paired, schema
from cyclegan_tfx.config import Config
from cyclegan_tfx.fid.backbone import Backbone
from cyclegan_tfx.fid.distance import fid_from_rows, kernel_inception_distance
from cyclegan_tfx.metric_keys import KEYS, PAIRED_METRICS
from cyclegan_tfx.model import data

SOURCE = {"a2b": "A", "b2a": "B"}
TARGET = {"a2b": "B", "b2a": "A"}


def preprocessed_files(config: Config) -> tuple[list[str], list[str]]:
    """The preprocessing job's train and test TFRecords (`paths.preprocessed`).

    Raises:
        FileNotFoundError: If either split is missing (the message says how to make it).
    """
    preprocessed = config.paths.resolve("preprocessed")
    train = sorted(str(p) for p in (preprocessed / "train").glob("*.tfrecord"))
    test = sorted(str(p) for p in (preprocessed / "test").glob("*.tfrecord"))
    if not train or not test:
        raise FileNotFoundError(
            f"no TFRecords under {preprocessed}; run `dvc repro preprocess` first"
        )
    return train, test


def _decode(value: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(value)).convert("RGB"))


def read_test_split(files: list[str]) -> dict[str, dict[str, Any]]:
    """Reads a test split into memory.

    Returns:
        Per domain: `images` (uint8 [N, S, S, 3]) and `truths` (the same shape, or None when not
        every image has ground truth).
    """
    found: dict[str, dict[str, list]] = {d: {"images": [], "truths": []} for d in schema.DOMAINS}
    compression = "GZIP" if files and all(f.endswith(".gz") for f in files) else ""
    for record in tf.data.TFRecordDataset(files, compression_type=compression):
        features = tf.train.Example.FromString(record.numpy()).features.feature
        domain = features[schema.DOMAIN_KEY].bytes_list.value[0].decode()
        found[domain]["images"].append(_decode(features[schema.IMAGE_KEY].bytes_list.value[0]))
        truth = features[schema.TRUTH_KEY].bytes_list.value if schema.TRUTH_KEY in features else []
        found[domain]["truths"].append(_decode(truth[0]) if truth else None)
    result = {}
    for domain, parts in found.items():
        truths = parts["truths"]
        complete = bool(truths) and all(t is not None for t in truths)
        result[domain] = {
            "images": np.stack(parts["images"]),
            "truths": np.stack(truths) if complete else None,
        }
    return result


class TestSetScorer:
    """Scores generators on a test split (see the module docstring).

    Args:
        files: The test split's TFRecord files.
        backbone: The FID feature network.
        kid_subsets: KID subsets.
    """

    __test__ = False  # not a pytest class

    def __init__(self, files: list[str], backbone: Backbone, kid_subsets: int = 50) -> None:
        self.backbone = backbone
        self.kid_subsets = kid_subsets
        self.split = read_test_split(files)
        self.real_features = {d: backbone(s["images"]) for d, s in self.split.items()}
        self.fid_identity = fid_from_rows(self.real_features["A"], self.real_features["B"])

    @property
    def has_ground_truth(self) -> bool:
        """Whether both test domains carry ground truth."""
        return all(s["truths"] is not None for s in self.split.values())

    def scores(self, generators: dict[str, Any], distances: bool = True) -> dict[str, float]:
        """Every score of both directions.

        Args:
            generators: {"a2b": generator A->B, "b2a": generator B->A}, Keras models on float
                images in [-1, 1].
            distances: Also FID and KID (the backbone's forward pass, most of the cost);
                False: the paired scores only.

        Returns:
            Keys as in :mod:`cyclegan_tfx.metric_keys` (fid, kid, fid identity, paired ones).
        """
        result: dict[str, float] = {}
        for direction, generator in generators.items():
            keys = KEYS[direction]
            source = self.split[SOURCE[direction]]
            translated = data.to_uint8(
                generator(data.to_float(source["images"]), training=False)
            ).numpy()
            if distances:
                features = self.backbone(translated)
                real = self.real_features[TARGET[direction]]
                result[keys.fid] = fid_from_rows(features, real)
                result[keys.fid_identity] = self.fid_identity
                result[keys.kid], result[keys.kid_std] = kernel_inception_distance(
                    features, real, num_subsets=self.kid_subsets
                )
            if source["truths"] is None:
                continue
            for metric in PAIRED_METRICS:
                function = getattr(paired, metric)
                result[keys.paired(metric)] = float(
                    np.mean(
                        [function(x, t) for x, t in zip(translated, source["truths"], strict=True)]
                    )
                )
                result[keys.paired(metric, "_identity")] = float(
                    np.mean(
                        [
                            function(x, t)
                            for x, t in zip(source["images"], source["truths"], strict=True)
                        ]
                    )
                )
        return result

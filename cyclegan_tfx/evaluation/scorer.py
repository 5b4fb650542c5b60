"""Scores of in-memory generators on a preprocessed test split (studies, curves, benchmarks).

The same scores as the Evaluator's (:mod:`cyclegan_tfx.evaluation.quality`, the one scoring
path), computed outside the pipeline on the whole test split at once: the images that do not
depend on the model (real, ground truth, colour transfer) run through the backbone once (with
`evaluate.cache_reference_stats`, once for every process: the Evaluator's feature cache), and
only the translations on every call.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf

from cyclegan_tfx.config import Config, EvaluateConfig
from cyclegan_tfx.data import schema
from cyclegan_tfx.evaluation.fid.backbone import Backbone, load_backbone
from cyclegan_tfx.evaluation.fid.reference import FeatureCache, feature_cache
from cyclegan_tfx.evaluation.quality import (
    DIRECTION_OF_DOMAIN,
    QualitySets,
    QualitySettings,
    quality_scores,
)
from cyclegan_tfx.image_grid import decode_png
from cyclegan_tfx.model import data


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


def _optional_image(features: Any, key: str) -> np.ndarray | None:
    values = features[key].bytes_list.value if key in features else []
    return decode_png(values[0]) if values and values[0] else None


def _stack_or_none(images: list[np.ndarray | None]) -> np.ndarray | None:
    return np.stack(images) if images and all(i is not None for i in images) else None


def read_test_split(files: list[str]) -> dict[str, dict[str, Any]]:
    """Reads a test split into memory.

    Returns:
        Per domain: `images` (uint8 [N, S, S, 3]), `truths` and `colour` (the same shape, or
        None when not every image has one).
    """
    found: dict[str, dict[str, list]] = {
        d: {"images": [], "truths": [], "colour": []} for d in schema.DOMAINS
    }
    compression = "GZIP" if files and all(f.endswith(".gz") for f in files) else ""
    for record in tf.data.TFRecordDataset(files, compression_type=compression):
        features = tf.train.Example.FromString(record.numpy()).features.feature
        domain = found[features[schema.DOMAIN_KEY].bytes_list.value[0].decode()]
        domain["images"].append(decode_png(features[schema.IMAGE_KEY].bytes_list.value[0]))
        domain["truths"].append(_optional_image(features, schema.TRUTH_KEY))
        domain["colour"].append(_optional_image(features, schema.COLOUR_TRANSFER_KEY))
    return {
        domain: {
            "images": np.stack(parts["images"]),
            "truths": _stack_or_none(parts["truths"]),
            "colour": _stack_or_none(parts["colour"]),
        }
        for domain, parts in found.items()
    }


def quality_settings(evaluate: EvaluateConfig, ground_truth: bool) -> QualitySettings:
    """The scores' settings from params.yaml's `evaluate` section."""
    return QualitySettings(
        batch_size=evaluate.batch_size,
        kid_num_subsets=evaluate.kid_num_subsets,
        kid_subset_size=evaluate.kid_subset_size,
        kid_max_samples=evaluate.kid_max_samples,
        bootstrap_samples=evaluate.bootstrap_samples,
        ground_truth=ground_truth,
        fid_bound=evaluate.fid_upper_bound.to_metric_config(),
        kid_bound=evaluate.kid_upper_bound.to_metric_config(),
    )


class MemoryFeatureCache:
    """Feature rows by image digest, in memory (the interface of `fid.reference.FeatureCache`)."""

    def __init__(self) -> None:
        self._rows: dict[str, np.ndarray] = {}

    def load(self, digest: str) -> np.ndarray | None:
        """The row of an image, or None."""
        return self._rows.get(digest)

    def store(self, digests: list[str], rows: np.ndarray) -> None:
        """Keeps the rows of these images."""
        self._rows.update(zip(digests, np.array(rows), strict=True))


class TestSetScorer:
    """Scores generators on a test split (see the module docstring).

    Args:
        files: The test split's TFRecord files.
        backbone: The FID feature network.
        settings: How to score (:func:`quality_settings`; default: the defaults); with ground
            truth exactly when every test image carries it.
        cache: Where the feature rows of the images that do not depend on the model are kept
            (default: in memory, for this scorer's life).
    """

    __test__ = False  # not a pytest class

    def __init__(
        self,
        files: list[str],
        backbone: Backbone,
        settings: QualitySettings | None = None,
        cache: FeatureCache | MemoryFeatureCache | None = None,
    ) -> None:
        self.backbone = backbone
        self.split = read_test_split(files)
        self.settings = dataclasses.replace(
            settings or QualitySettings(), ground_truth=self.has_ground_truth
        )
        self._cache = cache if cache is not None else MemoryFeatureCache()

    @classmethod
    def from_config(cls, config: Config, backbone: Backbone | None = None) -> TestSetScorer:
        """The scorer of the project's test split (`paths.preprocessed`), scored as the gate.

        Args:
            config: The configuration (its `evaluate` section, its preprocessed data).
            backbone: The feature network; default: the gate's (`evaluate.backbone`).
        """
        _, test_files = preprocessed_files(config)
        if backbone is None:
            backbone = load_backbone(config.evaluate.backbone)
        settings = quality_settings(config.evaluate, ground_truth=False)
        cache = None
        if config.evaluate.cache_reference_stats:  # the Evaluator's cache: shared across runs
            cache = feature_cache(config.evaluate.backbone.cache_dir, backbone)
        return cls(test_files, backbone, settings, cache)

    @property
    def has_ground_truth(self) -> bool:
        """Whether every test image of both domains carries ground truth."""
        return all(s["truths"] is not None for s in self.split.values())

    def translate(self, generators: dict[str, Any]) -> dict[str, np.ndarray]:
        """The uint8 translations of each domain's test images, by direction."""
        return {
            direction: data.to_uint8(
                generators[direction](data.to_float(self.split[domain]["images"]), training=False)
            ).numpy()
            for domain, direction in DIRECTION_OF_DOMAIN.items()
        }

    def scores(self, generators: dict[str, Any], distances: bool = True) -> dict[str, Any]:
        """Every score of both directions.

        Args:
            generators: {"a2b": generator A->B, "b2a": generator B->A}, Keras models on float
                images in [-1, 1].
            distances: Also FID and KID (the backbone's forward pass, most of the cost);
                False: the paired scores only.

        Returns:
            Keys as in :mod:`cyclegan_tfx.evaluation.metric_keys`.
        """
        translated = self.translate(generators)
        sets = QualitySets.empty(self.settings.kid_max_samples)
        for domain, direction in DIRECTION_OF_DOMAIN.items():
            split = self.split[domain]
            for index, image in enumerate(split["images"]):
                sets.add(
                    image,
                    translated[direction][index],
                    domain,
                    truth=None if split["truths"] is None else split["truths"][index],
                    colour=None if split["colour"] is None else split["colour"][index],
                )
        if distances:
            sets.flush(self.backbone, self._cache, self.settings.batch_size, force=True)
        return quality_scores(sets, self.settings, self.backbone.name if distances else None)

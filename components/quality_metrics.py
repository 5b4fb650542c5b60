"""Translation quality as one custom TensorFlow Model Analysis metric, used by the TFX Evaluator.

TFMA wiring only: the scores are those of :mod:`cyclegan_tfx.evaluation.quality` (the one
scoring path, shared with the in-memory scorer of the studies). The evaluated model's
`fid_eval` signature returns, per test example, the `real` image, the `translated` image
(through the generator of the example's own domain) and `is_domain_a`; the examples carry the
colour-transfer baseline's image (`colour_transfer`) and, in a paired dataset, the true
translation (`truth`; :mod:`cyclegan_tfx.data.schema`). One combiner per model feeds them to
:class:`~cyclegan_tfx.evaluation.quality.QualitySets`, runs the backbone on full batches, merges
partial results across workers and emits every key of both directions.

Everything is computed by the same combiner for every metric config: TFMA runs computations
with identical keys once, so each `MetricConfig` only names (with `name`) the key its
threshold applies to. With `cache_reference_stats` the features of the images that depend on
the data only (real, ground truth, colour transfer) come from a per-image cache
(:class:`cyclegan_tfx.evaluation.fid.reference.FeatureCache`), so after the first
evaluation of a data version only the translations run through the backbone.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types

from cyclegan_tfx.code_fingerprint import check_running_code
from cyclegan_tfx.config import DIRECTIONS, BackboneConfig
from cyclegan_tfx.data import schema
from cyclegan_tfx.evaluation.fid.backbone import Backbone, load_backbone
from cyclegan_tfx.evaluation.fid.reference import FeatureCache, feature_cache
from cyclegan_tfx.evaluation.metric_keys import KEYS
from cyclegan_tfx.evaluation.quality import QualitySets, QualitySettings, quality_scores
from cyclegan_tfx.image_grid import decode_png

logger = logging.getLogger(__name__)

METRIC_CLASS_NAME = "TranslationQuality"


class BackboneMismatchError(RuntimeError):
    """The Evaluator's FID backbone is not the one the pipeline was compiled with."""


def check_code_fingerprint(expected: str | None) -> None:
    """Fails if the running metric code is not the code the pipeline was compiled with.

    Args:
        expected: The fingerprint in the metric's config (None: not checked, e.g. in tests).

    Raises:
        StaleCodeError: On a mismatch (a stale image on a remote runner).
    """
    if expected is not None:
        check_running_code(__name__, expected, "Evaluator's metric")


def emitted_keys(ground_truth: bool) -> list[str]:
    """Every key the metric emits (the paired ones only for data with ground truth)."""
    return [key for direction in DIRECTIONS for key in KEYS[direction].all(ground_truth)]


def _feature_images(features: Any, key: str, count: int, shape: tuple[int, ...]) -> list:
    """The PNG feature `key` of each of `count` examples, decoded (None where absent)."""
    values = None if features is None else features.get(key)
    if values is None:
        return [None] * count
    if count == 1 and not (isinstance(values, np.ndarray) and values.shape[:1] == (1,)):
        values = [values]
    if len(values) != count:
        return [None] * count
    images = []
    for value in values:
        if isinstance(value, np.ndarray):
            value = value.reshape(-1)[0] if value.size else None
        image = decode_png(value) if isinstance(value, bytes) and value else None
        if image is not None and image.shape != shape:
            raise ValueError(f"{key} of shape {image.shape} for an image of shape {shape}")
        images.append(image)
    return images


@dataclasses.dataclass(frozen=True)
class _Settings:
    backbone: BackboneConfig
    backbone_name: str | None
    cache_reference_stats: bool
    quality: QualitySettings


class _QualityCombiner(beam.CombineFn):
    """Feeds the examples of one model to :class:`QualitySets` (module docstring)."""

    def __init__(
        self, keys: dict[str, metric_types.MetricKey], model_name: str, settings: _Settings
    ) -> None:
        self._keys = keys
        self._model_name = model_name
        self._settings = settings
        self._backbone: Backbone | None = None

    def setup(self) -> None:
        """Builds the backbone once per worker."""
        self._get_backbone()

    def _get_backbone(self) -> Backbone:
        if self._backbone is None:
            batch_size = self._settings.quality.batch_size
            backbone = load_backbone(self._settings.backbone, batch_size=batch_size)
            expected = self._settings.backbone_name
            if expected is not None and backbone.name != expected:
                raise BackboneMismatchError(
                    f"the Evaluator's FID backbone is {backbone.name}, but the pipeline was "
                    f"compiled for {expected}: install the same weights where the Evaluator "
                    "runs (`make setup`; the image: Dockerfile) or recompile"
                )
            self._backbone = backbone
        return self._backbone

    def _cache(self) -> FeatureCache | None:
        """The data images' feature cache (None when `cache_reference_stats` is off)."""
        if not self._settings.cache_reference_stats:
            return None
        return feature_cache(self._settings.backbone.cache_dir, self._get_backbone())

    def _flush(self, sets: QualitySets, force: bool) -> QualitySets:
        sets.flush(self._get_backbone(), self._cache(), self._settings.quality.batch_size, force)
        return sets

    def create_accumulator(self) -> QualitySets:
        return QualitySets.empty(self._settings.quality.kid_max_samples)

    def add_input(
        self, accumulator: QualitySets, element: metric_types.StandardMetricInputs
    ) -> QualitySets:
        predictions = element.get_predictions(self._model_name)
        real = np.asarray(predictions["real"])
        translated = np.asarray(predictions["translated"])
        is_a = np.asarray(predictions["is_domain_a"]).astype(bool)
        if real.ndim == 3:  # a single example
            real, translated, is_a = real[None], translated[None], is_a.reshape(1)
        count, shape = len(is_a), real.shape[1:]
        truths = [None] * count
        if self._settings.quality.ground_truth:
            truths = _feature_images(element.features, schema.TRUTH_KEY, count, shape)
        colours = _feature_images(element.features, schema.COLOUR_TRANSFER_KEY, count, shape)
        for index in range(count):
            domain = "A" if is_a[index] else "B"
            accumulator.add(real[index], translated[index], domain, truths[index], colours[index])
        return self._flush(accumulator, force=False)

    def merge_accumulators(self, accumulators) -> QualitySets:
        merged = self.create_accumulator()
        for accumulator in accumulators:
            merged.merge(accumulator)
        return self._flush(merged, force=False)

    def compact(self, accumulator: QualitySets) -> QualitySets:
        return self._flush(accumulator, force=True)

    def extract_output(self, accumulator: QualitySets) -> dict[metric_types.MetricKey, Any]:
        self._flush(accumulator, force=True)
        if self._settings.cache_reference_stats:
            logger.info(
                "FID features of the real test images from the cache: %s", accumulator.cached()
            )
        values = quality_scores(accumulator, self._settings.quality, self._get_backbone().name)
        return {self._keys[name]: value for name, value in values.items()}


def _quality_computations(
    backbone: dict[str, Any] | None = None,
    backbone_name: str | None = None,
    batch_size: int = 16,
    kid_num_subsets: int = 100,
    kid_subset_size: int = 1000,
    kid_max_samples: int = 2000,
    cache_reference_stats: bool = True,
    bootstrap_samples: int = 100,
    ground_truth: bool = False,
    fid_bound: dict[str, Any] | None = None,
    kid_bound: dict[str, Any] | None = None,
    code_fingerprint: str | None = None,
    name: str | None = None,
    model_names: list[str] | None = None,
    output_names: list[str] | None = None,
    sub_keys: list[metric_types.SubKey] | None = None,
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    # Per model, unweighted, not sliced by key; `name` only selects the key a threshold
    # applies to, so every metric config shares this one computation.
    del name, output_names, sub_keys, example_weighted
    check_code_fingerprint(code_fingerprint)
    settings = _Settings(
        backbone=BackboneConfig(**(backbone or {})),
        backbone_name=backbone_name,
        cache_reference_stats=cache_reference_stats,
        quality=QualitySettings(
            batch_size=batch_size,
            kid_num_subsets=kid_num_subsets,
            kid_subset_size=kid_subset_size,
            kid_max_samples=kid_max_samples,
            bootstrap_samples=bootstrap_samples,
            ground_truth=ground_truth,
            fid_bound=dict(fid_bound or {}),
            kid_bound=dict(kid_bound or {}),
        ),
    )
    computations = []
    for model_name in model_names or [""]:
        keys = {
            key: metric_types.MetricKey(name=key, model_name=model_name)
            for key in emitted_keys(ground_truth)
        }
        features = {schema.COLOUR_TRANSFER_KEY: {}}
        if ground_truth:
            features[schema.TRUTH_KEY] = {}
        include = {"features": features}
        computations.append(
            metric_types.MetricComputation(
                keys=list(keys.values()),
                preprocessors=[
                    metric_types.StandardMetricInputsPreprocessor(
                        include_filter=include,
                        include_default_inputs=True,
                        model_names=[model_name] if model_name else None,
                    )
                ],
                combiner=_QualityCombiner(keys, model_name, settings),
            )
        )
    return computations


class TranslationQuality(metric_types.Metric):
    """FID, KID, identity-mapping FID and ground-truth scores of both directions.

    `name` is the key a threshold on this metric applies to (one of :func:`emitted_keys`); every
    instance computes all keys (TFMA de-duplicates the identical computations).
    """

    def __init__(
        self,
        name: str = KEYS["a2b"].fid,
        backbone: dict[str, Any] | None = None,
        backbone_name: str | None = None,
        batch_size: int = 16,
        kid_num_subsets: int = 100,
        kid_subset_size: int = 1000,
        kid_max_samples: int = 2000,
        cache_reference_stats: bool = True,
        bootstrap_samples: int = 100,
        ground_truth: bool = False,
        fid_bound: dict[str, Any] | None = None,
        kid_bound: dict[str, Any] | None = None,
        code_fingerprint: str | None = None,
    ) -> None:
        """Initialises the metric.

        Args:
            name: The key a threshold on this metric applies to.
            backbone: `BackboneConfig` fields (params.yaml evaluate.backbone).
            backbone_name: The backbone the pipeline was compiled for (the weights found then:
                part of the Evaluator's cache key, so installing the standard weights
                re-evaluates); the running one must match. None: not checked (tests).
            batch_size: Images per backbone forward pass.
            kid_num_subsets: KID subsets (evaluate.kid_num_subsets).
            kid_subset_size: KID subset size (evaluate.kid_subset_size).
            kid_max_samples: Feature rows kept per image set (evaluate.kid_max_samples); FID's
                bootstrap resamples them.
            cache_reference_stats: Cache the real images' statistics per data version.
            bootstrap_samples: Resamples for the spreads (evaluate.bootstrap_samples; 0: none).
            ground_truth: Read the examples' `truth` and emit the paired scores.
            fid_bound: {"backbone": name, "a2b": bound or None, "b2a": ...}: absolute FID bounds
                and the backbone they were calibrated on (never applied with another one).
            kid_bound: The same for KID.
            code_fingerprint: The fingerprint of this module's code at pipeline compile time;
                it makes metric code changes part of the Evaluator's cache key and is checked
                against the running code.

        Raises:
            ValueError: On a name that is not an emitted key.
        """
        emitted = emitted_keys(ground_truth)
        if name not in emitted:
            raise ValueError(f"name must be one of the emitted keys {emitted}, got {name!r}")
        super().__init__(
            _quality_computations,
            name=name,
            backbone=backbone,
            backbone_name=backbone_name,
            batch_size=batch_size,
            kid_num_subsets=kid_num_subsets,
            kid_subset_size=kid_subset_size,
            kid_max_samples=kid_max_samples,
            cache_reference_stats=cache_reference_stats,
            bootstrap_samples=bootstrap_samples,
            ground_truth=ground_truth,
            fid_bound=fid_bound,
            kid_bound=kid_bound,
            code_fingerprint=code_fingerprint,
        )

    @property
    def compute_confidence_interval(self) -> bool:
        """TFMA's own confidence intervals are off: the spreads are computed here."""
        return False


metric_types.register_metric(TranslationQuality)

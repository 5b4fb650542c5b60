"""Translation quality as one custom TensorFlow Model Analysis metric, used by the TFX Evaluator.

The evaluated model's `fid_eval` signature returns, per test example, the `real` image, the
`translated` image (through the generator of the example's own domain) and `is_domain_a`; a
paired dataset's examples also carry the true translation (`truth` feature, see
:mod:`cyclegan_tfx.schema`). One combiner per model computes, for both directions (names in
:mod:`cyclegan_tfx.metric_keys`):

- FID and KID of the translated images against the real target domain (features from the
  backbone, :mod:`cyclegan_tfx.fid.backbone`), FID's bootstrap spread over the test images,
  and N;
- the same FID for doing nothing: the untranslated source images against the target domain
  (the "identity mapping"); it only needs the real images' statistics, which are cached per
  data version, so it costs no forward pass after the first evaluation of a data version;
- `fid_<d>_vs_identity` = FID / identity FID: the gate's backbone-independent check;
- optional absolute FID/KID bounds, applied only when the evaluation's backbone is the one
  they were calibrated on (`<m>_<d>_vs_bound`, `<m>_<d>_bound_applied`);
- with ground truth: MAE, PSNR and SSIM of the translation and of the untranslated source
  against the truth (:mod:`cyclegan_tfx.paired`), their bootstrap spreads, N, and
  `mae_<d>_vs_identity`.

Over 400 lines on purpose: TFMA's metric pattern keeps the combiner, its computations and the
metric class together, and one combiner computes every key (splitting it would split one
accumulator across modules).

Everything is computed by the same combiner for every metric config: TFMA runs computations
with identical keys once, so each `MetricConfig` only names (with `name`) the key its
threshold applies to.

Memory does not grow with the test split's images: the accumulator holds, per side, at most
one batch of waiting images, mergeable FID sufficient statistics and a bounded sample of
feature rows (`kid_max_samples` rows, those of the images with the smallest content hashes,
identical however Beam splits the data). With `cache_reference_stats` the real images' feature
rows come from a per-image cache (:class:`cyclegan_tfx.fid.reference.FeatureCache`), so after
the first evaluation of a data version only the translations run through the backbone. Paired
scores are three floats per image.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from PIL import Image
from tensorflow_model_analysis.metrics import metric_types

from cyclegan_tfx import paired, schema
from cyclegan_tfx.code_fingerprint import code_fingerprint as fingerprint_of_code
from cyclegan_tfx.config import DIRECTIONS, BackboneConfig
from cyclegan_tfx.fid.backbone import Backbone, load_backbone
from cyclegan_tfx.fid.distance import (
    bootstrap_fid_ratio_std,
    bootstrap_fid_std,
    fid_from_rows,
    fid_from_stats,
    kernel_inception_distance,
)
from cyclegan_tfx.fid.reference import (
    STATS_DIRNAME,
    FeatureCache,
    StreamingFeatures,
    image_digest,
)
from cyclegan_tfx.fid.stats import FeatureSample, FeatureStats
from cyclegan_tfx.metric_keys import KEYS, PAIRED_METRICS, DirectionKeys

logger = logging.getLogger(__name__)

METRIC_CLASS_NAME = "TranslationQuality"
KID_SEED = 0
"""Seed of the KID subset sampling (the same for candidate and baseline)."""
BOOTSTRAP_SEED = 0
"""Seed of the bootstrap resampling (the same for candidate and baseline)."""
CODE_FINGERPRINT_KEY = "code_fingerprint"
"""Metric config key: the fingerprint of this module's code when the pipeline was compiled."""
SOURCE_DOMAIN = {"a2b": "A", "b2a": "B"}
TARGET_DOMAIN = {"a2b": "B", "b2a": "A"}


class StaleMetricCodeError(RuntimeError):
    """The metric code running in the Evaluator is not the code the pipeline was compiled with."""


def check_code_fingerprint(expected: str | None) -> None:
    """Fails if the running metric code is not the code the pipeline was compiled with.

    Args:
        expected: The fingerprint in the metric's config (None: not checked, e.g. in tests).

    Raises:
        StaleMetricCodeError: On a mismatch (a stale image on a remote runner).
    """
    if expected is None:
        return
    running = fingerprint_of_code(__name__).digest
    if running != expected:
        raise StaleMetricCodeError(
            f"the Evaluator runs metric code {running}, but the pipeline was compiled with "
            f"{expected}: rebuild the pipeline image from the commit you compiled, or recompile"
        )


def emitted_keys(ground_truth: bool) -> list[str]:
    """Every key the metric emits (the paired ones only for data with ground truth)."""
    return [key for direction in DIRECTIONS for key in KEYS[direction].all(ground_truth)]


@dataclasses.dataclass
class _Paired:
    """Per-image ground-truth scores of one direction: of the translation and of the source."""

    translated: list[paired.PairedScores] = dataclasses.field(default_factory=list)
    identity: list[paired.PairedScores] = dataclasses.field(default_factory=list)

    def merge(self, other: _Paired) -> None:
        self.translated.extend(other.translated)
        self.identity.extend(other.identity)


@dataclasses.dataclass
class _Accumulator:
    """Real images per domain, translations per direction, paired scores per direction."""

    real: dict[str, StreamingFeatures]
    fake: dict[str, StreamingFeatures]
    paired: dict[str, _Paired] = dataclasses.field(
        default_factory=lambda: {d: _Paired() for d in DIRECTIONS}
    )

    @classmethod
    def empty(cls, max_samples: int) -> _Accumulator:
        return cls(
            real={d: StreamingFeatures(max_samples) for d in schema.DOMAINS},
            fake={d: StreamingFeatures(max_samples) for d in DIRECTIONS},
        )


def _decode_truth(value: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """A truth PNG from the example's features, or None when the example has none."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return None
        value = value.reshape(-1)[0]
    if not isinstance(value, bytes) or not value:
        return None
    image = np.asarray(Image.open(io.BytesIO(value)).convert("RGB"))
    if image.shape != shape:
        raise ValueError(f"ground truth of shape {image.shape} for an image of shape {shape}")
    return image


def _truth_values(features: Any, count: int) -> list[Any]:
    """The `truth` feature of each of `count` examples (None where absent)."""
    values = None if features is None else features.get(schema.TRUTH_KEY)
    if values is None:
        return [None] * count
    if count == 1 and not (isinstance(values, np.ndarray) and values.shape[:1] == (1,)):
        return [values]
    return list(values) if len(values) == count else [None] * count


@dataclasses.dataclass(frozen=True)
class _Settings:
    backbone: BackboneConfig
    batch_size: int
    kid_num_subsets: int
    kid_subset_size: int
    kid_max_samples: int
    cache_reference_stats: bool
    bootstrap_samples: int
    ground_truth: bool
    fid_bound: dict[str, Any]
    kid_bound: dict[str, Any]


class _QualityCombiner(beam.CombineFn):
    """Accumulates backbone features and paired scores of both directions (module docstring)."""

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
            self._backbone = load_backbone(
                self._settings.backbone, batch_size=self._settings.batch_size
            )
        return self._backbone

    def _cache(self) -> FeatureCache | None:
        """The real images' feature cache (None when `cache_reference_stats` is off)."""
        if not self._settings.cache_reference_stats:
            return None
        backbone = self._get_backbone()
        root = Path(self._settings.backbone.cache_dir).expanduser() / STATS_DIRNAME
        return FeatureCache(root, backbone.name, backbone.feature_dim)

    def _flush(self, accumulator: _Accumulator, force: bool) -> _Accumulator:
        backbone, batch = self._get_backbone(), self._settings.batch_size
        cache = self._cache()
        for side in accumulator.fake.values():
            side.flush(backbone, None, batch, force)
        for side in accumulator.real.values():
            side.flush(backbone, cache, batch, force)
        return accumulator

    def create_accumulator(self) -> _Accumulator:
        return _Accumulator.empty(self._settings.kid_max_samples)

    def add_input(
        self, accumulator: _Accumulator, element: metric_types.StandardMetricInputs
    ) -> _Accumulator:
        predictions = element.get_predictions(self._model_name)
        real = np.asarray(predictions["real"])
        translated = np.asarray(predictions["translated"])
        is_a = np.asarray(predictions["is_domain_a"]).astype(bool)
        if real.ndim == 3:  # a single example
            real, translated, is_a = real[None], translated[None], is_a.reshape(1)
        truths = (
            _truth_values(element.features, len(is_a))
            if self._settings.ground_truth
            else [None] * len(is_a)
        )
        for index in range(len(is_a)):
            domain = "A" if is_a[index] else "B"
            direction = "a2b" if is_a[index] else "b2a"
            # A translation is keyed by its source image's digest: the samples of the source
            # images and of their translations then hold the same images, row for row.
            digest = image_digest(real[index])
            accumulator.real[domain].add(real[index], digest)
            accumulator.fake[direction].add(translated[index], digest)
            truth = _decode_truth(truths[index], real[index].shape)
            if truth is not None:
                scores = accumulator.paired[direction]
                scores.translated.append(paired.paired_scores(translated[index], truth))
                scores.identity.append(paired.paired_scores(real[index], truth))
        return self._flush(accumulator, force=False)

    def merge_accumulators(self, accumulators: Iterable[_Accumulator]) -> _Accumulator:
        merged = _Accumulator.empty(self._settings.kid_max_samples)
        for accumulator in accumulators:
            for domain in schema.DOMAINS:
                merged.real[domain].merge(accumulator.real[domain])
            for direction in DIRECTIONS:
                merged.fake[direction].merge(accumulator.fake[direction])
                merged.paired[direction].merge(accumulator.paired[direction])
        return self._flush(merged, force=False)

    def compact(self, accumulator: _Accumulator) -> _Accumulator:
        return self._flush(accumulator, force=True)

    def _fid(self, a: tuple[FeatureStats, FeatureSample], b: tuple[FeatureStats, FeatureSample]):
        """FID and its bootstrap spread; from the rows when the samples hold every image."""
        (stats_a, sample_a), (stats_b, sample_b) = a, b
        rows_a, rows_b = sample_a.truncated().rows, sample_b.truncated().rows
        complete = len(rows_a) == stats_a.count and len(rows_b) == stats_b.count
        value = fid_from_rows(rows_a, rows_b) if complete else fid_from_stats(stats_a, stats_b)
        spread = bootstrap_fid_std(
            rows_a, rows_b, self._settings.bootstrap_samples, seed=BOOTSTRAP_SEED
        )
        return value, spread

    def _bound(self, bound: dict[str, Any], direction: str, value: float) -> tuple[float, int]:
        """(value / bound, 1) when the bound exists for this backbone, else (0, 0)."""
        limit = bound.get(direction)
        if limit is None or bound.get("backbone") != self._get_backbone().name:
            return 0.0, 0
        return value / limit, 1

    def _direction_output(
        self,
        keys: DirectionKeys,
        fake: tuple[FeatureStats, FeatureSample],
        source: tuple[FeatureStats, FeatureSample],
        target: tuple[FeatureStats, FeatureSample],
        scores: _Paired,
    ) -> dict[str, Any]:
        fid, fid_std = self._fid(fake, target)
        identity, identity_std = self._fid(source, target)
        ratio_std = bootstrap_fid_ratio_std(
            fake[1].truncated().rows,
            source[1].truncated().rows,
            target[1].truncated().rows,
            self._settings.bootstrap_samples,
            seed=BOOTSTRAP_SEED,
        )
        kid, kid_std = kernel_inception_distance(
            fake[1].truncated().rows,
            target[1].truncated().rows,
            num_subsets=self._settings.kid_num_subsets,
            subset_size=self._settings.kid_subset_size,
            seed=KID_SEED,
        )
        fid_vs_bound, fid_applied = self._bound(self._settings.fid_bound, keys.direction, fid)
        kid_vs_bound, kid_applied = self._bound(self._settings.kid_bound, keys.direction, kid)
        values = {
            keys.fid: fid,
            keys.fid_std: fid_std,
            keys.num_fake: fake[0].count,
            keys.num_real: target[0].count,
            keys.backbone: self._get_backbone().name,
            keys.fid_identity: identity,
            keys.fid_identity_std: identity_std,
            keys.fid_vs_identity: fid / identity if identity > 0 else float("inf"),
            keys.fid_vs_identity_std: ratio_std,
            keys.fid_vs_bound: fid_vs_bound,
            keys.fid_bound_applied: fid_applied,
            keys.kid: kid,
            keys.kid_std: kid_std,
            keys.kid_vs_bound: kid_vs_bound,
            keys.kid_bound_applied: kid_applied,
        }
        if self._settings.ground_truth and scores.translated:
            values[keys.paired_num] = len(scores.translated)
            for metric in PAIRED_METRICS:
                per_image = np.array([getattr(s, metric) for s in scores.translated])
                values[keys.paired(metric)] = float(per_image.mean())
                values[keys.paired(metric, "_std")] = paired.bootstrap_mean_std(
                    per_image, self._settings.bootstrap_samples, seed=BOOTSTRAP_SEED
                )
                identity_scores = np.array([getattr(s, metric) for s in scores.identity])
                values[keys.paired(metric, "_identity")] = float(identity_scores.mean())
            mae_identity = values[keys.paired("mae", "_identity")]
            values[keys.mae_vs_identity] = (
                values[keys.paired("mae")] / mae_identity if mae_identity > 0 else float("inf")
            )
        return values

    def extract_output(self, accumulator: _Accumulator) -> dict[metric_types.MetricKey, Any]:
        for domain, side in accumulator.real.items():
            if side.count() < 2:
                raise ValueError(
                    f"the evaluation needs at least 2 test images of domain {domain}, got "
                    f"{side.count()}; add images to data/test{domain}"
                )
        self._flush(accumulator, force=True)
        if self._settings.cache_reference_stats:
            logger.info(
                "FID features of the real test images: %s from the cache",
                ", ".join(f"{d} {s.cached} of {s.images}" for d, s in accumulator.real.items()),
            )
        real = {d: (side.stats, side.sample) for d, side in accumulator.real.items()}
        values: dict[str, Any] = {}
        for direction in DIRECTIONS:
            fake = accumulator.fake[direction]
            values |= self._direction_output(
                KEYS[direction],
                (fake.stats, fake.sample),
                real[SOURCE_DOMAIN[direction]],
                real[TARGET_DOMAIN[direction]],
                accumulator.paired[direction],
            )
        return {self._keys[name]: value for name, value in values.items() if value is not None}


def _quality_computations(
    backbone: dict[str, Any] | None = None,
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
        batch_size=batch_size,
        kid_num_subsets=kid_num_subsets,
        kid_subset_size=kid_subset_size,
        kid_max_samples=kid_max_samples,
        cache_reference_stats=cache_reference_stats,
        bootstrap_samples=bootstrap_samples,
        ground_truth=ground_truth,
        fid_bound=dict(fid_bound or {}),
        kid_bound=dict(kid_bound or {}),
    )
    computations = []
    for model_name in model_names or [""]:
        keys = {
            key: metric_types.MetricKey(name=key, model_name=model_name)
            for key in emitted_keys(ground_truth)
        }
        include = {"features": {schema.TRUTH_KEY: {}}} if ground_truth else {}
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

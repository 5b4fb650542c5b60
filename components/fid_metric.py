"""FID and KID as custom TensorFlow Model Analysis metrics, used by the TFX Evaluator.

The evaluated model's `fid_eval` signature returns, per test example, the `real` image, the
`translated` image (through the generator of the example's own domain) and `is_domain_a`.
For direction a2b the metric compares features of translated domain-A images (fake B) with
features of real domain-B images; for b2a the reverse.

One combiner per direction and model computes everything; its accumulator holds, per side:

- mergeable FID sufficient statistics (count, feature sum, sum of outer products in float64,
  :class:`cyclegan_tfx.fid.distance.FeatureStats`);
- a bounded KID sample of feature rows (:class:`cyclegan_tfx.fid.distance.FeatureSample`): at
  most `kid_max_samples` rows, those of the images with the smallest SHA-256, so the sample is
  identical however Beam splits and merges the data (memory: `kid_max_samples` x 2048 x 8 bytes,
  16 MiB per 1,000 rows, per side);
- images waiting for a batched forward pass.

Reference statistics: the real images of a direction are the same for every model evaluated
on the same data, so with `cache_reference_stats` (the default) they are buffered (as uint8,
N x S x S x 3 bytes, e.g. 12 KiB per 64 px image) until `extract_output`, where their
statistics are looked up in the cache under `<backbone.cache_dir>/fid_stats/` by (backbone,
content hash of the images, `kid_max_samples`) and only computed on a miss
(:func:`cyclegan_tfx.fid.reference.reference_stats`). The baseline model's evaluation and every
later run then skip the real images' forward passes. Set it to false for test splits too large
to hold in memory: real features are then streamed like the translated ones.

The feature backbone is resolved inside the combiner from the metric's config; candidate and
baseline are scored by the same combiner class with the same config, so never with different
backbones. Each direction emits:

- `fid_<direction>`: the FID (thresholded by the Evaluator),
- `fid_<direction>_num_fake`, `fid_<direction>_num_real`: N of each side (FID is biased at
  small N),
- `fid_<direction>_backbone`: the backbone's name, e.g. `fallback-inceptionv3-random-seed0`,
- `kid_<direction>`, `kid_<direction>_std`: KID (Bińkowski et al. 2018) mean and std over
  subsets of the KID samples.

`FrechetInceptionDistance` and `KernelInceptionDistance` differ only in the key their
threshold applies to (`fid_<direction>` or `kid_<direction>`): both build the same computation,
which TFMA runs once (it de-duplicates computations with the same combiner and keys), so adding a
KID threshold costs nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types

from cyclegan_tfx.code_fingerprint import code_fingerprint as fingerprint_of_code
from cyclegan_tfx.config import DIRECTIONS, BackboneConfig
from cyclegan_tfx.fid.backbone import Backbone, load_backbone
from cyclegan_tfx.fid.distance import (
    FeatureSample,
    FeatureStats,
    fid_from_stats,
    kernel_inception_distance,
)
from cyclegan_tfx.fid.reference import STATS_DIRNAME, image_digest, reference_stats

METRIC_CLASS_NAME = "FrechetInceptionDistance"
KID_METRIC_CLASS_NAME = "KernelInceptionDistance"
KID_SEED = 0
"""Seed of the KID subset sampling (the same for candidate and baseline)."""
CODE_FINGERPRINT_KEY = "code_fingerprint"
"""Metric config key: the fingerprint of this module's code when the pipeline was compiled."""


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
            f"the Evaluator runs FID metric code {running}, but the pipeline was compiled with "
            f"{expected}: rebuild the pipeline image from the commit you compiled, or recompile"
        )


def metric_name(direction: str) -> str:
    """Name of the FID metric of `direction` ("a2b" or "b2a")."""
    return f"fid_{direction}"


def kid_metric_name(direction: str) -> str:
    """Name of the KID metric of `direction` ("a2b" or "b2a")."""
    return f"kid_{direction}"


def metric_key_names(direction: str) -> dict[str, str]:
    """Every metric key name the computation of `direction` emits, by role."""
    fid, kid = metric_name(direction), kid_metric_name(direction)
    return {
        "fid": fid,
        "num_fake": f"{fid}_num_fake",
        "num_real": f"{fid}_num_real",
        "backbone": f"{fid}_backbone",
        "kid": kid,
        "kid_std": f"{kid}_std",
    }


@dataclasses.dataclass
class _Side:
    """Accumulated features of one side (real or translated images)."""

    stats: FeatureStats | None = None
    sample: FeatureSample | None = None
    pending: list[np.ndarray] = dataclasses.field(default_factory=list)
    pending_digests: list[str] = dataclasses.field(default_factory=list)

    def count(self) -> int:
        return (0 if self.stats is None else self.stats.count) + len(self.pending)

    def merge(self, other: _Side) -> None:
        self.pending.extend(other.pending)
        self.pending_digests.extend(other.pending_digests)
        if other.stats is not None:
            self.stats = other.stats.copy() if self.stats is None else self.stats.merge(other.stats)
        if other.sample is not None:
            self.sample = (
                other.sample.copy() if self.sample is None else self.sample.merge(other.sample)
            )


@dataclasses.dataclass
class _Accumulator:
    real: _Side = dataclasses.field(default_factory=_Side)
    fake: _Side = dataclasses.field(default_factory=_Side)


class _FIDCombiner(beam.CombineFn):
    """Accumulates backbone feature statistics and KID samples of real and translated images."""

    def __init__(
        self,
        keys: dict[str, metric_types.MetricKey],
        model_name: str,
        direction: str,
        backbone_config: dict[str, Any],
        batch_size: int,
        kid_num_subsets: int,
        kid_subset_size: int,
        kid_max_samples: int,
        cache_reference_stats: bool,
    ) -> None:
        self._keys = keys
        self._model_name = model_name
        self._direction = direction
        self._backbone_config = BackboneConfig(**backbone_config)
        self._batch_size = batch_size
        self._kid_num_subsets = kid_num_subsets
        self._kid_subset_size = kid_subset_size
        self._kid_max_samples = kid_max_samples
        self._cache_reference_stats = cache_reference_stats
        self._backbone: Backbone | None = None

    def setup(self) -> None:
        """Builds the backbone once per worker."""
        self._get_backbone()

    def _get_backbone(self) -> Backbone:
        if self._backbone is None:
            self._backbone = load_backbone(self._backbone_config, batch_size=self._batch_size)
        return self._backbone

    def _flush_side(self, side: _Side) -> None:
        if not side.pending:
            return
        backbone = self._get_backbone()
        features = backbone(np.stack(side.pending))
        if side.stats is None:
            side.stats = FeatureStats.empty(features.shape[1])
            side.sample = FeatureSample.empty(self._kid_max_samples, features.shape[1])
        side.stats.add(features)
        side.sample.add(side.pending_digests, features)
        side.pending.clear()
        side.pending_digests.clear()

    def _flush(self, accumulator: _Accumulator, force: bool) -> _Accumulator:
        sides = [accumulator.fake]
        if not self._cache_reference_stats:  # else real images wait for extract_output
            sides.append(accumulator.real)
        for side in sides:
            if side.pending and (force or len(side.pending) >= self._batch_size):
                self._flush_side(side)
        return accumulator

    def create_accumulator(self) -> _Accumulator:
        return _Accumulator()

    def add_input(
        self, accumulator: _Accumulator, element: metric_types.StandardMetricInputs
    ) -> _Accumulator:
        predictions = element.get_predictions(self._model_name)
        real = np.asarray(predictions["real"])
        translated = np.asarray(predictions["translated"])
        is_a = np.asarray(predictions["is_domain_a"]).astype(bool)
        if real.ndim == 3:  # a single example
            real, translated, is_a = real[None], translated[None], is_a.reshape(1)
        # a2b: fakes are translated A images, reals are B images; b2a the reverse.
        source_is_a = self._direction == "a2b"
        for index in range(len(is_a)):
            if is_a[index] == source_is_a:
                side, image = accumulator.fake, translated[index]
            else:
                side, image = accumulator.real, real[index]
            side.pending.append(image)
            side.pending_digests.append(image_digest(image))
        return self._flush(accumulator, force=False)

    def merge_accumulators(self, accumulators: Iterable[_Accumulator]) -> _Accumulator:
        merged = _Accumulator()
        for accumulator in accumulators:
            merged.real.merge(accumulator.real)
            merged.fake.merge(accumulator.fake)
        return self._flush(merged, force=False)

    def compact(self, accumulator: _Accumulator) -> _Accumulator:
        return self._flush(accumulator, force=True)

    def _real_statistics(self, real: _Side) -> tuple[FeatureStats, FeatureSample]:
        if not self._cache_reference_stats:
            self._flush_side(real)
            return real.stats, real.sample
        result = reference_stats(
            real.pending,
            self._get_backbone(),
            max_samples=self._kid_max_samples,
            cache_dir=Path(self._backbone_config.cache_dir).expanduser() / STATS_DIRNAME,
            digests=real.pending_digests,
        )
        return result.stats, result.sample

    def extract_output(self, accumulator: _Accumulator) -> dict[metric_types.MetricKey, Any]:
        num_real, num_fake = accumulator.real.count(), accumulator.fake.count()
        if num_real < 2 or num_fake < 2:
            raise ValueError(
                f"FID {self._direction} needs at least 2 real and 2 translated test images, "
                f"got {num_real} real and {num_fake} translated; add images to data/testA and "
                "data/testB"
            )
        self._flush_side(accumulator.fake)
        fake_stats, fake_sample = accumulator.fake.stats, accumulator.fake.sample
        real_stats, real_sample = self._real_statistics(accumulator.real)
        kid, kid_std = kernel_inception_distance(
            fake_sample.truncated().rows,
            real_sample.truncated().rows,
            num_subsets=self._kid_num_subsets,
            subset_size=self._kid_subset_size,
            seed=KID_SEED,
        )
        return {
            self._keys["fid"]: fid_from_stats(fake_stats, real_stats),
            self._keys["num_fake"]: fake_stats.count,
            self._keys["num_real"]: real_stats.count,
            self._keys["backbone"]: self._get_backbone().name,
            self._keys["kid"]: kid,
            self._keys["kid_std"]: kid_std,
        }


def _fid_computations(
    direction: str = "a2b",
    backbone: dict[str, Any] | None = None,
    batch_size: int = 16,
    kid_num_subsets: int = 100,
    kid_subset_size: int = 1000,
    kid_max_samples: int = 2000,
    cache_reference_stats: bool = True,
    code_fingerprint: str | None = None,
    name: str | None = None,
    model_names: list[str] | None = None,
    output_names: list[str] | None = None,
    sub_keys: list[metric_types.SubKey] | None = None,
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    # FID/KID are per model, unweighted and not sliced by key; `name` only selects which of the
    # keys below a threshold applies to, so FID and KID metrics share one computation.
    del name, output_names, sub_keys, example_weighted
    check_code_fingerprint(code_fingerprint)
    computations = []
    for model_name in model_names or [""]:
        keys = {
            role: metric_types.MetricKey(name=key_name, model_name=model_name)
            for role, key_name in metric_key_names(direction).items()
        }
        computations.append(
            metric_types.MetricComputation(
                keys=list(keys.values()),
                preprocessors=[
                    metric_types.StandardMetricInputsPreprocessor(
                        include_filter={},
                        include_default_inputs=True,
                        model_names=[model_name] if model_name else None,
                    )
                ],
                combiner=_FIDCombiner(
                    keys,
                    model_name,
                    direction,
                    backbone or {},
                    batch_size,
                    kid_num_subsets,
                    kid_subset_size,
                    kid_max_samples,
                    cache_reference_stats,
                ),
            )
        )
    return computations


class FrechetInceptionDistance(metric_types.Metric):
    """FID of one translation direction (lower is better); also emits KID and N."""

    default_name_prefix = "fid"

    def __init__(
        self,
        direction: str = "a2b",
        backbone: dict[str, Any] | None = None,
        batch_size: int = 16,
        kid_num_subsets: int = 100,
        kid_subset_size: int = 1000,
        kid_max_samples: int = 2000,
        cache_reference_stats: bool = True,
        code_fingerprint: str | None = None,
        name: str | None = None,
    ) -> None:
        """Initialises the metric.

        Args:
            direction: "a2b" (translated A vs real B) or "b2a".
            backbone: `BackboneConfig` fields (see params.yaml evaluate.backbone).
            batch_size: Images per backbone forward pass.
            kid_num_subsets: KID subsets (params.yaml evaluate.kid_num_subsets).
            kid_subset_size: KID subset size (evaluate.kid_subset_size).
            kid_max_samples: Feature rows kept per side for KID (evaluate.kid_max_samples).
            cache_reference_stats: Cache the real images' statistics
                (evaluate.cache_reference_stats).
            code_fingerprint: The fingerprint of this module's code at pipeline compile time;
                it makes metric code changes part of the Evaluator's cache key and is checked
                against the running code.
            name: The key a threshold on this metric applies to; defaults to
                `<prefix>_<direction>` and must be one of :func:`metric_key_names`.

        Raises:
            ValueError: On an unknown direction or name.
        """
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")
        name = name or f"{self.default_name_prefix}_{direction}"
        emitted = sorted(metric_key_names(direction).values())
        if name not in emitted:
            raise ValueError(f"name must be one of the emitted keys {emitted}, got {name!r}")
        super().__init__(
            _fid_computations,
            direction=direction,
            backbone=backbone,
            batch_size=batch_size,
            kid_num_subsets=kid_num_subsets,
            kid_subset_size=kid_subset_size,
            kid_max_samples=kid_max_samples,
            cache_reference_stats=cache_reference_stats,
            code_fingerprint=code_fingerprint,
            name=name,
        )

    @property
    def compute_confidence_interval(self) -> bool:
        """FID is not bootstrapped here (it is biased at small N anyway)."""
        return False


class KernelInceptionDistance(FrechetInceptionDistance):
    """KID of one translation direction (lower is better); the same computation as FID."""

    default_name_prefix = "kid"


metric_types.register_metric(FrechetInceptionDistance)
metric_types.register_metric(KernelInceptionDistance)

"""FID as a custom TensorFlow Model Analysis metric, used by the TFX Evaluator.

The evaluated model's `fid_eval` signature returns, per test example, the `real` image, the
`translated` image (through the generator of the example's own domain) and `is_domain_a`.
For direction a2b the metric compares features of translated domain-A images (fake B) with
features of real domain-B images; for b2a the reverse.

The combiner's accumulator holds mergeable sufficient statistics (count, feature sum, sum of
outer products in float64, see `cyclegan_tfx.fid.distance.FeatureStats`) plus a small buffer of
images waiting for a batched forward pass, so the metric runs distributed on any Beam runner.
The feature backbone is resolved inside the combiner from the metric's config; candidate and
baseline are scored by the same combiner class with the same config, so never with different
backbones. Each direction emits:

- `fid_<direction>`: the FID (thresholded by the Evaluator),
- `fid_<direction>_num_fake`, `fid_<direction>_num_real`: N of each side (FID is biased at
  small N),
- `fid_<direction>_backbone`: the backbone's name, e.g. `fallback-inceptionv3-random-seed0`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types

from cyclegan_tfx.config import BackboneConfig
from cyclegan_tfx.fid.backbone import Backbone, load_backbone
from cyclegan_tfx.fid.distance import FeatureStats, fid_from_stats

METRIC_CLASS_NAME = "FrechetInceptionDistance"


def metric_name(direction: str) -> str:
    """Name of the FID metric of `direction` ("a2b" or "b2a")."""
    return f"fid_{direction}"


@dataclasses.dataclass
class _Accumulator:
    real: FeatureStats | None = None
    fake: FeatureStats | None = None
    pending_real: list[np.ndarray] = dataclasses.field(default_factory=list)
    pending_fake: list[np.ndarray] = dataclasses.field(default_factory=list)


class _FIDCombiner(beam.CombineFn):
    """Accumulates backbone feature statistics of real and translated images."""

    def __init__(
        self,
        keys: dict[str, metric_types.MetricKey],
        model_name: str,
        direction: str,
        backbone_config: dict[str, Any],
        batch_size: int,
    ) -> None:
        self._keys = keys
        self._model_name = model_name
        self._direction = direction
        self._backbone_config = BackboneConfig(**backbone_config)
        self._batch_size = batch_size
        self._backbone: Backbone | None = None

    def setup(self) -> None:
        """Builds the backbone once per worker."""
        self._get_backbone()

    def _get_backbone(self) -> Backbone:
        if self._backbone is None:
            self._backbone = load_backbone(self._backbone_config)
        return self._backbone

    def _flush(self, accumulator: _Accumulator, force: bool) -> _Accumulator:
        for side in ("real", "fake"):
            pending = getattr(accumulator, f"pending_{side}")
            if pending and (force or len(pending) >= self._batch_size):
                features = self._get_backbone()(np.stack(pending))
                stats = getattr(accumulator, side) or FeatureStats.empty(features.shape[1])
                stats.add(features)
                setattr(accumulator, side, stats)
                pending.clear()
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
                accumulator.pending_fake.append(translated[index])
            else:
                accumulator.pending_real.append(real[index])
        return self._flush(accumulator, force=False)

    def merge_accumulators(self, accumulators) -> _Accumulator:
        merged = _Accumulator()
        for accumulator in accumulators:
            merged.pending_real.extend(accumulator.pending_real)
            merged.pending_fake.extend(accumulator.pending_fake)
            for side in ("real", "fake"):
                stats = getattr(accumulator, side)
                if stats is not None:
                    current = getattr(merged, side)
                    setattr(merged, side, stats.copy() if current is None else current.merge(stats))
        return self._flush(merged, force=False)

    def compact(self, accumulator: _Accumulator) -> _Accumulator:
        return self._flush(accumulator, force=True)

    def extract_output(self, accumulator: _Accumulator) -> dict[metric_types.MetricKey, Any]:
        accumulator = self._flush(accumulator, force=True)
        real, fake = accumulator.real, accumulator.fake
        num_real = 0 if real is None else real.count
        num_fake = 0 if fake is None else fake.count
        if num_real < 2 or num_fake < 2:
            raise ValueError(
                f"FID {self._direction} needs at least 2 real and 2 translated test images, "
                f"got {num_real} real and {num_fake} translated; add images to data/testA and "
                "data/testB"
            )
        return {
            self._keys["fid"]: fid_from_stats(fake, real),
            self._keys["num_fake"]: num_fake,
            self._keys["num_real"]: num_real,
            self._keys["backbone"]: self._get_backbone().name,
        }


def _fid_computations(
    direction: str = "a2b",
    backbone: dict[str, Any] | None = None,
    batch_size: int = 16,
    name: str | None = None,
    model_names: list[str] | None = None,
    output_names: list[str] | None = None,
    sub_keys: list[metric_types.SubKey] | None = None,
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    del output_names, sub_keys, example_weighted  # FID is per model, unweighted, unsliced by key
    name = name or metric_name(direction)
    computations = []
    for model_name in model_names or [""]:
        keys = {
            suffix: metric_types.MetricKey(name=full, model_name=model_name)
            for suffix, full in (
                ("fid", name),
                ("num_fake", f"{name}_num_fake"),
                ("num_real", f"{name}_num_real"),
                ("backbone", f"{name}_backbone"),
            )
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
                combiner=_FIDCombiner(keys, model_name, direction, backbone or {}, batch_size),
            )
        )
    return computations


class FrechetInceptionDistance(metric_types.Metric):
    """FID of one translation direction (lower is better)."""

    def __init__(
        self,
        direction: str = "a2b",
        backbone: dict[str, Any] | None = None,
        batch_size: int = 16,
        name: str | None = None,
    ) -> None:
        """Initialises the metric.

        Args:
            direction: "a2b" (translated A vs real B) or "b2a".
            backbone: `BackboneConfig` fields (see params.yaml evaluate.backbone).
            batch_size: Images per backbone forward pass.
            name: Metric name; defaults to `fid_<direction>`.
        """
        if direction not in ("a2b", "b2a"):
            raise ValueError(f"direction must be 'a2b' or 'b2a', got {direction!r}")
        super().__init__(
            _fid_computations,
            direction=direction,
            backbone=backbone,
            batch_size=batch_size,
            name=name or metric_name(direction),
        )

    @property
    def compute_confidence_interval(self) -> bool:
        """FID is not bootstrapped here (it is biased at small N anyway)."""
        return False


metric_types.register_metric(FrechetInceptionDistance)

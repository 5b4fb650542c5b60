"""The TFMA EvalConfig of the FID gate, built from `params.yaml`'s `evaluate` section."""

from __future__ import annotations

import dataclasses
import json

import tensorflow_model_analysis as tfma

from components.fid_metric import METRIC_CLASS_NAME, metric_name
from cyclegan_tfx.config import DIRECTIONS, EvaluateConfig
from cyclegan_tfx.model.export import SIGNATURE_FID_EVAL

FID_METRIC_MODULE = "components.fid_metric"


def fid_threshold(evaluate: EvaluateConfig, direction: str) -> tfma.MetricThreshold:
    """Absolute upper bound, and "at most x% worse than the baseline" (if one exists).

    TFX drops change thresholds when there is no blessed baseline yet, so the first model is
    judged on the absolute bound only.
    """
    return tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(
            upper_bound={"value": evaluate.fid_upper_bound.for_direction(direction)}
        ),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.LOWER_IS_BETTER,
            relative={"value": evaluate.max_relative_increase},
        ),
    )


def build_eval_config(evaluate: EvaluateConfig) -> tfma.EvalConfig:
    """FID a2b and b2a on the whole test split, thresholded per direction."""
    metrics = [
        tfma.MetricConfig(
            class_name=METRIC_CLASS_NAME,
            module=FID_METRIC_MODULE,
            config=json.dumps(
                {
                    "direction": direction,
                    "backbone": dataclasses.asdict(evaluate.backbone),
                    "batch_size": evaluate.batch_size,
                },
                sort_keys=True,
            ),
            threshold=fid_threshold(evaluate, direction),
        )
        for direction in DIRECTIONS
    ]
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name=SIGNATURE_FID_EVAL)],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )


__all__ = ["build_eval_config", "fid_threshold", "metric_name"]

"""The TFMA EvalConfig of the FID/KID gate, built from `params.yaml`'s `evaluate` section."""

from __future__ import annotations

import dataclasses
import json

import tensorflow_model_analysis as tfma

from components.fid_metric import (
    CODE_FINGERPRINT_KEY,
    KID_METRIC_CLASS_NAME,
    METRIC_CLASS_NAME,
    kid_metric_name,
    metric_name,
)
from cyclegan_tfx.code_fingerprint import code_fingerprint
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


def kid_threshold(evaluate: EvaluateConfig, direction: str) -> tfma.MetricThreshold | None:
    """Absolute KID upper bound of `direction`, or None when `evaluate.kid_upper_bound` is null.

    KID has no relative check: its unbiased estimate can be 0 or negative, which makes a ratio
    to the baseline meaningless.
    """
    bound = evaluate.kid_upper_bound.for_direction(direction)
    if bound is None:
        return None
    return tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(upper_bound={"value": bound})
    )


def metric_config_json(evaluate: EvaluateConfig, direction: str) -> str:
    """The JSON config shared by the FID and KID metrics of `direction`.

    Both metrics must get the same config: TFMA runs their (identical) computation once. It
    includes the fingerprint of the metric's code: TFX caches the Evaluator on its
    `eval_config`, so changed metric code re-evaluates instead of reusing old results.
    """
    return json.dumps(
        {
            "direction": direction,
            "backbone": dataclasses.asdict(evaluate.backbone),
            "batch_size": evaluate.batch_size,
            "kid_num_subsets": evaluate.kid_num_subsets,
            "kid_subset_size": evaluate.kid_subset_size,
            "kid_max_samples": evaluate.kid_max_samples,
            "cache_reference_stats": evaluate.cache_reference_stats,
            CODE_FINGERPRINT_KEY: code_fingerprint(FID_METRIC_MODULE).digest,
        },
        sort_keys=True,
    )


def build_eval_config(evaluate: EvaluateConfig) -> tfma.EvalConfig:
    """FID (and KID) a2b and b2a on the whole test split, thresholded per direction.

    KID is always computed and reported (by the FID metric); a `KernelInceptionDistance` metric
    is added only to carry the KID threshold of a direction whose bound is set.
    """
    metrics = []
    for direction in DIRECTIONS:
        config = metric_config_json(evaluate, direction)
        metrics.append(
            tfma.MetricConfig(
                class_name=METRIC_CLASS_NAME,
                module=FID_METRIC_MODULE,
                config=config,
                threshold=fid_threshold(evaluate, direction),
            )
        )
        threshold = kid_threshold(evaluate, direction)
        if threshold is not None:
            metrics.append(
                tfma.MetricConfig(
                    class_name=KID_METRIC_CLASS_NAME,
                    module=FID_METRIC_MODULE,
                    config=config,
                    threshold=threshold,
                )
            )
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name=SIGNATURE_FID_EVAL)],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )


__all__ = ["build_eval_config", "fid_threshold", "kid_metric_name", "kid_threshold", "metric_name"]

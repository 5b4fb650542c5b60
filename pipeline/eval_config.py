"""The TFMA EvalConfig of the gate, built from `params.yaml`'s `evaluate` section.

Per direction, the model is blessed only if (see README "The gate"):

1. it beats doing nothing on FID: with ground truth it closes at least
   `gate.fid_gap_closed_min` of the FID gap from doing nothing to the true translations
   (`fid_<d>_gap_closed`; 1 = as good as the truth, 0 = doing nothing); without ground truth
   `fid_<d>_vs_identity` <= `gate.fid_vs_identity_max`;
2. with ground truth, it beats doing nothing on the paired error:
   `mae_<d>_vs_identity` <= `gate.mae_vs_identity_max`;
2b. it beats the colour-transfer baseline (fitted on the training split by the preprocessing
   job): with ground truth on MAE (`mae_<d>_vs_colour_transfer` <=
   `gate.mae_vs_colour_transfer_max`), without on FID (`gate.fid_vs_colour_transfer_max`);
3. once a blessed baseline exists: with ground truth, MAE at most `gate.mae_max_increase` grey
   levels worse than the baseline's; without it, FID at most `gate.fid_max_relative_increase`
   (relative) worse. With ground truth FID is not compared with the baseline: over training it
   can rank two good models against the truth (`make fid-agreement`, docs/gate.md). TFX drops
   these change thresholds while there is no baseline;
4. optional absolute bounds: FID/KID (only with the backbone they were calibrated on), MAE,
   PSNR, SSIM.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import tensorflow_model_analysis as tfma

from components.quality_metrics import METRIC_CLASS_NAME
from cyclegan_tfx.code_fingerprint import CONFIG_KEY as CODE_FINGERPRINT_KEY
from cyclegan_tfx.code_fingerprint import code_fingerprint
from cyclegan_tfx.config import DIRECTIONS, Config, EvaluateConfig
from cyclegan_tfx.data import schema
from cyclegan_tfx.evaluation.fid.backbone import resolve_backbone_name
from cyclegan_tfx.evaluation.metric_keys import KEYS
from cyclegan_tfx.model.export import SIGNATURE_FID_EVAL

logger = logging.getLogger(__name__)

QUALITY_METRIC_MODULE = "components.quality_metrics"
PREPROCESS_METRICS_FILE = "preprocess.json"


def resolve_ground_truth(config: Config) -> bool:
    """Whether the Evaluator reads ground truth and gates on it (`evaluate.ground_truth`).

    "auto" looks at the preprocessing job's metrics: paired when every test image of both
    domains has its true translation (the FID check's floor, FID(truth), needs them all);
    with some missing it warns and treats the data as unpaired.
    """
    mode = config.evaluate.ground_truth
    if mode != "auto":
        return mode == "paired"
    path = Path(config.paths.resolve("metrics")) / PREPROCESS_METRICS_FILE
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        logger.warning(
            "evaluate.ground_truth auto: no readable %s; treating data as unpaired", path
        )
        return False
    paired, examples = metrics.get("paired") or {}, metrics.get("examples") or {}
    domains = [schema.layout_dir(schema.TRUTH_SPLIT, d) for d in schema.DOMAINS]
    counts = {name: (paired.get(name, 0), examples.get(name, 0)) for name in domains}
    if all(0 < have == total for have, total in counts.values()):
        return True
    if any(have for have, _ in counts.values()):
        logger.warning(
            "evaluate.ground_truth auto: ground truth for only %s test images; the gate needs "
            "it for every one (add the missing files, or set evaluate.ground_truth: unpaired "
            "to silence this): treating the data as unpaired",
            ", ".join(f"{have} of {total} {name}" for name, (have, total) in counts.items()),
        )
    return False


def metric_settings(evaluate: EvaluateConfig, ground_truth: bool) -> dict[str, Any]:
    """The settings every metric config shares (TFMA then runs one computation)."""
    return {
        "backbone": dataclasses.asdict(evaluate.backbone),
        "backbone_name": resolve_backbone_name(evaluate.backbone),
        "batch_size": evaluate.batch_size,
        "kid_num_subsets": evaluate.kid_num_subsets,
        "kid_subset_size": evaluate.kid_subset_size,
        "kid_max_samples": evaluate.kid_max_samples,
        "cache_reference_stats": evaluate.cache_reference_stats,
        "bootstrap_samples": evaluate.bootstrap_samples,
        "ground_truth": ground_truth,
        "fid_bound": evaluate.fid_upper_bound.to_metric_config(),
        "kid_bound": evaluate.kid_upper_bound.to_metric_config(),
        CODE_FINGERPRINT_KEY: code_fingerprint(QUALITY_METRIC_MODULE).digest,
    }


def _value(lower: float | None = None, upper: float | None = None) -> tfma.GenericValueThreshold:
    bounds: dict[str, Any] = {}
    if lower is not None:
        bounds["lower_bound"] = {"value": lower}
    if upper is not None:
        bounds["upper_bound"] = {"value": upper}
    return tfma.GenericValueThreshold(**bounds)


def gate_thresholds(
    evaluate: EvaluateConfig, ground_truth: bool
) -> dict[str, tfma.MetricThreshold]:
    """Metric key -> its threshold, for every check of the gate (module docstring)."""
    gate = evaluate.gate
    thresholds: dict[str, tfma.MetricThreshold] = {}
    for direction in DIRECTIONS:
        keys = KEYS[direction]
        if ground_truth:
            thresholds[keys.fid_gap_closed] = tfma.MetricThreshold(
                value_threshold=_value(lower=gate.fid_gap_closed_min)
            )
        else:
            thresholds[keys.fid_vs_identity] = tfma.MetricThreshold(
                value_threshold=_value(upper=gate.fid_vs_identity_max)
            )
            if gate.fid_vs_colour_transfer_max is not None:
                thresholds[keys.fid_vs_colour_transfer] = tfma.MetricThreshold(
                    value_threshold=_value(upper=gate.fid_vs_colour_transfer_max)
                )
            thresholds[keys.fid] = tfma.MetricThreshold(
                change_threshold=tfma.GenericChangeThreshold(
                    direction=tfma.MetricDirection.LOWER_IS_BETTER,
                    relative={"value": gate.fid_max_relative_increase},
                )
            )
        for bounds, key in (
            (evaluate.fid_upper_bound, keys.fid_vs_bound),
            (evaluate.kid_upper_bound, keys.kid_vs_bound),
        ):
            if bounds.for_direction(direction) is not None:
                # The metric emits value / bound (0 when the bound's backbone is not in use).
                thresholds[key] = tfma.MetricThreshold(value_threshold=_value(upper=1.0))
        if not ground_truth:
            continue
        thresholds[keys.mae_vs_identity] = tfma.MetricThreshold(
            value_threshold=_value(upper=gate.mae_vs_identity_max)
        )
        if gate.mae_vs_colour_transfer_max is not None:
            thresholds[keys.mae_vs_colour_transfer] = tfma.MetricThreshold(
                value_threshold=_value(upper=gate.mae_vs_colour_transfer_max)
            )
        mae_upper = evaluate.mae_upper_bound.for_direction(direction)
        thresholds[keys.paired("mae")] = tfma.MetricThreshold(
            value_threshold=_value(upper=mae_upper) if mae_upper is not None else None,
            change_threshold=tfma.GenericChangeThreshold(
                direction=tfma.MetricDirection.LOWER_IS_BETTER,
                absolute={"value": gate.mae_max_increase},
            ),
        )
        for metric, bounds in (
            ("psnr", evaluate.psnr_lower_bound),
            ("ssim", evaluate.ssim_lower_bound),
        ):
            lower = bounds.for_direction(direction)
            if lower is not None:
                thresholds[keys.paired(metric)] = tfma.MetricThreshold(
                    value_threshold=_value(lower=lower)
                )
    return thresholds


def build_eval_config(evaluate: EvaluateConfig, ground_truth: bool) -> tfma.EvalConfig:
    """The EvalConfig: one quality metric config per gated key, all sharing one computation.

    Args:
        evaluate: The `evaluate` section of params.yaml.
        ground_truth: Whether the test split has ground truth (:func:`resolve_ground_truth`).
    """
    settings = metric_settings(evaluate, ground_truth)
    metrics = [
        tfma.MetricConfig(
            class_name=METRIC_CLASS_NAME,
            module=QUALITY_METRIC_MODULE,
            config=json.dumps({**settings, "name": key}, sort_keys=True),
            threshold=threshold,
        )
        for key, threshold in gate_thresholds(evaluate, ground_truth).items()
    ]
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name=SIGNATURE_FID_EVAL)],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )

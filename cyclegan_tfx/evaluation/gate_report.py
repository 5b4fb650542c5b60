"""Reads a run's gate from what TFX stored: the Evaluator's output and ML Metadata.

:func:`evaluation_metrics` reads TFMA's metrics, :func:`evaluation_gate` the stored EvalConfig
and ValidationResult of an evaluation (so the thresholds shown are those the Evaluator used, not
the current params.yaml), :func:`gate_report` a whole run (model, evaluation, blessing,
push) from its ML Metadata artifacts, and :func:`explain` says it in words (`make explain-gate`,
the GateReporter's `gate.txt`). The checks themselves are :mod:`.gate`'s pure functions.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import tensorflow as tf
import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2
from tensorflow_model_analysis.writers import eval_config_writer

from cyclegan_tfx.config import DIRECTIONS
from cyclegan_tfx.evaluation.fid.weights import STANDARD_NAME
from cyclegan_tfx.evaluation.gate import (
    GateCheck,
    check_single_backbone,
    format_gate_table,
    gate_checks,
)
from cyclegan_tfx.evaluation.metric_keys import KEYS
from cyclegan_tfx.mlmd import newest_artifact

logger = logging.getLogger(__name__)


def evaluation_metrics(evaluation_uri: str) -> dict[str, dict[str, Any]]:
    """Reads TFMA metrics: {"candidate"|"baseline": {metric name: value}} (overall slice)."""
    result: dict[str, dict[str, Any]] = {}
    for metrics_for_slice in tfma.load_metrics(evaluation_uri):
        if metrics_for_slice.slice_key.single_slice_keys:
            continue
        for item in metrics_for_slice.metric_keys_and_values:
            if item.key.is_diff:
                continue
            role = "baseline" if item.key.model_name == "baseline" else "candidate"
            value = item.value
            if value.HasField("double_value"):
                parsed: Any = value.double_value.value
            elif value.HasField("bytes_value"):
                parsed = value.bytes_value.decode()
            else:
                continue
            result.setdefault(role, {})[item.key.name] = parsed
    return result


def evaluation_gate(evaluation_uri: str) -> tuple[list[GateCheck], bool | None]:
    """The gate checks of a TFX evaluation and TFMA's overall verdict.

    Reads the EvalConfig stored with the evaluation (so the thresholds are those the Evaluator
    used, not the current params.yaml), its metrics and its ValidationResult.

    Returns:
        (the checks, `validation_ok` or None if the evaluation has no validation result).
    """
    eval_config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    if eval_config is None:
        logger.warning("no stored EvalConfig in %s: the gate cannot be shown", evaluation_uri)
        return [], None
    metrics = evaluation_metrics(evaluation_uri)
    if not tf.io.gfile.glob(f"{evaluation_uri.rstrip('/')}/validations*"):
        logger.warning("no validation result in %s", evaluation_uri)
        return gate_checks(eval_config, metrics), None
    validation = tfma.load_validation_result(evaluation_uri)
    failures = {
        (failure.metric_key.name, failure.metric_key.is_diff)
        for per_slice in validation.metric_validations_per_slice
        for failure in per_slice.failures
    }
    return gate_checks(eval_config, metrics, failures), validation.validation_ok


@dataclasses.dataclass(frozen=True)
class GateReport:
    """Why a run's model was (not) blessed: every check and the decision.

    Attributes:
        blessed: The Evaluator's decision (the ModelBlessing).
        pushed_version: The version the Pusher wrote, or None.
        backbone: The one FID backbone of the evaluation (see :func:`check_single_backbone`).
        model_uri: The candidate model.
        baseline_model_uri: The blessed baseline it was compared with, or None (first run).
        evaluation_uri: The TFMA output.
        num_test: Per direction, N of translated ("fake") and real test images, and of test
            images with ground truth ("paired"; None without).
        checks: Every check (see :func:`gate_checks`).
        validation_ok: TFMA's overall verdict, None without a validation result.
        pipeline_run_id: The pipeline run the report describes (ML Metadata), if known.
    """

    blessed: bool
    pushed_version: str | None
    backbone: str | None
    model_uri: str | None
    baseline_model_uri: str | None
    evaluation_uri: str | None
    num_test: dict[str, dict[str, float | None]]
    checks: list[GateCheck]
    validation_ok: bool | None
    pipeline_run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The whole report, JSON-serialisable (`explain-gate --json`, reports/gate.json)."""
        return {
            "pipeline_run_id": self.pipeline_run_id,
            "blessed": self.blessed,
            "pushed_version": self.pushed_version,
            "backbone": self.backbone,
            "model_uri": self.model_uri,
            "baseline_model_uri": self.baseline_model_uri,
            "baseline_applied": self.baseline_applied,
            "evaluation_uri": self.evaluation_uri,
            "num_test": self.num_test,
            "validation_ok": self.validation_ok,
            "gate": self.gate_dict(),
        }

    @property
    def baseline_applied(self) -> bool:
        """Whether a blessed baseline existed, so the checks against it applied."""
        return self.baseline_model_uri is not None

    def gate_dict(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The checks as {metric: {check: {candidate, baseline, threshold, ..., result}}}."""
        result: dict[str, dict[str, dict[str, Any]]] = {}
        for check in self.checks:
            data = check.to_dict()
            del data["metric"], data["check"]
            result.setdefault(check.metric, {})[check.check] = data
        return result


def gate_report(
    artifacts: dict[str, list[metadata_store_pb2.Artifact]], pipeline_run_id: str | None = None
) -> GateReport:
    """Builds the :class:`GateReport` of a run from its output artifacts, by type name.

    Args:
        artifacts: The run's output artifacts (:func:`cyclegan_tfx.mlmd.run_artifacts`).
        pipeline_run_id: The run's id, recorded in the report.

    Raises:
        MixedBackbonesError: If the evaluation's FIDs come from different backbones.
    """
    model = newest_artifact(artifacts, "Model")
    evaluation = newest_artifact(artifacts, "ModelEvaluation")
    blessing = newest_artifact(artifacts, "ModelBlessing")
    pushed = newest_artifact(artifacts, "PushedModel")
    metrics = evaluation_metrics(evaluation.uri) if evaluation else {}
    candidate = metrics.get("candidate", {})
    checks, validation_ok = evaluation_gate(evaluation.uri) if evaluation else ([], None)
    blessed = bool(blessing and blessing.custom_properties["blessed"].int_value == 1)
    baseline_uri = None
    if blessing is not None and "baseline_model" in blessing.custom_properties:
        baseline_uri = blessing.custom_properties["baseline_model"].string_value or None
    pushed_version = None
    if pushed is not None and pushed.custom_properties["pushed"].int_value == 1:
        pushed_version = pushed.custom_properties["pushed_version"].string_value
    return GateReport(
        blessed=blessed,
        pushed_version=pushed_version,
        backbone=check_single_backbone(metrics),
        model_uri=model.uri if model else None,
        baseline_model_uri=baseline_uri,
        evaluation_uri=evaluation.uri if evaluation else None,
        num_test={
            direction: {
                "fake": candidate.get(KEYS[direction].num_fake),
                "real": candidate.get(KEYS[direction].num_real),
                "paired": candidate.get(KEYS[direction].paired_num),
            }
            for direction in DIRECTIONS
        },
        pipeline_run_id=pipeline_run_id,
        checks=checks,
        validation_ok=validation_ok,
    )


def explain(report: GateReport) -> str:
    """The human-readable explanation of a gate report."""
    run = f"pipeline run {report.pipeline_run_id}" if report.pipeline_run_id else "a run"
    lines = [f"Gate of {run} (evaluation {report.evaluation_uri})"]
    lines.append(f"candidate: {report.model_uri}")
    lines.append(
        f"baseline:  {report.baseline_model_uri}"
        if report.baseline_model_uri
        else "baseline:  none (no blessed model yet: the checks against a baseline do not apply)"
    )
    backbone = report.backbone or "unknown"
    if report.backbone == STANDARD_NAME:
        backbone += " (the standard FID network: comparable with published FIDs)"
    elif report.backbone:
        backbone += " (NOT the standard FID network: not comparable with published FIDs)"
    lines.append(f"backbone:  {backbone}")
    counts = ", ".join(
        f"{d} {_count(report.num_test[d]['fake'])} translated vs "
        f"{_count(report.num_test[d]['real'])} real"
        + (
            f", {_count(report.num_test[d]['paired'])} with ground truth"
            if report.num_test[d].get("paired")
            else ""
        )
        for d in DIRECTIONS
    )
    lines.append(f"N:         {counts}")
    lines.append(
        "           (± is the bootstrap spread over the test images; FID is biased at small N, "
        "so compare FIDs at equal N only)"
    )
    lines.append("")
    lines.append(format_gate_table(report.checks))
    lines.append("")
    failed = [f"{c.metric} {c.check}" for c in report.checks if c.passed is False]
    if report.blessed:
        pushed = (
            f", pushed as version {report.pushed_version}"
            if report.pushed_version
            else ", for the Pusher (its PushRecord says the version)"
        )
        lines.append(f"decision: BLESSED (every check passed){pushed}")
    else:
        reason = f"failed: {', '.join(failed)}" if failed else "see the TFMA validation result"
        lines.append(f"decision: NOT BLESSED, not pushed ({reason})")
    return "\n".join(lines)


def _count(value: float | None) -> str:
    return "?" if value is None else str(int(value))

"""DVC metrics and plots from the last local pipeline run (read back from ML Metadata).

Writes, under `paths.metrics` / `paths.plots`:
- `metrics/evaluation.json`: FID and KID per direction (candidate and baseline), N, backbone,
  thresholds, blessed yes/no, pushed version, and under `gate` every check of the blessing
  (candidate, baseline, threshold, pass/fail; see :func:`evaluation_gate`).
- `plots/losses.tsv`: per-network loss and learning-rate curves of the Trainer.
- `plots/fid.json`: FID per direction for the candidate and the baseline (one backbone).
- `plots/translations_a2b.png`, `plots/translations_b2a.png`: test images | translations.
- `plots/training_samples.png`: the Trainer's last sample grid.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import ml_metadata as mlmd
import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2
from tensorflow_model_analysis.metrics import metric_specs
from tensorflow_model_analysis.writers import eval_config_writer
from tfx.utils import path_utils

from cyclegan_tfx.config import DIRECTIONS, Config
from cyclegan_tfx.grid import image_grid, png_bytes
from cyclegan_tfx.model import data
from cyclegan_tfx.model.export import SIGNATURE_FOR_DIRECTION
from cyclegan_tfx.model.train import LOSSES_FILE, SAMPLES_FILE
from cyclegan_tfx.registry.lineage import open_store

logger = logging.getLogger(__name__)

EVALUATION_METRICS_FILE = "evaluation.json"
LOSSES_PLOT_FILE = "losses.tsv"
FID_PLOT_FILE = "fid.json"
SAMPLES_PLOT_FILE = "training_samples.png"
TRANSLATIONS_PER_DIRECTION = 8


class NoPipelineRunError(RuntimeError):
    """ML Metadata has no run of the pipeline."""


def translations_plot_file(direction: str) -> str:
    """File name of the test-translation grid of `direction`."""
    return f"translations_{direction}.png"


def _store(metadata_path: Path) -> mlmd.MetadataStore:
    if not metadata_path.is_file():
        raise NoPipelineRunError(f"no ML Metadata at {metadata_path}; run the pipeline first")
    return open_store(metadata_path)


def _latest_run(store: mlmd.MetadataStore, pipeline_name: str) -> metadata_store_pb2.Context:
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    runs = [
        context
        for context in store.get_contexts_by_type("pipeline_run")
        if pipeline is not None
        and any(c.id == pipeline.id for c in store.get_parent_contexts_by_context(context.id))
    ]
    if not runs:
        raise NoPipelineRunError(f"no run of pipeline {pipeline_name!r} in ML Metadata")
    return max(runs, key=lambda context: (context.create_time_since_epoch, context.id))


def latest_run_executions(metadata_path: Path, pipeline_name: str) -> dict[str, str]:
    """State of each node's execution in the newest run, e.g. {"Trainer": "CACHED"}.

    Nodes skipped by a condition (the Pusher of an unblessed model) have no execution.
    """
    store = _store(metadata_path)
    run = _latest_run(store, pipeline_name)
    states = {}
    for execution in store.get_executions_by_context(run.id):
        for context in store.get_contexts_by_execution(execution.id):
            if context.name.startswith(f"{pipeline_name}.") and context.type_id != run.type_id:
                node = context.name[len(pipeline_name) + 1 :]
                states[node] = metadata_store_pb2.Execution.State.Name(execution.last_known_state)
    return states


def latest_run_artifacts(
    metadata_path: Path, pipeline_name: str
) -> dict[str, list[metadata_store_pb2.Artifact]]:
    """Output artifacts of the newest pipeline run (cached outputs included), by type name."""
    store = _store(metadata_path)
    run = _latest_run(store, pipeline_name)
    executions = store.get_executions_by_context(run.id)
    events = store.get_events_by_execution_ids([e.id for e in executions])
    output_ids = sorted(
        {e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT}
    )
    types = {t.id: t.name for t in store.get_artifact_types()}
    result: dict[str, list[metadata_store_pb2.Artifact]] = {}
    for artifact in store.get_artifacts_by_id(output_ids):
        result.setdefault(types[artifact.type_id], []).append(artifact)
    return result


def _only(artifacts: dict[str, list], type_name: str):
    found = artifacts.get(type_name, [])
    return max(found, key=lambda a: a.id) if found else None


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


class MixedBackbonesError(ValueError):
    """An evaluation's FIDs come from different backbones (they must never be compared)."""


@dataclasses.dataclass(frozen=True)
class GateCheck:
    """One check of the Evaluator's gate, with the numbers it compared.

    Attributes:
        metric: The metric key, e.g. "fid_a2b".
        check: "absolute" (value bound), "relative" (change vs the baseline) or "report" (no
            bound: reported, not gated).
        candidate: The candidate's value.
        baseline: The baseline's value (None without a blessed baseline).
        threshold: The threshold in words, e.g. "<= 140" or "<= baseline x 1.1 = 75.93".
        bound: The effective numeric bound on the candidate (None if none applies).
        passed: True/False, or None when the check does not apply.
        std: The candidate's standard deviation where the metric has one (KID).
    """

    metric: str
    check: str
    candidate: float | None
    baseline: float | None
    threshold: str
    bound: float | None
    passed: bool | None
    std: float | None = None

    @property
    def result(self) -> str:
        """The verdict in words: pass, FAIL, or - (not gated)."""
        return "-" if self.passed is None else ("pass" if self.passed else "FAIL")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (NaN/inf become None)."""
        data = dataclasses.asdict(self)
        data["result"] = self.result
        return {
            k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in data.items()
        }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _value_check(
    name: str, threshold: Any, candidate: float | None, baseline: float | None
) -> GateCheck:
    lower = threshold.lower_bound.value if threshold.HasField("lower_bound") else None
    upper = threshold.upper_bound.value if threshold.HasField("upper_bound") else None
    if lower is not None and upper is not None:
        text = f"in [{_fmt(lower)}, {_fmt(upper)}]"
    elif upper is not None:
        text = f"<= {_fmt(upper)}"
    else:
        text = f">= {_fmt(lower)}"
    passed = None
    if candidate is not None:
        passed = (lower is None or candidate >= lower) and (upper is None or candidate <= upper)
    return GateCheck(name, "absolute", candidate, baseline, text, upper, passed)


def _change_check(
    name: str, threshold: Any, candidate: float | None, baseline: float | None
) -> GateCheck:
    # TFMA's semantics (metrics_validator): diff = candidate - baseline; relative compares
    # diff / baseline (NaN, hence a failure, when the baseline is 0).
    lower_is_better = threshold.direction == tfma.MetricDirection.LOWER_IS_BETTER
    sign = "<=" if lower_is_better else ">="
    parts, bounds = [], []
    if threshold.HasField("relative"):
        relative = threshold.relative.value
        parts.append(f"baseline x {_fmt(1 + relative)}")
        if baseline is not None:
            bounds.append(baseline * (1 + relative))
    if threshold.HasField("absolute"):
        absolute = threshold.absolute.value
        parts.append(f"baseline {'+' if absolute >= 0 else '-'} {_fmt(abs(absolute))}")
        if baseline is not None:
            bounds.append(baseline + absolute)
    if baseline is None:
        return GateCheck(
            name, "relative", candidate, None, f"{sign} {' and '.join(parts)}", None, None
        )
    bound = (min if lower_is_better else max)(bounds) if bounds else None
    passed = None
    if candidate is not None:
        diff = candidate - baseline
        passed = True
        if threshold.HasField("relative"):
            ratio = math.nan if math.isclose(baseline, 0.0) else diff / baseline
            relative = threshold.relative.value
            passed = ratio <= relative if lower_is_better else ratio >= relative
        if threshold.HasField("absolute"):
            absolute = threshold.absolute.value
            passed = passed and (diff <= absolute if lower_is_better else diff >= absolute)
    text = f"{sign} {' and '.join(parts)} = {_fmt(bound)}"
    return GateCheck(name, "relative", candidate, baseline, text, bound, passed)


def gate_checks(
    eval_config: tfma.EvalConfig,
    metrics: dict[str, dict[str, Any]],
    failures: set[tuple[str, bool]] | None = None,
) -> list[GateCheck]:
    """Every FID/KID check of an evaluation, both directions, in a fixed order.

    Args:
        eval_config: The EvalConfig the Evaluator ran with (as stored with its output: without a
            baseline, TFX has already removed the change thresholds).
        metrics: {"candidate"|"baseline": {metric name: value}} (see :func:`evaluation_metrics`).
        failures: (metric name, is_diff) pairs TFMA's validation reported as failed; when given,
            they decide pass/fail (the numbers here are recomputed for display).

    Returns:
        Per direction: FID absolute, FID relative, then KID (absolute, or "report" when it has no
        bound), then any other failed check TFMA reported.
    """
    thresholds = metric_specs.metric_thresholds_from_metrics_specs(
        eval_config.metrics_specs, eval_config
    )
    candidate, baseline = metrics.get("candidate", {}), metrics.get("baseline") or {}
    checks: list[GateCheck] = []
    for direction in DIRECTIONS:
        for name in (f"fid_{direction}", f"kid_{direction}"):
            value, base = candidate.get(name), baseline.get(name)
            std = candidate.get(f"{name}_std")
            gated: list[GateCheck] = []
            for key, items in thresholds.items():
                if key.name != name or key.model_name == "baseline":
                    continue
                for _, threshold in items:
                    if isinstance(threshold, tfma.GenericValueThreshold):
                        gated.append(_value_check(name, threshold, value, base))
                    else:
                        gated.append(_change_check(name, threshold, value, base))
            for gated_check in sorted(gated, key=lambda c: c.check):  # absolute, relative
                if failures is not None:  # TFMA's verdict decides
                    failed = (name, gated_check.check == "relative") in failures
                    gated_check = dataclasses.replace(gated_check, passed=not failed)
                checks.append(dataclasses.replace(gated_check, std=std))
            if name.startswith("fid") and not any(c.check == "relative" for c in gated):
                no_baseline = "not applied: no blessed baseline yet"
                checks.append(GateCheck(name, "relative", value, base, no_baseline, None, None))
            if not gated:
                checks.append(GateCheck(name, "report", value, base, "no bound", None, None, std))
    shown = {(c.metric, c.check == "relative") for c in checks}
    for name, is_diff in sorted((failures or set()) - shown):
        checks.append(
            GateCheck(
                name,
                "relative" if is_diff else "absolute",
                candidate.get(name),
                baseline.get(name),
                "see the TFMA validation result",
                None,
                False,
            )
        )
    return checks


def evaluation_gate(evaluation_uri: str) -> tuple[list[GateCheck], bool | None]:
    """The gate checks of a TFX evaluation and TFMA's overall verdict.

    Reads the EvalConfig stored with the evaluation (so the thresholds are those the Evaluator
    used, not the current params.yaml), its metrics and its ValidationResult.

    Returns:
        (the checks, `validation_ok` or None if the evaluation has no validation result).
    """
    eval_config = eval_config_writer.load_eval_run(evaluation_uri)[0]
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


def check_single_backbone(metrics: dict[str, dict[str, Any]]) -> str | None:
    """Returns the one backbone all FIDs of an evaluation come from.

    Raises:
        MixedBackbonesError: If candidate/baseline or the two directions used different ones.
    """
    names = {
        value
        for values in metrics.values()
        for key, value in values.items()
        if key.endswith("_backbone")
    }
    if len(names) > 1:
        raise MixedBackbonesError(
            f"this evaluation mixes FID backbones {sorted(names)}; FIDs from different backbones "
            "are not comparable. Re-run the evaluation with one backbone."
        )
    return next(iter(names), None)


def format_gate_table(checks: list[GateCheck]) -> str:
    """The checks as an aligned text table, one row per check."""
    header = ("metric", "check", "candidate", "baseline", "threshold", "result")
    rows = [header]
    for c in checks:
        candidate = _fmt(c.candidate)
        if c.std is not None and c.candidate is not None:
            candidate += f" ± {c.std:.2g}"
        rows.append((c.metric, c.check, candidate, _fmt(c.baseline), c.threshold, c.result))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _translation_grids(model_uri: str, examples_uri: str, image_size: int) -> dict[str, bytes]:
    """PNG grids (input | translation) of the first test images of each direction."""
    model = tf.saved_model.load(path_utils.serving_model_path(model_uri))
    files = sorted(tf.io.gfile.glob(str(Path(examples_uri) / "Split-test" / "*")))
    grids = {}
    for direction, domain in (("a2b", "A"), ("b2a", "B")):
        images = list(
            data.domain_images(files, domain, image_size).take(TRANSLATIONS_PER_DIRECTION)
        )
        if not images:
            continue
        batch = np.stack(images)
        signature = model.signatures[SIGNATURE_FOR_DIRECTION[direction]]
        translated = signature(images=tf.constant(batch))["translated"].numpy()
        grids[direction] = png_bytes(image_grid([batch, translated]))
    return grids


@dataclasses.dataclass(frozen=True)
class GateReport:
    """Why the newest run's model was (not) blessed: every check and the decision.

    Attributes:
        blessed: The Evaluator's decision (the ModelBlessing).
        pushed_version: The version the Pusher wrote, or None.
        backbone: The one FID backbone of the evaluation (see :func:`check_single_backbone`).
        model_uri: The candidate model.
        baseline_model_uri: The blessed baseline it was compared with, or None (first run).
        evaluation_uri: The TFMA output.
        num_test: Per direction, N of translated ("fake") and real test images.
        checks: Every check (see :func:`gate_checks`).
        validation_ok: TFMA's overall verdict, None without a validation result.
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

    def gate_dict(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The checks as {metric: {check: {candidate, baseline, threshold, ..., result}}}."""
        result: dict[str, dict[str, dict[str, Any]]] = {}
        for check in self.checks:
            data = check.to_dict()
            del data["metric"], data["check"]
            result.setdefault(check.metric, {})[check.check] = data
        return result


def gate_report(artifacts: dict[str, list[metadata_store_pb2.Artifact]]) -> GateReport:
    """Builds the :class:`GateReport` of a run from its artifacts (:func:`latest_run_artifacts`).

    Raises:
        MixedBackbonesError: If the evaluation's FIDs come from different backbones.
    """
    model = _only(artifacts, "Model")
    evaluation = _only(artifacts, "ModelEvaluation")
    blessing = _only(artifacts, "ModelBlessing")
    pushed = _only(artifacts, "PushedModel")
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
                "fake": candidate.get(f"fid_{direction}_num_fake"),
                "real": candidate.get(f"fid_{direction}_num_real"),
            }
            for direction in DIRECTIONS
        },
        checks=checks,
        validation_ok=validation_ok,
    )


def write_reports(config: Config) -> dict[str, Any]:
    """Writes DVC metrics and plots of the last pipeline run; returns the evaluation summary."""
    artifacts = latest_run_artifacts(config.paths.metadata_path, config.pipeline.name)
    metrics_dir = config.paths.resolve("metrics")
    plots_dir = config.paths.resolve("plots")
    metrics_dir.mkdir(parents=True, exist_ok=True)
    plots_dir.mkdir(parents=True, exist_ok=True)

    model = _only(artifacts, "Model")
    model_run = _only(artifacts, "ModelRun")
    evaluation = _only(artifacts, "ModelEvaluation")
    examples = _only(artifacts, "Examples")

    metrics = evaluation_metrics(evaluation.uri) if evaluation else {}
    candidate, baseline = metrics.get("candidate", {}), metrics.get("baseline")
    report = gate_report(artifacts)
    summary: dict[str, Any] = {
        "blessed": report.blessed,
        "pushed_version": report.pushed_version,
        "backbone": report.backbone,
        "model_uri": report.model_uri,
        "baseline_model_uri": report.baseline_model_uri,
        "max_relative_increase": config.evaluate.max_relative_increase,
        "validation_ok": report.validation_ok,
    }
    for direction in DIRECTIONS:
        for name, bound in (
            (f"fid_{direction}", config.evaluate.fid_upper_bound.for_direction(direction)),
            (f"kid_{direction}", config.evaluate.kid_upper_bound.for_direction(direction)),
        ):
            summary[name] = candidate.get(name)
            if name.startswith("kid"):
                summary[f"{name}_std"] = candidate.get(f"{name}_std")
            summary[f"{name}_upper_bound"] = bound
            summary[f"{name}_baseline"] = baseline.get(name) if baseline else None
        summary[f"num_test_{direction}"] = report.num_test[direction]
    summary["gate"] = report.gate_dict()
    (metrics_dir / EVALUATION_METRICS_FILE).write_text(json.dumps(summary, indent=2) + "\n")

    fid_points = [
        {
            "direction": direction,
            "model": role,
            "fid": values[f"fid_{direction}"],
            "backbone": report.backbone,
        }
        for role, values in metrics.items()
        for direction in DIRECTIONS
        if f"fid_{direction}" in values
    ]
    (plots_dir / FID_PLOT_FILE).write_text(json.dumps(fid_points, indent=2) + "\n")
    if model_run is not None:
        run_dir = Path(model_run.uri)
        if (run_dir / LOSSES_FILE).is_file():
            shutil.copyfile(run_dir / LOSSES_FILE, plots_dir / LOSSES_PLOT_FILE)
        if (run_dir / SAMPLES_FILE).is_file():
            shutil.copyfile(run_dir / SAMPLES_FILE, plots_dir / SAMPLES_PLOT_FILE)
    if model is not None and examples is not None:
        grids = _translation_grids(model.uri, examples.uri, config.preprocess.image_size)
        for direction, png in grids.items():
            (plots_dir / translations_plot_file(direction)).write_bytes(png)
    logger.info("reports written: %s", summary)
    return summary

"""DVC metrics and plots from the last local pipeline run (read back from ML Metadata).

Writes, under `paths.metrics` / `paths.plots`:
- `metrics/evaluation.json`: FID per direction (candidate and baseline), N, backbone,
  thresholds, blessed yes/no, pushed version.
- `plots/losses.tsv`: per-network loss and learning-rate curves of the Trainer.
- `plots/fid.json`: FID per direction for the candidate and the baseline.
- `plots/translations_a2b.png`, `plots/translations_b2a.png`: test images | translations.
- `plots/training_samples.png`: the Trainer's last sample grid.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import ml_metadata as mlmd
import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2
from tfx.utils import path_utils

from cyclegan_tfx.config import DIRECTIONS, Config
from cyclegan_tfx.grid import image_grid, png_bytes
from cyclegan_tfx.model import data
from cyclegan_tfx.model.export import SIGNATURE_FOR_DIRECTION
from cyclegan_tfx.model.train import LOSSES_FILE, SAMPLES_FILE

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
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = str(metadata_path)
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return mlmd.MetadataStore(connection)


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
    blessing = _only(artifacts, "ModelBlessing")
    pushed = _only(artifacts, "PushedModel")
    examples = _only(artifacts, "Examples")

    metrics = evaluation_metrics(evaluation.uri) if evaluation else {}
    candidate, baseline = metrics.get("candidate", {}), metrics.get("baseline")
    blessed = bool(blessing and blessing.custom_properties["blessed"].int_value == 1)
    pushed_version = None
    if pushed is not None and pushed.custom_properties["pushed"].int_value == 1:
        pushed_version = pushed.custom_properties["pushed_version"].string_value
    summary: dict[str, Any] = {
        "blessed": blessed,
        "pushed_version": pushed_version,
        "backbone": candidate.get("fid_a2b_backbone"),
        "model_uri": model.uri if model else None,
        "max_relative_increase": config.evaluate.max_relative_increase,
    }
    for direction in DIRECTIONS:
        name = f"fid_{direction}"
        summary[name] = candidate.get(name)
        summary[f"{name}_upper_bound"] = config.evaluate.fid_upper_bound.for_direction(direction)
        summary[f"{name}_baseline"] = baseline.get(name) if baseline else None
        summary[f"num_test_{direction}"] = {
            "fake": candidate.get(f"{name}_num_fake"),
            "real": candidate.get(f"{name}_num_real"),
        }
    (metrics_dir / EVALUATION_METRICS_FILE).write_text(json.dumps(summary, indent=2) + "\n")

    fid_points = [
        {"direction": direction, "model": role, "fid": values[f"fid_{direction}"]}
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

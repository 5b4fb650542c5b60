"""Reading ML Metadata: the one layer reports, the gate's explanation and lineage share.

The local runner keeps ML Metadata in a SQLite file (`<paths.pipeline_root>/metadata.sqlite`);
everything here opens it read-only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2


class MetadataError(RuntimeError):
    """ML Metadata is missing, or does not hold what was asked (the message says what)."""


class NoPipelineRunError(MetadataError):
    """ML Metadata has no run of the pipeline."""


def open_store(metadata_path: str | Path) -> mlmd.MetadataStore:
    """Opens a SQLite ML Metadata store read-only.

    Raises:
        NoPipelineRunError: If the file does not exist.
    """
    path = Path(metadata_path)
    if not path.is_file():
        raise NoPipelineRunError(f"no ML Metadata at {path}; run the pipeline first")
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = str(path)
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return mlmd.MetadataStore(connection)


def find_run(
    store: mlmd.MetadataStore, pipeline_name: str, run_id: str | None = None
) -> metadata_store_pb2.Context:
    """The pipeline's `pipeline_run` context named `run_id` (the pipeline run id), or its newest.

    Raises:
        NoPipelineRunError: If the pipeline never ran, or has no run `run_id`.
    """
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    runs = [
        context
        for context in store.get_contexts_by_type("pipeline_run")
        if pipeline is not None
        and any(c.id == pipeline.id for c in store.get_parent_contexts_by_context(context.id))
    ]
    if run_id is not None:
        runs = [context for context in runs if context.name == run_id]
    if not runs:
        which = f"run {run_id!r}" if run_id is not None else "run"
        raise NoPipelineRunError(f"no {which} of pipeline {pipeline_name!r} in ML Metadata")
    return max(runs, key=lambda context: (context.create_time_since_epoch, context.id))


def run_name(metadata_path: Path, pipeline_name: str, run_id: str | None = None) -> str:
    """The id of run `run_id` once checked to exist, or of the newest run (:func:`find_run`)."""
    return find_run(open_store(metadata_path), pipeline_name, run_id).name


def run_executions(
    metadata_path: Path, pipeline_name: str, run_id: str | None = None
) -> dict[str, str]:
    """State of each node's execution in run `run_id` (default: the newest run).

    For example {"Trainer": "CACHED"}.

    Nodes skipped by a condition (the Pusher of an unblessed model) have no execution.
    """
    store = open_store(metadata_path)
    run = find_run(store, pipeline_name, run_id)
    states = {}
    for execution in store.get_executions_by_context(run.id):
        for context in store.get_contexts_by_execution(execution.id):
            if context.name.startswith(f"{pipeline_name}.") and context.type_id != run.type_id:
                node = context.name[len(pipeline_name) + 1 :]
                states[node] = metadata_store_pb2.Execution.State.Name(execution.last_known_state)
    return states


def run_artifacts(
    metadata_path: Path, pipeline_name: str, run_id: str | None = None
) -> dict[str, list[metadata_store_pb2.Artifact]]:
    """Output artifacts of run `run_id` (default: the newest), cached ones included, by type."""
    store = open_store(metadata_path)
    run = find_run(store, pipeline_name, run_id)
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


def newest_artifact(artifacts: dict[str, list[Any]], type_name: str) -> Any:
    """The newest artifact of a type among a run's artifacts (by type name), or None."""
    found = artifacts.get(type_name, [])
    return max(found, key=lambda a: a.id) if found else None


def plain_mlmd_artifact(artifact: Any) -> metadata_store_pb2.Artifact:
    """A copy of a TFX artifact's proto whose custom properties are ints, doubles or strings.

    Kubeflow V2 hands executors every custom property as a JSON struct value (a number is a
    float: `blessed` is 1.0), which TFX's `Artifact.get_custom_property` reads but code
    reading the proto's `int_value` / `string_value` does not. Here a whole number is an
    `int_value` (Kubeflow's 1.0 is ML Metadata's 1), a string a `string_value`; anything else
    is kept as it came. A local artifact's properties stay as they are.

    Args:
        artifact: A `tfx.types.Artifact`.
    """
    proto = metadata_store_pb2.Artifact()
    proto.CopyFrom(artifact.mlmd_artifact)
    for key in list(proto.custom_properties):
        value = artifact.get_custom_property(key)
        target = proto.custom_properties[key]
        if isinstance(value, bool) or (isinstance(value, float) and value.is_integer()):
            target.Clear()
            target.int_value = int(value)
        elif isinstance(value, int):
            target.Clear()
            target.int_value = value
        elif isinstance(value, float):
            target.Clear()
            target.double_value = value
        elif isinstance(value, str):
            target.Clear()
            target.string_value = value
    return proto

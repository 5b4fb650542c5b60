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


def latest_run(store: mlmd.MetadataStore, pipeline_name: str) -> metadata_store_pb2.Context:
    """The newest `pipeline_run` context of the pipeline.

    Raises:
        NoPipelineRunError: If the pipeline never ran.
    """
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
    store = open_store(metadata_path)
    run = latest_run(store, pipeline_name)
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
    store = open_store(metadata_path)
    run = latest_run(store, pipeline_name)
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

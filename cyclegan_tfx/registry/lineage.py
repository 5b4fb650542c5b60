"""Lineage of a served version in ML Metadata.

PushedModel -> Pusher -> Model -> Trainer run, and ModelBlessing -> Evaluator run (evaluation,
baseline) -> Examples -> ImportExampleGen.

The Pusher records the serving version it wrote as the `pushed_version` property of its
PushedModel artifact, so a version folder leads back to every TFX execution and artifact behind
it. A later run that found its model already pushed records the same version with
`already_pushed = 1`; the lineage of a version is that of the push that wrote it.
A Trainer whose output was reused from the cache appears once as the execution that trained
the model (`COMPLETE`) and then once per later run that reused it (`CACHED`).

:func:`push_lineage` reads all of it from ML Metadata. :func:`lineage_from_artifacts` is what the
pipeline's PushRecorder knows from its input artifacts alone (Kubeflow and Vertex AI give an
executor no ML Metadata connection): the artifacts, not the executions.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

from cyclegan_tfx.mlmd import MetadataError, plain_mlmd_artifact

_PUSHED_VERSION = "pushed_version"
_BASELINE_MODEL_URI = "baseline_model"  # ModelBlessing properties the Evaluator writes
_BASELINE_MODEL_ID = "baseline_model_id"
ALREADY_PUSHED_KEY = "already_pushed"
"""PushedModel custom property: 1 when a run found its model already pushed (nothing copied)."""
_COMPLETE = "COMPLETE"


class LineageError(MetadataError):
    """ML Metadata does not know the requested version."""


@dataclasses.dataclass(frozen=True)
class ArtifactRef:
    """An artifact in ML Metadata."""

    id: int
    type: str
    uri: str
    properties: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class ExecutionRef:
    """An execution of a pipeline node in ML Metadata."""

    id: int
    node: str
    state: str
    run: str | None


@dataclasses.dataclass(frozen=True)
class PushLineage:
    """Everything ML Metadata knows about how a pushed version came to be."""

    version: str
    pushed_model: ArtifactRef
    pusher: ExecutionRef | None
    model: ArtifactRef | None
    trainer: ExecutionRef | None
    trainer_reused_by: tuple[ExecutionRef, ...]
    blessing: ArtifactRef | None
    evaluator: ExecutionRef | None
    evaluation: ArtifactRef | None
    baseline_model: ArtifactRef | None
    examples: ArtifactRef | None
    example_gen: ExecutionRef | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return dataclasses.asdict(self)


def _value(value: metadata_store_pb2.Value) -> Any:
    kind = value.WhichOneof("value")
    if kind in ("int_value", "double_value", "string_value", "bool_value"):
        return getattr(value, kind)
    return None


def _ref(artifact: metadata_store_pb2.Artifact, type_name: str) -> ArtifactRef:
    properties = {key: _value(value) for key, value in artifact.custom_properties.items()}
    return ArtifactRef(
        id=artifact.id,
        type=type_name,
        uri=artifact.uri,
        properties={k: v for k, v in sorted(properties.items()) if v is not None},
    )


class _Reader:
    def __init__(self, store: mlmd.MetadataStore, pipeline_name: str) -> None:
        self.store = store
        self.pipeline_name = pipeline_name
        self.artifact_types = {t.id: t.name for t in store.get_artifact_types()}
        self.context_types = {t.id: t.name for t in store.get_context_types()}

    def artifact(self, artifact_id: int | None) -> ArtifactRef | None:
        if artifact_id is None:
            return None
        found = self.store.get_artifacts_by_id([artifact_id])
        return self.artifact_ref(found[0]) if found else None

    def artifact_ref(self, artifact: metadata_store_pb2.Artifact) -> ArtifactRef:
        return _ref(artifact, self.artifact_types.get(artifact.type_id, "?"))

    def execution(self, execution: metadata_store_pb2.Execution) -> ExecutionRef:
        node, run = "?", None
        for context in self.store.get_contexts_by_execution(execution.id):
            kind = self.context_types.get(context.type_id)
            if kind == "node":
                node = context.name.removeprefix(f"{self.pipeline_name}.")
            elif kind == "pipeline_run":
                run = context.name
        return ExecutionRef(
            id=execution.id,
            node=node,
            state=metadata_store_pb2.Execution.State.Name(execution.last_known_state),
            run=run,
        )

    def producers(self, artifact_id: int) -> list[metadata_store_pb2.Execution]:
        """Executions that output the artifact (the producer, then runs that reused it)."""
        events = self.store.get_events_by_artifact_ids([artifact_id])
        ids = sorted({e.execution_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT})
        return list(self.store.get_executions_by_id(ids)) if ids else []

    def events_by_key(self, execution_id: int, event_type: int) -> dict[str, int]:
        """Artifact ids of an execution's inputs or outputs, by every key of the event paths.

        One event can carry several keys, in any order (an artifact consumed both as
        `model_blessing` and as the condition's `_Evaluator.blessing`, or as `model` and
        `baseline_model`).
        """
        result: dict[str, int] = {}
        for event in self.store.get_events_by_execution_ids([execution_id]):
            if event.type != event_type:
                continue
            for step in event.path.steps:
                if step.WhichOneof("value") == "key" and step.key:
                    result.setdefault(step.key, event.artifact_id)
        return result


def artifact_ref(artifact: Any) -> ArtifactRef:
    """The :class:`ArtifactRef` of a TFX artifact (`tfx.types.Artifact`), properties included.

    Its properties are read plain (:func:`cyclegan_tfx.mlmd.plain_mlmd_artifact`), so Kubeflow
    V2's JSON-valued ones read like local ones.
    """
    return _ref(plain_mlmd_artifact(artifact), artifact.type_name)


def lineage_from_artifacts(
    version: str, *, pushed_model: Any, model: Any, blessing: Any, evaluation: Any, examples: Any
) -> PushLineage:
    """The lineage of a push as the artifacts of one pipeline run give it (no ML Metadata).

    The executions are unknown here (None); the baseline model is the one the Evaluator wrote
    into the blessing (`baseline_model`, `baseline_model_id`).

    Args:
        version: The serving version the Pusher wrote or found.
        pushed_model: The Pusher's PushedModel (`tfx.types.Artifact`s, as all below).
        model: The Trainer's Model.
        blessing: The Evaluator's ModelBlessing.
        evaluation: The Evaluator's ModelEvaluation.
        examples: The ExampleGen's Examples.
    """
    blessing_ref = artifact_ref(blessing)
    baseline_uri = blessing_ref.properties.get(_BASELINE_MODEL_URI)
    baseline = None
    if baseline_uri:
        baseline_id = blessing_ref.properties.get(_BASELINE_MODEL_ID) or 0
        baseline = ArtifactRef(id=int(baseline_id), type="Model", uri=baseline_uri, properties={})
    return PushLineage(
        version=version,
        pushed_model=artifact_ref(pushed_model),
        pusher=None,
        model=artifact_ref(model),
        trainer=None,
        trainer_reused_by=(),
        blessing=blessing_ref,
        evaluator=None,
        evaluation=artifact_ref(evaluation),
        baseline_model=baseline,
        examples=artifact_ref(examples),
        example_gen=None,
    )


def _split_producers(
    reader: _Reader, artifact_id: int | None
) -> tuple[ExecutionRef | None, tuple[ExecutionRef, ...]]:
    if artifact_id is None:
        return None, ()
    executions = sorted(reader.producers(artifact_id), key=lambda e: e.id)
    refs = [reader.execution(e) for e in executions]
    original = next((r for r in refs if r.state == _COMPLETE), refs[0] if refs else None)
    return original, tuple(r for r in refs if r is not original)


def push_lineage(store: mlmd.MetadataStore, pipeline_name: str, version: str) -> PushLineage:
    """Follows a pushed version back through ML Metadata.

    Args:
        store: The ML Metadata store of the pipeline.
        pipeline_name: The pipeline's name (node contexts are named `<pipeline>.<node>`).
        version: The serving version (the folder name the Pusher wrote).

    Returns:
        The lineage; parts ML Metadata does not have are None.

    Raises:
        LineageError: If no PushedModel of that version exists.
    """
    reader = _Reader(store, pipeline_name)
    pushed = [
        a
        for a in store.get_artifacts_by_type("PushedModel")
        if _value(a.custom_properties[_PUSHED_VERSION]) == version
        if _PUSHED_VERSION in a.custom_properties
    ]
    if not pushed:
        raise LineageError(f"ML Metadata has no push of version {version}")
    wrote = [a for a in pushed if _value(a.custom_properties[ALREADY_PUSHED_KEY]) != 1]
    pushed_model = reader.artifact_ref(max(wrote or pushed, key=lambda a: a.id))
    pushers = sorted(reader.producers(pushed_model.id), key=lambda e: e.id)
    pusher = reader.execution(pushers[0]) if pushers else None
    pusher_inputs = (
        reader.events_by_key(pusher.id, metadata_store_pb2.Event.INPUT) if pusher else {}
    )
    model_id, blessing_id = pusher_inputs.get("model"), pusher_inputs.get("model_blessing")
    trainer, reused = _split_producers(reader, model_id)
    evaluator, _ = _split_producers(reader, blessing_id)
    evaluator_inputs, evaluator_outputs = {}, {}
    if evaluator is not None:
        evaluator_inputs = reader.events_by_key(evaluator.id, metadata_store_pb2.Event.INPUT)
        evaluator_outputs = reader.events_by_key(evaluator.id, metadata_store_pb2.Event.OUTPUT)
    examples_id = evaluator_inputs.get("examples")
    example_gen, _ = _split_producers(reader, examples_id)
    return PushLineage(
        version=version,
        pushed_model=pushed_model,
        pusher=pusher,
        model=reader.artifact(model_id),
        trainer=trainer,
        trainer_reused_by=reused,
        blessing=reader.artifact(blessing_id),
        evaluator=evaluator,
        evaluation=reader.artifact(evaluator_outputs.get("evaluation")),
        baseline_model=reader.artifact(evaluator_inputs.get("baseline_model")),
        examples=reader.artifact(examples_id),
        example_gen=example_gen,
    )


def pushed_versions_of_model(store: mlmd.MetadataStore, model_id: int) -> list[str]:
    """The serving versions a Model artifact was pushed as (by any Pusher execution), sorted."""
    consumers = sorted(
        {
            e.execution_id
            for e in store.get_events_by_artifact_ids([model_id])
            if e.type == metadata_store_pb2.Event.INPUT
        }
    )
    if not consumers:
        return []
    outputs = [
        e.artifact_id
        for e in store.get_events_by_execution_ids(consumers)
        if e.type == metadata_store_pb2.Event.OUTPUT
    ]
    versions = {
        _value(artifact.custom_properties[_PUSHED_VERSION])
        for artifact in store.get_artifacts_by_id(outputs)
        if _PUSHED_VERSION in artifact.custom_properties
    }
    return sorted((v for v in versions if isinstance(v, str)), key=lambda v: (len(v), v))

"""Lineage of a pushed version through ML Metadata, on a small hand-built store (the shapes TFX
1.16 writes: multi-key event paths in any order, cached executions re-outputting artifacts)."""

from pathlib import Path

import ml_metadata as mlmd
import pytest
from conftest import tiny_config
from ml_metadata.proto import metadata_store_pb2 as pb

from cyclegan_tfx.mlmd import MetadataError, open_store
from cyclegan_tfx.registry import lineage
from cyclegan_tfx.registry import record as registry
from cyclegan_tfx.registry.store import ModelRegistry

PIPELINE = "cyclegan"


class _Store:
    def __init__(self, path):
        connection = pb.ConnectionConfig()
        connection.sqlite.filename_uri = str(path)
        connection.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        self.store = mlmd.MetadataStore(connection)
        self.types = {}
        self.contexts = {}

    def _type(self, kind, name):
        key = (kind, name)
        if key not in self.types:
            put = {
                "artifact": (self.store.put_artifact_type, pb.ArtifactType),
                "execution": (self.store.put_execution_type, pb.ExecutionType),
                "context": (self.store.put_context_type, pb.ContextType),
            }[kind]
            self.types[key] = put[0](put[1](name=name))
        return self.types[key]

    def _context(self, kind, name):
        if (kind, name) not in self.contexts:
            context = pb.Context(type_id=self._type("context", kind), name=name)
            self.contexts[(kind, name)] = self.store.put_contexts([context])[0]
        return self.contexts[(kind, name)]

    def artifact(self, type_name, uri, **properties):
        artifact = pb.Artifact(type_id=self._type("artifact", type_name), uri=uri)
        for key, value in properties.items():
            if isinstance(value, int):
                artifact.custom_properties[key].int_value = value
            else:
                artifact.custom_properties[key].string_value = value
        return self.store.put_artifacts([artifact])[0]

    def execution(self, node, run, state, inputs=(), outputs=()):
        execution = pb.Execution(
            type_id=self._type("execution", f"tfx.{node}"), last_known_state=state
        )
        execution_id = self.store.put_executions([execution])[0]
        events = []
        for event_type, items in ((pb.Event.INPUT, inputs), (pb.Event.OUTPUT, outputs)):
            for artifact_id, keys in items:
                event = pb.Event(
                    artifact_id=artifact_id, execution_id=execution_id, type=event_type
                )
                for key in keys:
                    event.path.steps.add().key = key
                    event.path.steps.add().index = 0
                events.append(event)
        self.store.put_events(events)
        contexts = [self._context("node", f"{PIPELINE}.{node}"), self._context("pipeline_run", run)]
        self.store.put_attributions_and_associations(
            [],
            [pb.Association(context_id=c, execution_id=execution_id) for c in contexts],
        )
        return execution_id


@pytest.fixture
def store(tmp_path):
    (tmp_path / "build" / "tfx").mkdir(parents=True)
    s = _Store(tmp_path / "build" / "tfx" / "metadata.sqlite")
    ids = {}
    ids["examples"] = s.artifact("Examples", "/x/examples/1")
    ids["example_gen"] = s.execution(
        "ImportExampleGen", "run1", pb.Execution.COMPLETE, outputs=[(ids["examples"], ["examples"])]
    )
    ids["model"] = s.artifact("Model", "/x/model/2")
    ids["trainer"] = s.execution(
        "Trainer",
        "run1",
        pb.Execution.COMPLETE,
        inputs=[(ids["examples"], ["examples"])],
        outputs=[(ids["model"], ["model"])],
    )
    ids["trainer_cached"] = s.execution(
        "Trainer", "run2", pb.Execution.CACHED, outputs=[(ids["model"], ["model"])]
    )
    ids["blessing"] = s.artifact("ModelBlessing", "/x/blessing/3", blessed=1)
    ids["evaluation"] = s.artifact("ModelEvaluation", "/x/evaluation/3")
    ids["evaluator"] = s.execution(
        "Evaluator",
        "run2",
        pb.Execution.COMPLETE,
        inputs=[(ids["examples"], ["examples"]), (ids["model"], ["baseline_model", "model"])],
        outputs=[(ids["blessing"], ["blessing"]), (ids["evaluation"], ["evaluation"])],
    )
    ids["pushed"] = s.artifact("PushedModel", "/x/pushed/4", pushed=1, pushed_version="123")
    ids["pusher"] = s.execution(
        "Pusher",
        "run2",
        pb.Execution.COMPLETE,
        inputs=[
            (ids["model"], ["model"]),
            (ids["blessing"], ["_Evaluator.blessing", "model_blessing"]),
        ],
        outputs=[(ids["pushed"], ["pushed_model"])],
    )
    return s.store, ids


def test_a_pushed_version_leads_back_to_every_execution_and_artifact(store):
    metadata, ids = store
    found = lineage.push_lineage(metadata, PIPELINE, "123")
    assert found.pushed_model.id == ids["pushed"]
    assert found.pushed_model.properties["pushed_version"] == "123"
    assert (found.pusher.id, found.pusher.node, found.pusher.run) == (
        ids["pusher"],
        "Pusher",
        "run2",
    )
    assert found.model.id == ids["model"]
    assert (found.trainer.id, found.trainer.state) == (ids["trainer"], "COMPLETE")
    assert found.trainer.run == "run1"
    assert [(e.id, e.state) for e in found.trainer_reused_by] == [(ids["trainer_cached"], "CACHED")]
    assert found.blessing.id == ids["blessing"]  # found under its second key
    assert found.blessing.properties["blessed"] == 1
    assert found.evaluator.id == ids["evaluator"]
    assert found.evaluation.id == ids["evaluation"]
    assert found.baseline_model.id == ids["model"]
    assert found.examples.id == ids["examples"]
    assert found.example_gen.id == ids["example_gen"]
    assert found.to_dict()["trainer"]["node"] == "Trainer"


def test_an_unknown_version_is_an_error(store):
    metadata, _ = store
    with pytest.raises(lineage.LineageError, match="no push of version 999"):
        lineage.push_lineage(metadata, PIPELINE, "999")


def test_a_missing_store_is_an_error(tmp_path):
    with pytest.raises(MetadataError, match=r"no ML Metadata at .*run the pipeline first"):
        open_store(tmp_path / "metadata.sqlite")


def test_backfill_fills_metrics_and_lineage_and_keeps_recorded_provenance(
    store, tmp_path, monkeypatch
):
    _, ids = store
    config = tiny_config(tmp_path)
    serving = ModelRegistry(config.paths.resolve("serving") / PIPELINE, PIPELINE)
    (Path(serving.model_dir) / "123").mkdir(parents=True)
    (Path(serving.model_dir) / "123" / "saved_model.pb").write_bytes(b"fake")
    serving.record("123", {"metrics": {"fid_a2b": None}, "params_hash": "sha256:at-push"})
    metrics = {"candidate": {"fid_a2b": 12.5, "fid_b2a": 20.0, "kid_a2b": 0.01}, "baseline": {}}
    monkeypatch.setattr(registry, "evaluation_metrics", lambda uri: metrics)
    assert registry.backfill(config) == ["123"]
    entry = serving.entry("123")
    assert entry["semver"] == "v0.0.1"
    assert entry["metrics"]["fid_a2b"] == 12.5 and "kid_b2a" not in entry["metrics"]
    assert entry["params_hash"] == "sha256:at-push" and entry["git"] is None
    assert entry["backfilled_at"] and entry["pushed_at"] == "1970-01-01T00:02:03Z"
    assert entry["lineage"]["evaluator"]["id"] == ids["evaluator"]
    assert entry["baseline"]["model_artifact_id"] == ids["model"]
    assert registry.backfill(config) == []  # complete now
    with pytest.raises(lineage.LineageError, match="no push of version 77"):
        registry.backfill(config, ["77"])


def test_pushed_versions_of_a_model(store):
    metadata, ids = store
    assert lineage.pushed_versions_of_model(metadata, ids["model"]) == ["123"]
    assert lineage.pushed_versions_of_model(metadata, ids["examples"]) == []

"""The PushRecorder's and GateReporter's pieces that need no pipeline run (the e2e lanes run
the real thing): the run id and the artifacts' properties in either runner, a push of nothing,
and the lineage of a run's artifacts."""

import json

from tfx.dsl.components.base import base_executor
from tfx.types import standard_artifacts

from components.executor_inputs import pipeline_run_id
from components.push_recorder import Executor, PushRecord
from cyclegan_tfx.mlmd import plain_mlmd_artifact
from cyclegan_tfx.registry.lineage import lineage_from_artifacts
from cyclegan_tfx.registry.record import (
    NEWLY_REGISTERED_KEY,
    PUSH_RECORD_FILE,
    RECORDED_BY_RUN_KEY,
    RECORDED_VERSION_KEY,
)


def _artifact(kind, uri, artifact_id=0, **properties):
    artifact = kind()
    artifact.uri = uri
    artifact.id = artifact_id
    for key, value in properties.items():
        if isinstance(value, int):
            artifact.set_int_custom_property(key, value)
        else:
            artifact.set_string_custom_property(key, value)
    return artifact


def test_the_run_id_comes_from_the_local_runner_or_the_kubeflow_task_folder():
    local = base_executor.BaseExecutor.Context(pipeline_run_id="2026-12-07T01:02:03")
    assert pipeline_run_id(local) == "2026-12-07T01:02:03"
    # Kubeflow V2 / Vertex AI: <root>/<project number>/<job id>/<task>_<uuid>/.temp
    kubeflow = base_executor.BaseExecutor.Context(
        tmp_dir="gs://bucket/tfx/123456/cyclegan-20261207010203/PushRecorder_9f3c/.temp",
        unique_id="PushRecorder_9f3c",
    )
    assert pipeline_run_id(kubeflow) == "cyclegan-20261207010203"
    assert pipeline_run_id(base_executor.BaseExecutor.Context()) is None
    assert pipeline_run_id(None) is None


def test_a_push_of_nothing_records_nothing(tmp_path):
    """A Pusher that did not push (pushed = 0) leaves the registry alone: no folder is made."""
    serving = tmp_path / "serving" / "cyclegan"
    pushed = _artifact(standard_artifacts.PushedModel, str(tmp_path / "pushed"), pushed=0)
    output = _artifact(PushRecord, str(tmp_path / "record"))
    inputs = {"pushed_model": [pushed]}
    for key, kind in (
        ("model", standard_artifacts.Model),
        ("model_blessing", standard_artifacts.ModelBlessing),
        ("evaluation", standard_artifacts.ModelEvaluation),
        ("examples", standard_artifacts.Examples),
        ("gate_report", standard_artifacts.ModelEvaluation),
    ):
        inputs[key] = [_artifact(kind, str(tmp_path / key))]
    context = base_executor.BaseExecutor.Context(pipeline_run_id="run-1")
    Executor(context).Do(
        inputs,
        {"push_record": [output]},
        {"serving_directory": str(serving), "model_name": "cyclegan", "provenance": "{}"},
    )
    record = json.loads((tmp_path / "record" / PUSH_RECORD_FILE).read_text())
    assert record["version"] is None and record["newly_registered"] is False
    assert output.get_string_custom_property(RECORDED_VERSION_KEY) == ""
    assert output.get_int_custom_property(NEWLY_REGISTERED_KEY) == 0
    assert output.get_string_custom_property(RECORDED_BY_RUN_KEY) == "run-1"
    assert not serving.exists()


def test_the_lineage_of_a_runs_artifacts_names_the_baseline_from_the_blessing():
    blessing = _artifact(
        standard_artifacts.ModelBlessing,
        "/root/Evaluator/blessing/7",
        7,
        blessed=1,
        baseline_model="/root/Trainer/model/3",
        baseline_model_id=3,
    )
    push = lineage_from_artifacts(
        "1796414474",
        pushed_model=_artifact(standard_artifacts.PushedModel, "/root/Pusher/pushed_model/9", 9),
        model=_artifact(standard_artifacts.Model, "/root/Trainer/model/5", 5),
        blessing=blessing,
        evaluation=_artifact(standard_artifacts.ModelEvaluation, "/root/Evaluator/evaluation/6", 6),
        examples=_artifact(standard_artifacts.Examples, "/root/ImportExampleGen/examples/1", 1),
    )
    assert push.model.id == 5 and push.model.uri == "/root/Trainer/model/5"
    assert push.baseline_model.id == 3 and push.baseline_model.uri == "/root/Trainer/model/3"
    assert push.blessing.properties["blessed"] == 1
    assert push.pusher is None and push.trainer is None  # no ML Metadata: executions unknown
    assert json.loads(json.dumps(push.to_dict()))["examples"]["type"] == "Examples"


def test_kubeflow_properties_read_like_local_ones():
    """Kubeflow V2 passes custom properties as JSON values: blessed is 1.0, not 1."""
    blessing = _artifact(standard_artifacts.ModelBlessing, "gs://b/Evaluator/blessing", 7)
    blessing.set_json_value_custom_property("blessed", 1.0)
    blessing.set_json_value_custom_property("baseline_model", "gs://b/Trainer/model/3")
    blessing.set_json_value_custom_property("baseline_model_id", 3.0)
    plain = plain_mlmd_artifact(blessing)
    assert plain.custom_properties["blessed"].int_value == 1
    assert plain.custom_properties["baseline_model"].string_value == "gs://b/Trainer/model/3"
    assert blessing.mlmd_artifact.custom_properties["blessed"].int_value == 0  # a copy
    push = lineage_from_artifacts(
        "1",
        pushed_model=_artifact(standard_artifacts.PushedModel, "gs://b/p"),
        model=_artifact(standard_artifacts.Model, "gs://b/m"),
        blessing=blessing,
        evaluation=_artifact(standard_artifacts.ModelEvaluation, "gs://b/e"),
        examples=_artifact(standard_artifacts.Examples, "gs://b/x"),
    )
    assert push.baseline_model.id == 3 and push.baseline_model.uri == "gs://b/Trainer/model/3"
    assert push.blessing.properties["blessed"] == 1.0

"""The Kubeflow V2 spec compiled from the one create_pipeline: KFP loads it, and it names every
component, their order, the image, the blessing condition, run-time parameters and resources."""

import dataclasses
import json

import pytest
import yaml
from conftest import REPO_ROOT
from google.protobuf import json_format
from kfp import components as kfp_components
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.orchestration.kubeflow.v2.kubeflow_v2_dag_runner import KUBEFLOW_TFX_CMD

from cyclegan_tfx.config import load_config
from pipeline import kubeflow_runner

IMAGE = "registry.example.com/ml/cyclegan-tfx:1.2.3"
PIPELINE_ROOT = "gs://test-bucket/cyclegan/tfx"
EXAMPLES_ROOT = "gs://test-bucket/cyclegan/preprocessed"
SERVING = "gs://test-bucket/cyclegan/serving/cyclegan"
TASKS = {
    "ImportExampleGen",
    "Trainer",
    "latest_blessed_model_resolver-model-blessing-resolver",
    "latest_blessed_model_resolver-model-resolver",
    "Evaluator",
    "GateReporter",
    "Pusher",
    "PushRecorder",
}
BLESSED_CONDITION = "(inputs.artifacts['model_blessing'].artifacts[0].metadata['blessed'] == 1.0)"


def _config(output_dir):
    config = load_config(REPO_ROOT / "params.yaml")
    kubeflow = dataclasses.replace(
        config.kubeflow,
        image=IMAGE,
        pipeline_root=PIPELINE_ROOT,
        examples_root=EXAMPLES_ROOT,
        serving_directory=SERVING,
        beam_args=("--runner=DataflowRunner", "--sdk_container_image={image}"),
        gpus=2,
        gpu_type="NVIDIA_TESLA_T4",
        cpu_limit=8.0,
        memory_limit_gb=32.0,
        output_dir=str(output_dir),
    )
    return config.replace(kubeflow=kubeflow)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    files = kubeflow_runner.compile_pipeline(_config(tmp_path_factory.mktemp("kfp")))
    job = json.loads(files.job_json.read_text())
    return files, job, job["pipelineSpec"]


def _tasks(spec):
    return spec["root"]["dag"]["tasks"]


def _executor(spec, task):
    label = spec["components"][_tasks(spec)[task]["componentRef"]["name"]]["executorLabel"]
    return spec["deploymentSpec"]["executors"][label]


def test_spec_loads_with_the_kfp_sdk(compiled):
    files, job, spec = compiled
    assert files.job_json.name == "cyclegan.json" and files.spec_yaml.name == "cyclegan.yaml"
    component = kfp_components.load_component_from_file(str(files.spec_yaml))
    assert component.name == "cyclegan"
    assert component.component_spec.inputs["examples_root"].default == EXAMPLES_ROOT
    parsed = json_format.ParseDict(job, pipeline_spec_pb2.PipelineJob())
    assert parsed.pipeline_spec["pipelineInfo"]["name"] == "cyclegan"
    assert yaml.safe_load(files.spec_yaml.read_text()) == spec
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())


def test_every_component_is_named_with_its_dependencies_in_order(compiled):
    _, _, spec = compiled
    tasks = _tasks(spec)
    assert set(tasks) == TASKS
    depends = {name: set(task.get("dependentTasks", [])) for name, task in tasks.items()}
    assert depends["ImportExampleGen"] == set()
    assert depends["Trainer"] == {"ImportExampleGen"}
    assert depends["Evaluator"] == {
        "ImportExampleGen",
        "Trainer",
        "latest_blessed_model_resolver-model-resolver",
    }
    assert depends["Pusher"] == {"Evaluator", "Trainer"}
    assert depends["GateReporter"] == {"Evaluator", "Trainer"}
    assert "Pusher" in depends["PushRecorder"] and "GateReporter" in depends["PushRecorder"]
    # A topological order exists: ExampleGen -> Trainer -> Evaluator -> Pusher -> PushRecorder.
    order, done = [], set()
    while len(order) < len(tasks):
        ready = sorted(n for n in tasks if n not in done and depends[n] <= done)
        assert ready, f"cycle among {set(tasks) - done}"
        order.append(ready[0])
        done.add(ready[0])
    position = {name: index for index, name in enumerate(order)}
    assert position["ImportExampleGen"] < position["Trainer"] < position["Evaluator"]
    assert position["Evaluator"] < position["Pusher"] < position["PushRecorder"]
    evaluator_inputs = tasks["Evaluator"]["inputs"]["artifacts"]
    assert evaluator_inputs["baseline_model"]["taskOutputArtifact"]["producerTask"] == (
        "latest_blessed_model_resolver-model-resolver"
    )


def test_every_container_runs_the_image(compiled):
    _, _, spec = compiled
    for task in TASKS - {t for t in TASKS if "resolver" in t}:
        container = _executor(spec, task)["container"]
        assert container["image"] == IMAGE, task
        assert container["command"] == list(KUBEFLOW_TFX_CMD)


def test_example_gen_caches_on_the_content_of_its_files(compiled):
    """Kubeflow runs the content-fingerprint driver before its cache check, as LocalDagRunner."""
    _, _, spec = compiled
    lifecycle = _executor(spec, "ImportExampleGen")["container"]["lifecycle"]
    assert lifecycle["preCacheCheck"]["command"] == ["python", "-m", "components.example_gen"]
    from components import example_gen  # the module the command runs must import cleanly

    assert callable(example_gen._kubeflow_driver_main)


def test_pusher_and_recorder_run_only_if_the_model_is_blessed(compiled):
    _, _, spec = compiled
    conditional = sorted(name for name, task in _tasks(spec).items() if "triggerPolicy" in task)
    assert conditional == ["PushRecorder", "Pusher"]  # the gate report is written either way
    for name in conditional:
        task = _tasks(spec)[name]
        assert task["triggerPolicy"]["condition"] == BLESSED_CONDITION
        blessing = task["inputs"]["artifacts"]["model_blessing"]["taskOutputArtifact"]
        assert blessing == {"producerTask": "Evaluator", "outputArtifactKey": "blessing"}
    pusher = _tasks(spec)["Pusher"]
    destination = json.loads(
        pusher["inputs"]["parameters"]["push_destination"]["runtimeValue"]["constant"]
    )
    assert destination == {"filesystem": {"base_directory": SERVING}}


def test_the_recorder_registers_in_the_pushers_destination(compiled):
    """The PushRecorder records the Pusher's output into the registry next to it."""
    _, _, spec = compiled
    recorder = _tasks(spec)["PushRecorder"]
    pushed = recorder["inputs"]["artifacts"]["pushed_model"]["taskOutputArtifact"]
    assert pushed == {"producerTask": "Pusher", "outputArtifactKey": "pushed_model"}
    parameters = {
        key: value["runtimeValue"]["constant"]
        for key, value in recorder["inputs"]["parameters"].items()
    }
    assert parameters["serving_directory"] == SERVING
    assert parameters["model_name"] == "cyclegan"
    provenance = json.loads(parameters["provenance"])
    assert provenance["data"] is None  # the examples are a run parameter, not data.dvc
    assert provenance["params_hash"] and provenance["optimizer_strategy"]
    command = _executor(spec, "PushRecorder")["container"]["args"]
    assert (
        command[command.index("--executor_class_path") + 1] == "components.push_recorder.Executor"
    )
    report = _executor(spec, "GateReporter")["container"]["args"]
    assert report[report.index("--executor_class_path") + 1] == "components.gate_reporter.Executor"


def test_a_warm_start_feeds_the_trainer_the_last_blessed_model(tmp_path):
    config = _config(tmp_path)
    config = config.replace(train=dataclasses.replace(config.train, warm_start="blessed"))
    spec = json.loads(kubeflow_runner.compile_pipeline(config).job_json.read_text())
    tasks = _tasks(spec["pipelineSpec"])
    resolver = "warm_start_model_resolver-model-resolver"
    assert set(tasks) == TASKS | {resolver, "warm_start_model_resolver-model-blessing-resolver"}
    base = tasks["Trainer"]["inputs"]["artifacts"]["base_model"]["taskOutputArtifact"]
    assert base == {"producerTask": resolver, "outputArtifactKey": "model"}


def test_runtime_parameters_and_pipeline_root(compiled):
    _, job, spec = compiled
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert parameters == {
        "examples_root": {
            "parameterType": "STRING",
            "defaultValue": EXAMPLES_ROOT,
            "isOptional": True,
        }
    }
    input_base = _tasks(spec)["ImportExampleGen"]["inputs"]["parameters"]["input_base"]
    assert input_base == {"componentInputParameter": "examples_root"}
    assert spec["defaultPipelineRoot"] == PIPELINE_ROOT
    assert job["runtimeConfig"] == {
        "gcsOutputDirectory": PIPELINE_ROOT,
        "parameterValues": {"examples_root": EXAMPLES_ROOT},
    }


def test_trainer_gets_the_gpus_and_the_others_do_not(compiled):
    _, _, spec = compiled
    resources = _executor(spec, "Trainer")["container"]["resources"]
    assert resources == {
        "accelerator": {"type": "NVIDIA_TESLA_T4", "count": "2"},
        "cpuLimit": 8.0,
        "memoryLimit": 32.0,
    }
    for task in ("ImportExampleGen", "Evaluator", "Pusher", "PushRecorder"):
        assert "resources" not in _executor(spec, task)["container"], task


def test_cluster_beam_args_reach_the_beam_components(compiled):
    _, _, spec = compiled
    for task in ("ImportExampleGen", "Evaluator"):
        args = _executor(spec, task)["container"]["args"]
        assert "--runner=DataflowRunner" in args, task
        assert f"--sdk_container_image={IMAGE}" in args, task


def test_compiling_twice_gives_the_same_spec(compiled):
    files, _, _ = compiled
    job, spec = files.job_json.read_bytes(), files.spec_yaml.read_bytes()
    # Same params (the output folder is one of them: the PushRecorder records their hash).
    again = kubeflow_runner.compile_pipeline(_config(files.job_json.parent))
    assert again.job_json.read_bytes() == job
    assert again.spec_yaml.read_bytes() == spec


def test_no_gpus_means_no_accelerator():
    config = _config("unused")
    kubeflow = dataclasses.replace(config.kubeflow, gpus=0, cpu_limit=None, memory_limit_gb=None)
    assert kubeflow_runner.trainer_resources(kubeflow) is None


def test_a_condition_on_an_artifact_the_task_does_not_consume_is_an_error():
    spec = {
        "root": {
            "dag": {
                "tasks": {
                    "Pusher": {
                        "inputs": {"artifacts": {}},
                        "triggerPolicy": {
                            "condition": "(inputs.artifacts['_Evaluator.blessing'].artifacts[0]"
                            ".metadata['blessed'] == 1.0)"
                        },
                    }
                }
            }
        }
    }
    with pytest.raises(ValueError, match="not one of its inputs"):
        kubeflow_runner.link_condition_inputs(spec)


def test_cli_flags_override_params(tmp_path, capsys):
    status = kubeflow_runner.main(
        [
            "--params",
            str(REPO_ROOT / "params.yaml"),
            "--image",
            IMAGE,
            "--gpus",
            "0",
            "--beam-arg=--runner=FlinkRunner",
            "--beam-arg=--flink_master=flink:8081",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert status == 0
    assert "cyclegan.json" in capsys.readouterr().out
    spec = json.loads((tmp_path / "cyclegan.json").read_text())["pipelineSpec"]
    trainer = _executor(spec, "Trainer")["container"]
    assert trainer["image"] == IMAGE
    assert "accelerator" not in trainer.get("resources", {})
    assert "--flink_master=flink:8081" in _executor(spec, "Evaluator")["container"]["args"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--pipeline-root", "build/tfx"], "kubeflow.pipeline_root must be a URI"),
        (["--gpus", "-1"], "kubeflow.gpus must be >= 0"),
    ],
)
def test_cli_bad_values_are_clear_errors(flags, message, tmp_path, capsys):
    params = ["--params", str(REPO_ROOT / "params.yaml"), "--output-dir", str(tmp_path)]
    assert kubeflow_runner.main(params + flags) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_cli_missing_params_file_is_a_clear_error(tmp_path, capsys):
    assert kubeflow_runner.main(["--params", str(tmp_path / "nope.yaml")]) == 2
    assert "params file not found" in capsys.readouterr().err

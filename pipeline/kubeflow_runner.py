"""Compiles the pipeline for Kubeflow Pipelines v2 and Vertex AI Pipelines (KubeflowV2DagRunner).

The DAG is the one of `pipeline.pipeline.create_pipeline`; this module only chooses where it
runs: the container image, a remote pipeline root, cluster Beam flags, the Pusher's remote
destination and the Trainer's resources (GPUs), all from the `kubeflow` section of params.yaml
or flags. It writes two files into `kubeflow.output_dir`:

- `<pipeline.name>.json`: the PipelineJob (pipeline spec + runtime config) that Vertex AI
  Pipelines runs (`google.cloud.aiplatform.PipelineJob(template_path=...)`);
- `<pipeline.name>.yaml`: the bare PipelineSpec (KFP v2 IR) that a Kubeflow Pipelines v2
  cluster accepts (`kfp pipeline create`, `Client.upload_pipeline`).

The ImportExampleGen input folder is the run-time parameter `examples_root`, so a run can point
at another preprocessed dataset without recompiling.

Post-processing of what TFX 1.16 compiles:
- the Pusher and the PushRecorder both consume the blessing (`model_blessing`) and run under a
  condition on it; the compiler names the condition's artifact by its implicit key
  `_Evaluator.blessing`, which is not an input of those tasks, so :func:`link_condition_inputs`
  points each condition at the declared input of the same artifact;
- run-time parameter defaults and the pipeline root go into the spec too (TFX writes them only
  into the PipelineJob's runtime config, which a KFP cluster does not read).

Usage: python -m pipeline.kubeflow_runner [--params params.yaml] [--image IMAGE] ...
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

from cyclegan_tfx.config import Config, ConfigError, KubeflowConfig, load_config
from cyclegan_tfx.evaluation.fid.weights import WeightsError
from cyclegan_tfx.registry.record import run_provenance
from pipeline.pipeline import create_pipeline

logger = logging.getLogger(__name__)

EXAMPLES_ROOT_PARAMETER = "examples_root"
"""Run-time parameter holding the folder of preprocessed TFRecords (train/, test/)."""
TRAINER_ID = "Trainer"
IMAGE_PLACEHOLDER = "{image}"
_CONDITION_ARTIFACT = re.compile(r"inputs\.artifacts\['([^']+)'\]")
_ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec


@dataclasses.dataclass(frozen=True)
class CompiledPipeline:
    """Paths of the compiled specs."""

    job_json: Path
    spec_yaml: Path


def trainer_resources(kubeflow: KubeflowConfig) -> _ResourceSpec | None:
    """The Trainer's container resources (GPUs, CPU, memory), or None for the defaults."""
    spec = _ResourceSpec()
    if kubeflow.gpus:
        spec.accelerator.type = kubeflow.gpu_type
        spec.accelerator.count = kubeflow.gpus
    if kubeflow.cpu_limit is not None:
        spec.cpu_limit = kubeflow.cpu_limit
    if kubeflow.memory_limit_gb is not None:
        spec.memory_limit = kubeflow.memory_limit_gb
    return spec if spec.ByteSize() else None


def beam_args(kubeflow: KubeflowConfig) -> list[str]:
    """The cluster Beam flags, with `{image}` replaced by the pipeline image."""
    return [arg.replace(IMAGE_PLACEHOLDER, kubeflow.image) for arg in kubeflow.beam_args]


def build_pipeline(config: Config) -> tfx.dsl.Pipeline:
    """The project's pipeline configured for Kubeflow (remote roots, cluster Beam, resources)."""
    kubeflow = config.kubeflow
    pipeline = create_pipeline(
        config,
        pipeline_root=kubeflow.pipeline_root,
        metadata_connection_config=None,
        beam_pipeline_args=beam_args(kubeflow),
        serving_directory=kubeflow.serving_directory,
        examples_directory=tfx.dsl.experimental.RuntimeParameter(
            name=EXAMPLES_ROOT_PARAMETER, ptype=str, default=kubeflow.examples_root
        ),
        # The V2 compiler compiles only TFX's stock resolver strategies
        # (components/baseline_resolver.py says what that costs).
        baseline_excludes_candidate=False,
        # The examples are chosen per run (examples_root), so data.dvc says nothing about them.
        provenance=run_provenance(config, data=False),
    )
    resources = trainer_resources(kubeflow)
    if resources is not None:
        trainer = next(c for c in pipeline.components if c.id == TRAINER_ID)
        trainer.with_platform_config(resources)
    return pipeline


def _declared_condition(task_name: str, condition: str, artifacts: dict[str, Any]) -> str:
    by_source = {
        (
            spec["taskOutputArtifact"]["producerTask"],
            spec["taskOutputArtifact"]["outputArtifactKey"],
        ): key
        for key, spec in artifacts.items()
        if "taskOutputArtifact" in spec
    }

    def declared(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in artifacts:
            return match.group(0)
        producer, _, output = key.removeprefix("_").partition(".")
        if (producer, output) not in by_source:
            raise ValueError(f"task {task_name}: its condition uses {key!r}, not one of its inputs")
        return f"inputs.artifacts['{by_source[(producer, output)]}']"

    return _CONDITION_ARTIFACT.sub(declared, condition)


def link_condition_inputs(pipeline_spec: dict[str, Any]) -> None:
    """Makes every artifact named in a task's trigger condition an input of that task.

    A condition reference `inputs.artifacts['_<producer>.<output>']` that the task does not
    declare is rewritten to the task's input bound to the same producer output.

    Why: TFX 1.16's V2 compiler writes the blessing condition (`tfx.dsl.Cond` in
    `create_pipeline`) against the channel's implicit key, `_Evaluator.blessing`
    (tfx/orchestration/kubeflow/v2/step_builder.py, `implicit_channel_key`), while the Pusher
    task consumes that same channel under its own input name, `model_blessing`. KFP evaluates
    `inputs.artifacts[...]` in a trigger condition over the task's declared inputs, so the
    compiled condition would name an artifact the task does not have. The rewrite points it at
    the declared input; `tests/kubeflow_runner_test.py` checks the result, and that a
    condition on an artifact the task does not consume at all is an error.

    Args:
        pipeline_spec: The `pipelineSpec` dict of the compiled job; changed in place.

    Raises:
        ValueError: If a condition names an artifact the task does not consume at all.
    """
    for name, task in pipeline_spec["root"]["dag"]["tasks"].items():
        condition = task.get("triggerPolicy", {}).get("condition")
        if condition:
            artifacts = task.get("inputs", {}).get("artifacts", {})
            task["triggerPolicy"]["condition"] = _declared_condition(name, condition, artifacts)


STOCK_EXAMPLE_GEN_DRIVER = "tfx.orchestration.kubeflow.v2.file_based_example_gen.driver"
CONTENT_EXAMPLE_GEN_DRIVER = "components.example_gen"


def use_content_fingerprint(pipeline_spec: dict[str, Any]) -> None:
    """Points ExampleGen's pre-cache-check driver at the content-fingerprint one.

    The Kubeflow V2 compiler ignores a component's custom driver and writes TFX's stock
    driver (mtime fingerprints) as the ExampleGen's `preCacheCheck` command
    (tensorflow/tfx#6722); `components.example_gen` is that driver with the content
    fingerprint, so a scheduled run on byte-identical data is cached like a local one.

    Raises:
        ValueError: If no executor runs the stock driver (the compiler changed: look again).
    """
    replaced = 0
    for executor in pipeline_spec["deploymentSpec"]["executors"].values():
        command = executor.get("container", {}).get("lifecycle", {}).get("preCacheCheck", {})
        if command.get("command") == ["python", "-m", STOCK_EXAMPLE_GEN_DRIVER]:
            command["command"] = ["python", "-m", CONTENT_EXAMPLE_GEN_DRIVER]
            replaced += 1
    if replaced != 1:
        raise ValueError(f"expected one ExampleGen pre-cache-check driver, found {replaced}")


def set_parameter_defaults(pipeline_spec: dict[str, Any], defaults: dict[str, str]) -> None:
    """Writes the defaults of the pipeline's run-time parameters into its input definitions.

    TFX puts them only into the PipelineJob's runtime config; with them in the spec, a KFP
    cluster also offers the default and a run may omit the parameter.

    Args:
        pipeline_spec: The `pipelineSpec` dict of the compiled job; changed in place.
        defaults: Parameter name -> default value.
    """
    parameters = pipeline_spec["root"].get("inputDefinitions", {}).get("parameters", {})
    for name, value in defaults.items():
        if name in parameters:
            parameters[name]["defaultValue"] = value
            parameters[name]["isOptional"] = True


def compile_pipeline(config: Config) -> CompiledPipeline:
    """Compiles the pipeline into `kubeflow.output_dir` and returns the written files.

    Args:
        config: The project configuration; its `kubeflow` section says where the pipeline runs.

    Returns:
        The PipelineJob JSON (Vertex AI) and PipelineSpec YAML (KFP v2) paths.
    """
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
            display_name=config.pipeline.name,
            default_image=config.kubeflow.image,
            use_pipeline_spec_2_1=True,
        ),
    )
    defaults = {EXAMPLES_ROOT_PARAMETER: config.kubeflow.examples_root}
    job: dict[str, Any] = runner.run(
        build_pipeline(config), parameter_values=defaults, write_out=False
    )
    link_condition_inputs(job["pipelineSpec"])
    use_content_fingerprint(job["pipelineSpec"])
    set_parameter_defaults(job["pipelineSpec"], defaults)
    # KFP clusters read the root from the spec (Vertex AI from the job's gcsOutputDirectory).
    job["pipelineSpec"]["defaultPipelineRoot"] = config.kubeflow.pipeline_root
    output_dir = Path(config.kubeflow.output_dir).expanduser()
    if not output_dir.is_absolute():
        output_dir = Path(config.paths.root) / output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    compiled = CompiledPipeline(
        job_json=output_dir / f"{config.pipeline.name}.json",
        spec_yaml=output_dir / f"{config.pipeline.name}.yaml",
    )
    compiled.job_json.write_text(json.dumps(job, indent=2, sort_keys=True) + "\n")
    compiled.spec_yaml.write_text(yaml.safe_dump(job["pipelineSpec"], sort_keys=True))
    logger.info("compiled %s and %s", compiled.job_json, compiled.spec_yaml)
    return compiled


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.kubeflow_runner",
        description="Compile the pipeline for Kubeflow Pipelines v2 / Vertex AI. Flags override "
        "the `kubeflow` section of params.yaml.",
    )
    parser.add_argument("--params", default="params.yaml", help="the params file")
    parser.add_argument("--image", help="container image of every component")
    parser.add_argument("--pipeline-root", help="artifact root, e.g. gs://bucket/tfx")
    parser.add_argument("--examples-root", help="default of the examples_root run parameter")
    parser.add_argument("--serving-directory", help="Pusher destination, e.g. gs://...")
    parser.add_argument("--gpus", type=int, help="GPUs of the Trainer (0: CPU only)")
    parser.add_argument("--gpu-type", help="accelerator type, e.g. NVIDIA_TESLA_T4")
    parser.add_argument(
        "--beam-arg",
        action="append",
        dest="beam_args",
        metavar="FLAG",
        help="a cluster Beam flag (repeatable; replaces kubeflow.beam_args)",
    )
    parser.add_argument("--output-dir", help="folder of the compiled specs")
    return parser.parse_args(argv)


def _with_overrides(config: Config, args: argparse.Namespace) -> Config:
    overrides = {
        "image": args.image,
        "pipeline_root": args.pipeline_root,
        "examples_root": args.examples_root,
        "serving_directory": args.serving_directory,
        "gpus": args.gpus,
        "gpu_type": args.gpu_type,
        "beam_args": tuple(args.beam_args) if args.beam_args else None,
        "output_dir": args.output_dir,
    }
    changes = {key: value for key, value in overrides.items() if value is not None}
    return config.replace(kubeflow=dataclasses.replace(config.kubeflow, **changes))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2 on a configuration error)."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    try:
        config = _with_overrides(load_config(args.params), args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        compiled = compile_pipeline(config)
    except WeightsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {compiled.job_json} (Vertex AI PipelineJob)")
    print(f"wrote {compiled.spec_yaml} (KFP v2 pipeline spec)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

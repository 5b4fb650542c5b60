"""PushRecorder: records the Pusher's push in the model registry, inside the pipeline.

Runs right after the Pusher, under the same blessing condition, in every runner. It registers
the version the Pusher wrote (or found already pushed) in `registry.json` next to it
(:func:`cyclegan_tfx.registry.record.record_version`): the evaluation and every gate check, the
baseline it beat, the lineage of this run's artifacts, and the provenance (data version, git
commit, params hash, optimizer strategy) that the runner took when it built the pipeline. A
version already registered is left as it is, so a rerun never records it twice.

Its PushRecord artifact holds `record.json` (the version, whether it was registered now, the
entry) and the same as properties. Being a pipeline node, it is cached like the others, and a
run killed between the Pusher and here is repaired by the next run: the Pusher is a cache hit
and this node, which never completed, records the version.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact, artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils

from components.executor_inputs import pipeline_run_id, single_inputs
from components.gate_reporter import GateReport
from cyclegan_tfx.registry import lineage
from cyclegan_tfx.registry.record import (
    NEWLY_REGISTERED_KEY,
    PUSH_RECORD_FILE,
    PUSH_RECORD_TYPE,
    RECORDED_BY_RUN_KEY,
    RECORDED_VERSION_KEY,
    record_version,
)
from cyclegan_tfx.registry.store import ModelRegistry

logger = logging.getLogger(__name__)

SERVING_DIRECTORY_KEY = "serving_directory"
MODEL_NAME_KEY = "model_name"
PROVENANCE_KEY = "provenance"


class PushRecord(artifact.Artifact):
    """What the PushRecorder registered (`record.json`)."""

    TYPE_NAME = PUSH_RECORD_TYPE


class PushRecorderSpec(types.ComponentSpec):
    """Inputs: the push and what it came from; parameters: where the registry is, provenance."""

    PARAMETERS = {
        SERVING_DIRECTORY_KEY: ExecutionParameter(type=str),
        MODEL_NAME_KEY: ExecutionParameter(type=str),
        PROVENANCE_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        "pushed_model": ChannelParameter(type=standard_artifacts.PushedModel),
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        "evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation),
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "gate_report": ChannelParameter(type=GateReport),
    }
    OUTPUTS = {"push_record": ChannelParameter(type=PushRecord)}


class Executor(base_executor.BaseExecutor):
    """Registers the pushed version unless it is registered (see the module docstring)."""

    def Do(  # noqa: N802 (TFX executor API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Records the push and writes the PushRecord."""
        inputs = single_inputs(input_dict)
        pushed = inputs["pushed_model"]
        run_id = pipeline_run_id(self._context)
        version, newly, entry = "", False, None
        if pushed.get_int_custom_property("pushed") == 1:
            version = pushed.get_string_custom_property("pushed_version")
            registry = ModelRegistry(
                exec_properties[SERVING_DIRECTORY_KEY], exec_properties[MODEL_NAME_KEY]
            )
            push = lineage.lineage_from_artifacts(
                version,
                pushed_model=pushed,
                model=inputs["model"],
                blessing=inputs["model_blessing"],
                evaluation=inputs["evaluation"],
                examples=inputs["examples"],
            )
            provenance = json.loads(exec_properties[PROVENANCE_KEY])
            newly = record_version(registry, push, provenance, run_id)
            entry = registry.entry(version)
        output = artifact_utils.get_single_instance(output_dict["push_record"])
        record = {
            "version": version or None,
            "newly_registered": newly,
            "gate_report": inputs["gate_report"].uri,
            "entry": entry,
        }
        io_utils.write_string_file(
            f"{output.uri}/{PUSH_RECORD_FILE}", json.dumps(record, indent=2) + "\n"
        )
        output.set_string_custom_property(RECORDED_VERSION_KEY, version)
        output.set_int_custom_property(NEWLY_REGISTERED_KEY, int(newly))
        output.set_string_custom_property(RECORDED_BY_RUN_KEY, run_id or "")


class PushRecorder(base_component.BaseComponent):
    """Records the Pusher's push in the registry of its destination (module docstring)."""

    SPEC_CLASS = PushRecorderSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        *,
        pushed_model: types.BaseChannel,
        model: types.BaseChannel,
        model_blessing: types.BaseChannel,
        evaluation: types.BaseChannel,
        examples: types.BaseChannel,
        gate_report: types.BaseChannel,
        serving_directory: str,
        model_name: str,
        provenance: dict[str, Any],
    ) -> None:
        """Wires the recorder after the Pusher.

        Args:
            pushed_model: The Pusher's output.
            model: The Trainer's model.
            model_blessing: The Evaluator's blessing (also the condition it runs under).
            evaluation: The Evaluator's metrics.
            examples: The examples the model was trained and evaluated on.
            gate_report: The GateReporter's report.
            serving_directory: The Pusher's destination, where `registry.json` lives.
            model_name: The model's name in TF Serving (the pipeline name).
            provenance: :func:`cyclegan_tfx.registry.record.run_provenance` of this run.
        """
        super().__init__(
            spec=PushRecorderSpec(
                pushed_model=pushed_model,
                model=model,
                model_blessing=model_blessing,
                evaluation=evaluation,
                examples=examples,
                gate_report=gate_report,
                serving_directory=serving_directory,
                model_name=model_name,
                provenance=json.dumps(provenance, sort_keys=True),
                push_record=types.Channel(type=PushRecord),
            )
        )

"""GateReporter: writes the gate report of every run as an artifact, blessed or not.

After the Evaluator (outside the blessing condition, so an unblessed run has one too), it reads
the evaluation the way `make explain-gate` does (:mod:`cyclegan_tfx.evaluation.gate_report`)
and writes into its GateReport artifact:

- `gate.json`: every check and the decision, as `explain-gate --json` prints it;
- `gate.txt`: the same in words, as `explain-gate` prints it.

A scheduled (Kubeflow / Vertex AI) run has no local reports; this artifact is where its user
reads why the model was or was not blessed. The push itself is in the PushRecorder's record.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact, artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.utils import io_utils

from components.executor_inputs import pipeline_run_id, single_inputs
from cyclegan_tfx.evaluation.gate_report import explain, gate_report
from cyclegan_tfx.mlmd import plain_mlmd_artifact

logger = logging.getLogger(__name__)

GATE_JSON_FILE = "gate.json"
GATE_TEXT_FILE = "gate.txt"
BLESSED_KEY = "blessed"


class GateReport(artifact.Artifact):
    """The gate report of one evaluation (`gate.json`, `gate.txt`)."""

    TYPE_NAME = "cyclegan_tfx.GateReport"  # <namespace>.<Type>, as Kubeflow V2 requires


class GateReporterSpec(types.ComponentSpec):
    """Inputs: the candidate, its evaluation and blessing; output: the report."""

    PARAMETERS: dict[str, Any] = {}
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        "evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation),
    }
    OUTPUTS = {"gate_report": ChannelParameter(type=GateReport)}


class Executor(base_executor.BaseExecutor):
    """Writes `gate.json` and `gate.txt` (see the module docstring)."""

    def Do(  # noqa: N802 (TFX executor API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Builds the report from the input artifacts and writes it."""
        inputs = single_inputs(input_dict)
        report = gate_report(
            {item.type_name: [plain_mlmd_artifact(item)] for item in inputs.values()},
            pipeline_run_id(self._context),
        )
        output = artifact_utils.get_single_instance(output_dict["gate_report"])
        document, text = json.dumps(report.to_dict(), indent=2), explain(report)
        io_utils.write_string_file(f"{output.uri}/{GATE_JSON_FILE}", document + "\n")
        io_utils.write_string_file(f"{output.uri}/{GATE_TEXT_FILE}", text + "\n")
        output.set_int_custom_property(BLESSED_KEY, int(report.blessed))
        logger.info("gate report: %s", text.splitlines()[-1])


class GateReporter(base_component.BaseComponent):
    """Writes the gate report of the Evaluator's verdict (see the module docstring)."""

    SPEC_CLASS = GateReporterSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        model: types.BaseChannel,
        model_blessing: types.BaseChannel,
        evaluation: types.BaseChannel,
    ) -> None:
        """Wires the report to the Trainer's model and the Evaluator's outputs."""
        super().__init__(
            spec=GateReporterSpec(
                model=model,
                model_blessing=model_blessing,
                evaluation=evaluation,
                gate_report=types.Channel(type=GateReport),
            )
        )

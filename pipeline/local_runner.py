"""Runs the pipeline locally with LocalDagRunner (SQLite ML Metadata), then the local-only steps.

The pipeline itself (ExampleGen ... Pusher, PushRecorder) is the one the Kubeflow runner
compiles. What only a local run does comes after it and reads it back from ML Metadata: the
DVC metrics and plots (:mod:`pipeline.reports`) and the `model/` copy of the pushed SavedModel
(dvc.yaml's `artifacts:` entry).

Usage: cyclegan-tfx run [--params params.yaml]   (or python -m pipeline.local_runner)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import logging
import shutil
import sys
from typing import Any

from tfx import v1 as tfx
from tfx.dsl.compiler import compiler, constants
from tfx.dsl.io import fileio
from tfx.orchestration.portable import runtime_parameter_utils

from cyclegan_tfx.cli import drop_unactionable_notices
from cyclegan_tfx.config import Config, load_config
from cyclegan_tfx.evaluation.fid.weights import WeightsError
from cyclegan_tfx.evaluation.gate_report import GateReport, explain
from cyclegan_tfx.model.warm_start import WarmStartError
from cyclegan_tfx.registry import files
from cyclegan_tfx.registry.record import RecordedPush, recorded_push
from cyclegan_tfx.registry.store import RegistryError
from pipeline.experiment_copy import seed_from_workspace
from pipeline.pipeline import create_pipeline
from pipeline.reports import write_reports
from pipeline.run_lock import PipelineRootBusyError, hold_pipeline_root


def run(config: Config) -> str:
    """Runs the whole TFX pipeline once.

    The serving folder is created first: it is a DVC output of the stage even when no model has
    been blessed yet. The run id is chosen here, in LocalDagRunner's format (the start time), so
    that what reads ML Metadata afterwards reads this run, not whichever run is newest.

    Returns:
        The pipeline run id (the name of the run's `pipeline_run` context in ML Metadata).
    """
    fileio.makedirs(config.serving_dir())
    pipeline = create_pipeline(
        config,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(config.paths.metadata_path)
        ),
    )
    # What LocalDagRunner.run does (TFX 1.16: compile; no component has pip dependencies to
    # resolve), with the run id bound before it would bind one.
    ir = compiler.Compiler().compile(pipeline)
    run_id = datetime.datetime.now().isoformat()
    runtime_parameter_utils.substitute_runtime_parameter(
        ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id}
    )
    tfx.orchestration.LocalDagRunner().run_with_ir(ir)
    return run_id


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """What a local run produced.

    Attributes:
        run_id: The pipeline run id (ML Metadata) every report of this outcome describes.
        summary: The evaluation summary of :func:`pipeline.reports.write_reports`.
        report: The gate's checks and decision (:mod:`cyclegan_tfx.evaluation.gate`).
        push: The version the run's blessed model is in serving/<name>/ (and registry.json),
            and whether it was already there; None when the model was not blessed.
    """

    run_id: str
    summary: dict[str, Any]
    report: GateReport
    push: RecordedPush | None


def update_model_artifact(config: Config, push: RecordedPush | None) -> None:
    """Copies the newest pushed SavedModel to `paths.model` (dvc.yaml's `artifacts:` entry).

    The folder keeps the previous model when a run pushed nothing, and exists (empty) before
    the first push, so DVC always has an output to track.
    """
    target = config.paths.resolve("model")
    if push is None:
        target.mkdir(parents=True, exist_ok=True)
        return
    temporary = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    files.copy_folder(f"{config.serving_dir()}/{push.version}", str(temporary))
    shutil.rmtree(target, ignore_errors=True)
    temporary.rename(target)


def run_and_report(config: Config) -> RunOutcome:
    """Runs the pipeline (which records its push), then writes the reports and model artifact.

    The whole of it holds the pipeline root's run lock (:mod:`pipeline.run_lock`), and every
    report describes this run (by its run id). A queued or `--temp` DVC experiment first takes
    a snapshot of the workspace's ML Metadata, so it is gated against the workspace's blessed
    model (:mod:`pipeline.experiment_copy`).

    Raises:
        PipelineRootBusyError: At once, if another run holds the pipeline root.
    """
    with hold_pipeline_root(config.paths.resolve("pipeline_root")):
        seed_from_workspace(config)
        run_id = run(config)
        summary, report = write_reports(config, run_id)
        push = recorded_push(config, run_id)
        update_model_artifact(config, push)
    return RunOutcome(run_id=run_id, summary=summary, report=report, push=push)


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    # force: absl (imported by TFX) has already put a WARNING-level handler on the root logger.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    # TFX/Beam log hundreds of INFO lines per component; the project's own loggers report the
    # progress (training speed and ETA, evaluation, the gate).
    for noisy in ("absl", "apache_beam"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # TFMA's deprecation notices
    drop_unactionable_notices()  # as `cyclegan-tfx run` does (for `python -m` too)
    config = load_config(args.params)
    try:
        outcome = run_and_report(config)
    except (WeightsError, PipelineRootBusyError, WarmStartError) as error:
        sys.exit(f"error: {error}")
    except RegistryError as error:
        sys.exit(
            f"error: the pipeline ran, but its model could not be registered: {error}. "
            "Fix that and run this command again (cached, it only registers)."
        )
    print(explain(outcome.report).splitlines()[-1])
    if outcome.push and outcome.push.already_pushed:
        print(
            f"this model is already pushed as version {outcome.push.version}: nothing new "
            "pushed or registered"
        )
    elif outcome.push:
        print(f"registered version {outcome.push.version}")
    print("every check of the gate: `make explain-gate`")


if __name__ == "__main__":
    main()

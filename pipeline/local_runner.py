"""Runs the pipeline locally with LocalDagRunner (SQLite ML Metadata), then writes DVC reports.

Usage: python -m pipeline.local_runner [--params params.yaml]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

from tfx import v1 as tfx

from cyclegan_tfx.config import Config, load_config
from cyclegan_tfx.registry.store import RegistryError
from pipeline.explain_gate import explain
from pipeline.gate import GateReport
from pipeline.pipeline import create_pipeline, serving_base_directory
from pipeline.registry import RecordedPush, record_push
from pipeline.reports import write_reports


def run(config: Config) -> None:
    """Runs the whole TFX pipeline once.

    The serving folder is created first: it is a DVC output of the stage even when no model has
    been blessed yet.
    """
    Path(serving_base_directory(config)).mkdir(parents=True, exist_ok=True)
    tfx.orchestration.LocalDagRunner().run(
        create_pipeline(
            config,
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                str(config.paths.metadata_path)
            ),
        )
    )


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """What a local run produced.

    Attributes:
        summary: The evaluation summary of :func:`pipeline.reports.write_reports`.
        report: The gate's checks and decision (:mod:`pipeline.gate`).
        push: The version the run's blessed model is in serving/<name>/ (and registry.json),
            and whether it was already there; None when the model was not blessed.
    """

    summary: dict[str, Any]
    report: GateReport
    push: RecordedPush | None


def run_and_report(config: Config) -> RunOutcome:
    """Runs the pipeline, writes the DVC reports and registers a pushed model."""
    run(config)
    summary, report = write_reports(config)
    return RunOutcome(summary=summary, report=report, push=record_push(config))


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    # force: absl (imported by TFX) has already put a WARNING-level handler on the root logger.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    config = load_config(args.params)
    try:
        outcome = run_and_report(config)
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

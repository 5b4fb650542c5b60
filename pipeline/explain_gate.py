"""Explains the gate of a pipeline run: why the model was (not) pushed.

Usage: python -m pipeline.explain_gate [--params params.yaml] [--run-id ID] [--json]
       (or `make explain-gate`)

Reads the run `--run-id` (default: the newest run) from ML Metadata (the Evaluator's stored
EvalConfig, metrics and TFMA ValidationResult, and the ModelBlessing) and prints one row per
check (metric, check, candidate ± spread, what it is compared with, threshold, pass/FAIL; see
:mod:`cyclegan_tfx.evaluation.gate`), then the backbone, N and the decision. `--json` prints
the same as JSON (as `make run` writes it to reports/gate.json).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from cyclegan_tfx.config import ConfigError, load_config
from cyclegan_tfx.evaluation.gate import MixedBackbonesError
from cyclegan_tfx.evaluation.gate_report import explain, gate_report
from cyclegan_tfx.mlmd import MetadataError, run_artifacts, run_name


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--params", default="params.yaml", help="params file (default: %(default)s)"
    )
    parser.add_argument("--run-id", help="the pipeline run (default: the newest)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    # TFMA's metrics loader calls the deprecated tf_record_iterator; the notice is TFMA's to fix.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        config = load_config(args.params)
        run_id = run_name(config.paths.metadata_path, config.pipeline.name, args.run_id)
        artifacts = run_artifacts(config.paths.metadata_path, config.pipeline.name, run_id)
        report = gate_report(artifacts, run_id)
    except (ConfigError, MetadataError, MixedBackbonesError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if report.evaluation_uri is None:
        print(
            f"error: pipeline run {run_id} has no evaluation (did the Evaluator fail?); see "
            "the pipeline's log",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(explain(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

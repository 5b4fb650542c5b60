"""Runs the pipeline locally with LocalDagRunner (SQLite ML Metadata), then writes DVC reports.

Usage: python -m pipeline.local_runner [--params params.yaml]
"""

from __future__ import annotations

import argparse
import logging

from tfx import v1 as tfx

from cyclegan_tfx.config import Config, load_config
from pipeline.pipeline import create_pipeline
from pipeline.reports import write_reports


def run(config: Config) -> None:
    """Runs the whole TFX pipeline once."""
    tfx.orchestration.LocalDagRunner().run(
        create_pipeline(
            config,
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                str(config.paths.metadata_path)
            ),
        )
    )


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
    run(config)
    summary = write_reports(config)
    verdict = "BLESSED and pushed" if summary["blessed"] else "NOT blessed, not pushed"
    print(
        f"FID a2b {summary['fid_a2b']:.2f}  b2a {summary['fid_b2a']:.2f}  "
        f"(backbone {summary['backbone']}): {verdict}"
    )


if __name__ == "__main__":
    main()

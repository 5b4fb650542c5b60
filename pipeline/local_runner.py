"""Runs the pipeline locally with LocalDagRunner (SQLite ML Metadata), then writes reports.

Usage: python -m pipeline.local_runner [--params params.yaml]
"""

from __future__ import annotations

import argparse
import logging

from tfx import v1 as tfx

from cyclegan_tfx.config import Config, load_config
from pipeline.pipeline import create_pipeline


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
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run(load_config(args.params))


if __name__ == "__main__":
    main()

"""CLI: `python -m cyclegan_tfx.data.preprocess [--params params.yaml] [Beam pipeline flags]`.

Reads images from `paths.data` (CycleGAN layout), writes TFRecords to `paths.preprocessed`,
`rejects.csv` / `duplicates.csv` to `paths.reports` and `preprocess.json` to `paths.metrics`;
`--data`, `--output`, `--reports` and `--metrics` replace those (the study's second dataset).
Every argument other than `--params` is a Beam pipeline option (e.g. `--runner=FlinkRunner
--flink_master=...`); the defaults are `pipeline.beam_args` of params.yaml, then the
DirectRunner. Exit status 2 means a configuration or dataset-layout error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from cyclegan_tfx.config import DEFAULT_PARAMS_FILE, ConfigError, load_config
from cyclegan_tfx.data.preprocess import beam_pipeline

METRICS_FILE = "preprocess.json"

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the preprocessing job.

    Args:
        argv: Command-line arguments without the program name (default: `sys.argv[1:]`).

    Returns:
        The exit status: 0 on success, 2 on a configuration or dataset-layout error.
    """
    parser = argparse.ArgumentParser(
        prog="python -m cyclegan_tfx.data.preprocess",
        description="Validate, deduplicate, resize and shard the CycleGAN dataset (Apache Beam).",
        epilog="Unrecognised arguments are passed to Beam's PipelineOptions.",
    )
    parser.add_argument("--params", default=DEFAULT_PARAMS_FILE, help="params.yaml to use")
    parser.add_argument("--data", help="dataset root (default: paths.data)")
    parser.add_argument("--output", help="TFRecords folder (default: paths.preprocessed)")
    parser.add_argument("--reports", help="folder of rejects.csv, duplicates.csv (paths.reports)")
    parser.add_argument("--metrics", help=f"metrics file (paths.metrics/{METRICS_FILE})")
    args, beam_args = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Beam logs one INFO line per string annotation of a DoFn method; they are noise here.
    logging.getLogger("apache_beam.typehints.native_type_compatibility").setLevel(logging.WARNING)

    try:
        config = load_config(args.params)
        paths = config.paths
        data_dir = args.data or str(paths.resolve("data"))
        output_dir = args.output or str(paths.resolve("preprocessed"))
        reports_dir = args.reports or str(paths.resolve("reports"))
        metrics_path = args.metrics or str(paths.resolve("metrics") / METRICS_FILE)
        options = PipelineOptions([*config.pipeline.beam_args, *beam_args])
        standard = options.view_as(StandardOptions)
        standard.runner = standard.runner or "DirectRunner"
        pipeline = beam.Pipeline(options=options)
        beam_pipeline.build_pipeline(
            pipeline, data_dir, output_dir, reports_dir, metrics_path, config.preprocess
        )
    except (ConfigError, beam_pipeline.DatasetLayoutError) as error:
        print("error: " + " ".join(str(error).split()), file=sys.stderr)
        return 2

    beam_pipeline.delete_stale_shards(output_dir)
    beam_pipeline.run_to_completion(pipeline)

    with FileSystems.open(metrics_path) as f:
        metrics = json.loads(f.read())
    examples = " ".join(f"{name}={count}" for name, count in metrics["examples"].items())
    paired = " ".join(f"{name}={count}" for name, count in metrics["paired"].items() if count)
    print(
        f"preprocess: {metrics['examples_total']} examples ({examples}"
        + (f"; with ground truth {paired}" if paired else "")
        + "), "
        f"{metrics['rejected']} rejected, {metrics['duplicates']} duplicates; "
        f"TFRecords in {output_dir}, reports in {reports_dir}, metrics in {metrics_path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

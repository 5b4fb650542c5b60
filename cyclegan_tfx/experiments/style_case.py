"""`make style-case`: the default model on the colour-grade dataset, against colour transfer.

The sample task of `make run` (rings) changes structure; the colour-grade dataset
(`data_grade/`, domain B a "winter" grade of A) is the style case, where a colour filter is at
its strongest. This trains params.yaml's `model` and `train` on it, as they are or changed by
`--set` (the same training code as the Trainer, outside the pipeline), and scores the
generators on its test split with the gate's measures: MAE / PSNR / SSIM against the ground
truth and FID, for the model, doing nothing and the colour-transfer baseline. Writes
`reports/style_case.md` and `.json` (`--report` names them otherwise).

Usage: cyclegan-tfx style-case [--params params.yaml] [--set model.unet_downsamplings=2 ...]
       [--report style_case_shallow]
       (`make style-case` preprocesses first; `--set` changes params.yaml's values for this run,
       as `dvc exp run -S`, and the report names them; `--report` names the report's files)
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import platform
import sys
from collections.abc import Sequence
from typing import Any

from cyclegan_tfx.config import DIRECTIONS, Config, ConfigError, load_config
from cyclegan_tfx.evaluation.fid.weights import WeightsError
from cyclegan_tfx.evaluation.metric_keys import KEYS
from cyclegan_tfx.evaluation.scorer import TestSetScorer
from cyclegan_tfx.experiments.compare import train_and_score, write_report

logger = logging.getLogger(__name__)

REPORT_STEM = "style_case"
ROWS = (("model", ""), ("doing nothing", "_identity"), ("colour transfer", "_colour_transfer"))


def grade_config(config: Config) -> Config:
    """The configuration trained on the colour-grade dataset's TFRecords."""
    paths = dataclasses.replace(config.paths, preprocessed=config.paths.preprocessed_grade)
    return config.replace(paths=paths)


def measure(config: Config, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Trains and scores (see the module docstring); `overrides` are recorded as given."""
    config = grade_config(config)
    scorer = TestSetScorer.from_config(config)
    result = train_and_score(config, scorer)
    return {
        "scores": result["final"],
        "steps": result["steps"],
        "wall_seconds": round(result["wall_seconds"], 1),
        "backbone": scorer.backbone.name,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "overrides": list(overrides),
    }


def markdown(result: dict[str, Any]) -> str:
    """The report: per direction, the model, doing nothing and colour transfer."""
    scores = result["scores"]
    changed = result.get("overrides") or []
    what = "params.yaml's model" + (f" with {', '.join(changed)}" if changed else "")
    lines = [
        "# The style case: the default model on the colour-grade dataset",
        "",
        f"{what} trained {result['steps']} steps on `data_grade/` "
        f"({result['wall_seconds']:.0f} s on {result['machine']}); scored on its 200 + 200 "
        f"test images against the ground truth, FID with `{result['backbone']}`.",
        "",
        "| direction | method | MAE | PSNR | SSIM | FID |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for direction in DIRECTIONS:
        keys = KEYS[direction]
        for label, suffix in ROWS:
            mae, psnr, ssim = (scores.get(keys.paired(m, suffix)) for m in ("mae", "psnr", "ssim"))
            fid = scores.get(f"{keys.fid}{suffix}")
            cells = [f"{v:.2f}" if v is not None else "-" for v in (mae, psnr)]
            cells += [f"{ssim:.3f}" if ssim is not None else "-"]
            cells += [f"{fid:.1f}" if fid is not None else "-"]
            lines.append(f"| {direction} | {label} | " + " | ".join(cells) + " |")
    beats = all(
        scores[KEYS[d].paired("mae")] < scores[KEYS[d].paired("mae", "_colour_transfer")]
        for d in DIRECTIONS
    )
    verdict = "below" if beats else "NOT below"
    lines += ["", f"The model's MAE is {verdict} colour transfer's in both directions."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; 2 on a configuration, data or weights error."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a params.yaml value for this run, e.g. model.unet_downsamplings=2",
    )
    parser.add_argument("--report", default=REPORT_STEM, help="reports/<REPORT>.md and .json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.params, overrides=args.set)
        result = measure(config, args.set)
    except (ConfigError, FileNotFoundError, WeightsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = markdown(result)
    write_report(config.paths.resolve("reports"), args.report, result, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

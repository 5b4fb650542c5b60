"""Does FID follow translation quality? Measured by `make fid-agreement`.

Trains the configured model once (the same code as the TFX Trainer, outside the pipeline) and
scores both directions on the test split at every `--eval-every` epochs, from the first steps to
the end: FID and KID with the gate's backbone, and MAE / PSNR / SSIM against the ground truth.
Over those checkpoints it reports the Spearman rank correlation of each unpaired metric with each
paired one, per direction and pooled, oriented so that +1 means "ranks the checkpoints exactly as
the ground truth does" (for PSNR and SSIM, higher is better, so their sign is flipped).

The checkpoints are also scored with random features (the fallback backbone: the same
InceptionV3 with seeded random weights), so the report answers whether the standard network's
features follow the ground truth better than random ones do. This is the evidence for trusting
FID where no ground truth exists. Writes `reports/fid_agreement.md` and `.json`.

Usage: python -m cyclegan_tfx.experiments.agreement [--params params.yaml] [--epochs E]
       [--eval-every K]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scipy import stats

from cyclegan_tfx.config import DIRECTIONS, Config, ConfigError, load_config
from cyclegan_tfx.evaluation.fid.backbone import fallback_backbone
from cyclegan_tfx.evaluation.fid.weights import WeightsError
from cyclegan_tfx.evaluation.metric_keys import HIGHER_IS_BETTER, KEYS, PAIRED_METRICS
from cyclegan_tfx.evaluation.scorer import TestSetScorer, preprocessed_files
from cyclegan_tfx.experiments.compare import write_report
from cyclegan_tfx.model import data
from cyclegan_tfx.model.cyclegan import CycleGAN
from cyclegan_tfx.model.train import RunFolders, steps_per_epoch, train_and_export

logger = logging.getLogger(__name__)

REPORT_STEM = "fid_agreement"
REPORT_MD, REPORT_JSON = f"{REPORT_STEM}.md", f"{REPORT_STEM}.json"
UNPAIRED = ("fid", "kid")
RANDOM_PREFIX = "random_"


def rank_agreement(unpaired: list[float], paired_values: list[float], paired_metric: str) -> float:
    """Spearman correlation, oriented: +1 when both rank the checkpoints the same way."""
    rho = stats.spearmanr(unpaired, paired_values).statistic
    return float(-rho if paired_metric in HIGHER_IS_BETTER else rho)


def agreement_table(curve: list[dict[str, float]], prefix: str = "") -> dict[str, dict[str, float]]:
    """{"a2b"|"b2a"|"pooled": {"fid~mae": rho, ...}} over the checkpoints of `curve`.

    `prefix` selects another backbone's FID/KID in the points (e.g. "random_").
    """
    table: dict[str, dict[str, float]] = {}
    for scope in (*DIRECTIONS, "pooled"):
        directions = DIRECTIONS if scope == "pooled" else (scope,)
        row = {}
        for unpaired in UNPAIRED:
            for metric in PAIRED_METRICS:
                xs = [point[f"{prefix}{unpaired}_{d}"] for d in directions for point in curve]
                ys = [point[KEYS[d].paired(metric)] for d in directions for point in curve]
                row[f"{unpaired}~{metric}"] = rank_agreement(xs, ys, metric)
        table[scope] = row
    return table


def measure(config: Config, epochs: float, eval_every_epochs: float) -> dict[str, Any]:
    """Trains once and scores the checkpoints (see the module docstring)."""
    train_files, _ = preprocessed_files(config)
    scorer = TestSetScorer.from_config(config)
    backbone = config.evaluate.backbone
    random = None
    if scorer.backbone.is_standard:
        random = TestSetScorer.from_config(config, fallback_backbone(backbone.fallback_seed))
    if not scorer.has_ground_truth:
        raise ValueError(
            "the test split has no ground truth (testA_truthB/, testB_truthA/): the agreement "
            "with paired metrics cannot be measured on this dataset"
        )
    per_epoch = steps_per_epoch(data.count_domains(train_files), config.train.batch_size)
    eval_every = max(1, round(eval_every_epochs * per_epoch))
    schedule = dataclasses.replace(
        config.train.schedule, decay_epochs=min(config.train.schedule.decay_epochs, epochs)
    )
    train = dataclasses.replace(config.train, epochs=epochs, schedule=schedule)
    curve: list[dict[str, float]] = []

    def monitor(done: int, cyclegan: CycleGAN) -> None:
        if done % eval_every == 0 or done == 1:
            nets = cyclegan.networks
            generators = {"a2b": nets.generator_ab, "b2a": nets.generator_ba}
            scores = scorer.scores(generators)
            if random is not None:
                scores |= {
                    f"{RANDOM_PREFIX}{key}": value
                    for key, value in random.scores(generators).items()
                    if key.startswith(UNPAIRED)
                }
            curve.append({"step": done, "epoch": done / per_epoch, **scores})
            logger.info("step %d: %s", done, curve[-1])

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        train_and_export(
            train_files,
            config.model,
            train,
            config.preprocess.image_size,
            config.seed,
            RunFolders.choose(Path(scratch) / "run"),
            export_dir=None,  # scored in memory during training; nothing is served
            on_step=monitor,
        )
    return {
        "epochs": epochs,
        "checkpoints": len(curve),
        "backbone": scorer.backbone.name,
        "num_test": {d: len(s["images"]) for d, s in scorer.split.items()},
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "agreement": agreement_table(curve),
        "random_backbone": random.backbone.name if random else None,
        "agreement_random": agreement_table(curve, RANDOM_PREFIX) if random else None,
        "curve": curve,
    }


def markdown(result: dict[str, Any]) -> str:
    """The report as Markdown (tables of rank correlations and the curve)."""
    pairs = [f"{u}~{m}" for u in UNPAIRED for m in PAIRED_METRICS]
    lines = [
        f"Rank agreement of FID/KID (backbone `{result['backbone']}`) with the ground-truth "
        f"metrics over {result['checkpoints']} checkpoints of one training run "
        f"({result['epochs']:g} epochs; test images {result['num_test']}); Spearman's rho "
        "oriented so that +1 = same ranking as the ground truth.",
        "",
        "| scope | " + " | ".join(pairs) + " |",
        "| --- | " + " | ".join("---:" for _ in pairs) + " |",
    ]
    for scope, row in result["agreement"].items():
        lines.append(f"| {scope} | " + " | ".join(f"{row[p]:+.2f}" for p in pairs) + " |")
    if result.get("agreement_random"):
        lines += [
            "",
            f"The same checkpoints with random features (`{result['random_backbone']}`):",
            "",
            "| scope | " + " | ".join(pairs) + " |",
            "| --- | " + " | ".join("---:" for _ in pairs) + " |",
        ]
        for scope, row in result["agreement_random"].items():
            lines.append(f"| {scope} | " + " | ".join(f"{row[p]:+.2f}" for p in pairs) + " |")
    lines += [
        "",
        "| epoch | direction | FID | KID | MAE | PSNR | SSIM |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for point in result["curve"]:
        for d in DIRECTIONS:
            keys = KEYS[d]
            lines.append(
                f"| {point['epoch']:.2f} | {d} | {point[keys.fid]:.2f} | {point[keys.kid]:.4f} | "
                f"{point[keys.paired('mae')]:.2f} | {point[keys.paired('psnr')]:.2f} | "
                f"{point[keys.paired('ssim')]:.3f} |"
            )
    lines += ["", f"Wall time {result['wall_seconds']:.0f} s on {result['machine']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2 on a configuration or data error)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--epochs", type=float, default=None, help="default: train.epochs")
    parser.add_argument("--eval-every", type=float, default=2.0, help="epochs between scores")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.params)
        epochs = config.train.epochs if args.epochs is None else args.epochs
        result = measure(config, epochs, args.eval_every)
    except (ConfigError, FileNotFoundError, ValueError, WeightsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = markdown(result)
    write_report(config.paths.resolve("reports"), REPORT_STEM, result, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

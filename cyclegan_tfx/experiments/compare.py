"""Compare optimizer strategies on the same data, seed and budget (`make compare`).

For each strategy it trains the CycleGAN (same code as the TFX Trainer, outside the pipeline),
measures FID both ways on the test split every `--eval-every` epochs with the gate's backbone,
and reports final FID, KID, wall time and final losses:

- `reports/optimizer_comparison.md` (table) and `.json`,
- `reports/fid_over_training.tsv` (one column per strategy and direction), drawn by the DVC
  plot "FID over training per optimizer strategy" (`dvc plots show`).

Usage: python -m cyclegan_tfx.experiments.compare [--params params.yaml] [--epochs 10]
       [--eval-every 2] [--strategies independent joint ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tensorflow as tf

from cyclegan_tfx.config import DIRECTIONS, NETWORK_NAMES, Config, ConfigError, load_config
from cyclegan_tfx.evaluation.metric_keys import KEYS
from cyclegan_tfx.evaluation.scorer import TestSetScorer, preprocessed_files
from cyclegan_tfx.model import data
from cyclegan_tfx.model.cyclegan import CycleGAN
from cyclegan_tfx.model.optimizer_strategies import OptimizerStrategy
from cyclegan_tfx.model.train import (
    RunFolders,
    serving_generators,
    steps_per_epoch,
    train_and_export,
)

logger = logging.getLogger(__name__)

STRATEGIES = tuple(strategy.value for strategy in OptimizerStrategy)
REPORT_MD = "optimizer_comparison.md"
REPORT_JSON = "optimizer_comparison.json"
CURVE_TSV = "fid_over_training.tsv"
"""One column per strategy and direction; dvc.yaml draws it (`dvc plots show`)."""


def write_report(folder: Path, stem: str, result: dict[str, Any], text: str) -> None:
    """Writes `<stem>.json` (the result) and `<stem>.md` (its text) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (folder / f"{stem}.md").write_text(text)


def _strategy_config(config: Config, strategy: str, epochs: float) -> Config:
    optimizer = dataclasses.replace(config.train.optimizer, strategy=OptimizerStrategy(strategy))
    schedule = dataclasses.replace(
        config.train.schedule, decay_epochs=min(config.train.schedule.decay_epochs, epochs)
    )
    train = dataclasses.replace(config.train, optimizer=optimizer, epochs=epochs, schedule=schedule)
    return config.replace(train=train)


def train_and_score(
    config: Config,
    test_set: TestSetScorer,
    eval_every_steps: int | None = None,
    curve_distances: bool = True,
) -> dict[str, Any]:
    """Trains one configuration outside the pipeline and scores it on the test split.

    Args:
        config: The run's configuration (seed, model, train).
        test_set: Scores the generators (FID/KID both ways, paired scores if any).
        eval_every_steps: Also score every this many steps (the curve); None: at the end only.
        curve_distances: FID/KID at every point of the curve too; False: the paired scores
            only (much cheaper), FID/KID in `final` alone.

    Returns:
        {"steps", "wall_seconds", "final_losses", "final": every score at the last step,
        "curve": the scores at every evaluation, the same fields at every point (a DVC plot
        ignores a list whose points differ)}.
    """
    train_files, _ = preprocessed_files(config)
    curve: list[dict[str, float]] = []
    scored_last: dict[str, float] = {}

    def monitor(done: int, cyclegan: CycleGAN) -> None:
        last = done == cyclegan.timeline.total_steps
        if last or (eval_every_steps and done % eval_every_steps == 0):
            # What would be exported and served (float32 even after bfloat16 training).
            ab, ba = serving_generators(cyclegan, config.model, config.preprocess.image_size)
            scores = test_set.scores({"a2b": ab, "b2a": ba}, distances=last or curve_distances)
            point = {"step": done, **scores}
            logger.info("step %d: %s", done, point)
            if last:
                scored_last.update(point)
                if curve:
                    point = {key: point[key] for key in curve[0]}
            curve.append(point)

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        result = train_and_export(
            train_files,
            config.model,
            config.train,
            config.preprocess.image_size,
            config.seed,
            RunFolders.choose(Path(scratch) / "run"),
            export_dir=None,  # scored in memory above; nothing is served
            on_step=monitor,
        )
    final = scored_last if scored_last.get("step") == result.steps else None
    return {
        "steps": result.steps,
        "wall_seconds": time.monotonic() - started,
        "final_losses": {k: result.final_losses[k] for k in sorted(result.final_losses)},
        "final": final,
        "curve": curve,
    }


def compare(
    config: Config, strategies: list[str], epochs: float, eval_every_epochs: float
) -> dict[str, Any]:
    """Trains every strategy and returns the curves and final scores."""
    train_files, _ = preprocessed_files(config)
    test_set = TestSetScorer.from_config(config)
    per_epoch = steps_per_epoch(data.count_domains(train_files), config.train.batch_size)
    eval_every = max(1, round(eval_every_epochs * per_epoch))
    results: dict[str, Any] = {"epochs": epochs, "steps_per_epoch": per_epoch, "runs": {}}
    for strategy in strategies:
        logger.info("training with strategy %s", strategy)
        run_config = _strategy_config(config, strategy, epochs)
        results["runs"][strategy] = train_and_score(run_config, test_set, eval_every)
    results["backbone"] = test_set.backbone.name
    return results


def _markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Budget: {results['epochs']:g} epochs x {results['steps_per_epoch']} steps, same seed "
        f"and data for every strategy; FID/KID on the test split with backbone "
        f"`{results['backbone']}` (not comparable with published FIDs).",
        "",
        "| strategy | FID A→B | FID B→A | KID A→B | KID B→A | wall time (s) | final losses "
        "G_AB / G_BA / D_A / D_B |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for strategy, run in results["runs"].items():
        final, losses = run["final"] or {}, run["final_losses"]
        losses_text = " / ".join(f"{losses[n]:.3f}" for n in NETWORK_NAMES)
        fids = " | ".join(f"{final.get(KEYS[d].fid, float('nan')):.2f}" for d in DIRECTIONS)
        kids = " | ".join(f"{final.get(KEYS[d].kid, float('nan')):.4f}" for d in DIRECTIONS)
        lines.append(
            f"| {strategy} | {fids} | {kids} | {run['wall_seconds']:.0f} | {losses_text} |"
        )
    return "\n".join(lines) + "\n"


def _curve_table(results: dict[str, Any]) -> tuple[list[str], list[list[float]]]:
    columns = ["step"] + [
        f"{KEYS[direction].fid}_{strategy}"
        for strategy in results["runs"]
        for direction in DIRECTIONS
    ]
    steps = sorted({p["step"] for run in results["runs"].values() for p in run["curve"]})
    rows = []
    for step in steps:
        row = [float(step)]
        for strategy in results["runs"]:
            point = next((p for p in results["runs"][strategy]["curve"] if p["step"] == step), {})
            row += [point.get(KEYS[d].fid, float("nan")) for d in DIRECTIONS]
        rows.append(row)
    return columns, rows


def write_reports(results: dict[str, Any], out_dir: Path) -> None:
    """Writes the table, the JSON and the FID curves."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REPORT_MD).write_text("# Optimizer strategies compared\n\n" + _markdown(results))
    (out_dir / REPORT_JSON).write_text(json.dumps(results, indent=2) + "\n")
    columns, rows = _curve_table(results)
    tsv = ["\t".join(columns)] + ["\t".join(f"{v:.6g}" for v in row) for row in rows]
    (out_dir / CURVE_TSV).write_text("\n".join(tsv) + "\n")


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--epochs", type=float, default=10.0, help="budget per strategy")
    parser.add_argument("--eval-every", type=float, default=2.0, help="epochs between FIDs")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_config(args.params)
        results = compare(config, args.strategies, args.epochs, args.eval_every)
    except (ConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out_dir = config.paths.resolve("reports")
    write_reports(results, out_dir)
    print(_markdown(results))
    print(f"reports in {out_dir}")
    return 0


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    sys.exit(main())

"""Does bfloat16 mixed precision keep translation quality? (issue 11: the default's evidence)

Trains the params.yaml configuration on the preprocessed data (`make run` or `dvc repro
preprocess` first) with float32 and with `train.mixed_precision: true`, for several seeds at
the same budget, scores each final model on the test split (paired ground-truth MAE/PSNR/SSIM,
FID and KID both ways, the gate's backbone), and prints mean ± 95 % interval over seeds, the
paired difference bfloat16 - float32 per seed, and the wall time. Writes
`reports/bf16_quality.md` and `.json`.

Usage: .venv/bin/python bench/bf16_quality.py [--seeds 0 1 2] [--epochs 40]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import platform
import subprocess
import time
from pathlib import Path

import tensorflow as tf

from cyclegan_tfx.config import DIRECTIONS, load_config
from cyclegan_tfx.evaluation.metric_keys import KEYS
from cyclegan_tfx.evaluation.scorer import TestSetScorer
from cyclegan_tfx.experiments.compare import train_and_score
from cyclegan_tfx.experiments.intervals import mean_interval, paired_difference

PRECISIONS = {"float32": False, "bfloat16": True}
HIGHER_IS_BETTER = {"psnr", "ssim"}


def _metrics(has_truth: bool) -> list[tuple[str, str]]:
    """(label, score key) of every reported measure."""
    found = []
    for direction in DIRECTIONS:
        keys = KEYS[direction]
        if has_truth:
            found += [(f"{m.upper()} {direction}", keys.paired(m)) for m in ("mae", "psnr", "ssim")]
        found += [(f"FID {direction}", keys.fid), (f"KID {direction}", keys.kid)]
    return found


def _commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    commit = result.stdout.strip() or "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{commit} with uncommitted changes" if dirty else commit


def run(params: str, seeds: list[int], epochs: float | None) -> dict:
    config = load_config(params)
    test_set = TestSetScorer.from_config(config)
    runs: dict[str, dict[int, dict]] = {name: {} for name in PRECISIONS}
    for seed in seeds:
        for name, mixed in PRECISIONS.items():
            train = dataclasses.replace(
                config.train,
                mixed_precision=mixed,
                epochs=epochs if epochs is not None else config.train.epochs,
            )
            logging.info("training seed %d in %s", seed, name)
            result = train_and_score(config.replace(seed=seed, train=train), test_set)
            runs[name][seed] = {"wall_seconds": result["wall_seconds"], **result["final"]}
            logging.info("%s seed %d: %s", name, seed, runs[name][seed])
    return {
        "params": params,
        "seeds": seeds,
        "epochs": epochs if epochs is not None else config.train.epochs,
        "backbone": test_set.backbone.name,
        "has_ground_truth": test_set.has_ground_truth,
        "machine": f"{platform.processor() or platform.machine()}, {_cpus()} CPUs",
        "commit": _commit(),
        "runs": runs,
    }


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def markdown(results: dict) -> str:
    seeds = results["seeds"]
    runs = results["runs"]
    lines = [
        "# bfloat16 mixed precision vs float32: translation quality",
        "",
        f"Same data, params.yaml configuration, {results['epochs']:g} epochs, seeds {seeds}; "
        f"scores of the final model on the test split (FID/KID: backbone "
        f"`{results['backbone']}`). Mean ± 95 % t-interval over seeds; the difference is "
        "bfloat16 - float32 paired by seed, **bold** where its interval excludes 0.",
        f"Machine: {results['machine']}; commit {results['commit']}; "
        f"total wall time {results.get('total_wall_seconds', float('nan')) / 60:.0f} min.",
        "",
        "| measure | float32 | bfloat16 | difference | better |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    measures = [*_metrics(results["has_ground_truth"]), ("wall time (s)", "wall_seconds")]
    for label, key in measures:
        f32 = [runs["float32"][s][key] for s in seeds]
        b16 = [runs["bfloat16"][s][key] for s in seeds]
        diff = paired_difference(b16, f32)
        text = diff.format()
        if diff.excludes_zero():
            text = f"**{text}**"
        metric = label.split()[0].lower()
        if key == "wall_seconds":
            better = "bfloat16" if diff.high < 0 else "float32" if diff.low > 0 else "-"
        elif not diff.excludes_zero():
            better = "no difference beyond seed noise"
        else:
            up = metric in HIGHER_IS_BETTER
            better = "bfloat16" if (diff.mean > 0) == up else "float32"
        lines.append(
            f"| {label} | {mean_interval(f32).format()} | {mean_interval(b16).format()} | "
            f"{text} | {better} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=float, default=None, help="default: params.yaml")
    parser.add_argument("--out", default="reports")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    tf.get_logger().setLevel("ERROR")
    started = time.monotonic()
    results = run(args.params, args.seeds, args.epochs)
    results["total_wall_seconds"] = time.monotonic() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bf16_quality.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    (out / "bf16_quality.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

"""How the cost of preprocessing, evaluation and training grows (`make bench-scale`).

On a synthetic dataset it writes (random smooth 96 px PNGs, CycleGAN layout), prints:

1. Preprocessing images/s at two dataset sizes on the embedded runner (what `make run` uses)
   and on a dask.distributed cluster started here (scheduler + 1 or 2 worker processes on
   127.0.0.1, the same DaskRunner flags a remote cluster takes).
2. The Evaluator's metric (TFMA `run_model_analysis` with the project's EvalConfig on an
   exported, untrained generator at the params.yaml size) at two test-split sizes: wall time
   and the peak RSS of the process that ran it (a fresh process per size, so the peaks do not
   mix), with a cold and a warm feature cache; and the peak RSS of the metric's combiner alone
   (no TFMA or Beam; a cheap stand-in backbone) at 1x and 3x the larger test split.
3. Training-step throughput: GFLOP per step counted by TensorFlow's profiler from the step
   graph's op shapes (forward and backward), achieved GFLOP/s in float32 and bfloat16, next to
   the machine's measured matmul GFLOP/s, for the params.yaml network and the paper's.

Over 400 lines on purpose: one benchmark script a user runs and reads top to bottom; its three
parts share the synthetic dataset, the subprocess helpers and the printed table.

Usage: .venv/bin/python bench/scale.py [--sizes 400 4000] [--skip preprocess evaluate train]
    [--backbones standard fallback]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
SOURCE_SIZE = 96
LAYOUT = ("trainA", "trainB", "testA", "testB")


def write_dataset(root: Path, total: int, seed: int = 0) -> Path:
    """`total` PNGs split evenly over the four layout folders (smooth random colour fields)."""
    rng = np.random.default_rng(seed)
    coarse = 6
    for folder in LAYOUT:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for index in range(total // len(LAYOUT)):
            grid = rng.uniform(0, 255, (coarse, coarse, 3)).astype(np.uint8)
            image = Image.fromarray(grid).resize((SOURCE_SIZE, SOURCE_SIZE), Image.BILINEAR)
            noise = rng.integers(0, 12, (SOURCE_SIZE, SOURCE_SIZE, 3), dtype=np.uint8)
            pixels = np.clip(np.asarray(image, np.int16) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / folder / f"{index:05d}.png")
    return root


# --- 1. preprocessing --------------------------------------------------------------------


def _preprocess(data_dir: Path, out: Path, args: list[str], image_size: int) -> float:
    from cyclegan_tfx.config import PreprocessConfig
    from cyclegan_tfx.data.preprocess.beam_pipeline import run_preprocessing

    config = PreprocessConfig(image_size=image_size, num_shards=2, extensions=(".png",))
    started = time.perf_counter()
    run_preprocessing(str(data_dir), str(out), config, args)
    return time.perf_counter() - started


def bench_preprocess(datasets: dict[int, Path], work: Path, image_size: int) -> list[dict]:
    import distributed

    logging.getLogger("distributed").setLevel(logging.CRITICAL)  # shutdown chatter

    rows = []
    warm_up = min(datasets)  # the first run of a process or cluster pays imports: not timed
    _preprocess(datasets[warm_up], work / "warm-up-embedded", [], image_size)
    for total, data_dir in datasets.items():
        seconds = _preprocess(data_dir, work / f"embedded-{total}", [], image_size)
        rows.append({"runner": "embedded (FnApiRunner)", "images": total, "seconds": seconds})
    for workers in (1, 2):
        with (
            distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,
            distributed.Client(cluster),
        ):
            args = [
                f"--runner={DASK_RUNNER}",
                f"--dask_client_address={cluster.scheduler_address}",
            ]
            _preprocess(datasets[warm_up], work / f"warm-up-dask{workers}", args, image_size)
            for total, data_dir in datasets.items():
                out = work / f"dask{workers}-{total}"
                seconds = _preprocess(data_dir, out, args, image_size)
                rows.append(
                    {"runner": f"Dask, {workers} worker(s)", "images": total, "seconds": seconds}
                )
    for row in rows:
        row["images_per_second"] = row["images"] / row["seconds"]
    return rows


# --- 2. evaluation -----------------------------------------------------------------------

_EVALUATE = """
import json, resource, sys, time
import tensorflow as tf
import tensorflow_model_analysis as tfma
from cyclegan_tfx.config import load_config
import dataclasses
from pipeline.eval_config import build_eval_config
args = json.loads(sys.argv[1])
config = load_config(args["params"])
from cyclegan_tfx.evaluation.fid.backbone import resolve_inception_weights
# A fresh feature cache per run; the weights stay where `make setup` put them.
weights, _ = resolve_inception_weights(config.evaluate.backbone)
if args["backbone"] == "fallback":  # no weights file where it looks: the random-weights network
    weights = None
backbone = dataclasses.replace(
    config.evaluate.backbone,
    cache_dir=args["cache"],
    inception_weights=str(weights or ""),
    require_standard=args["backbone"] == "standard",
)
evaluate = dataclasses.replace(config.evaluate, backbone=backbone)
if args["kid_max_samples"]:
    evaluate = dataclasses.replace(evaluate, kid_max_samples=args["kid_max_samples"])
# No baseline here: drop the change thresholds as the Evaluator does on a first run.
eval_config = tfma.utils.update_eval_config_with_defaults(
    build_eval_config(evaluate, ground_truth=False), has_baseline=False, rubber_stamp=True
)
started = time.perf_counter()
result = tfma.run_model_analysis(
    eval_shared_model=tfma.default_eval_shared_model(args["model"], eval_config=eval_config),
    eval_config=eval_config,
    data_location=args["data"],
    file_format="tfrecords",
    output_path=args["out"],
)
seconds = time.perf_counter() - started
metrics = result.slicing_metrics[0][1][""][""]
print("RESULT " + json.dumps({
    "seconds": seconds,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "fid_a2b": metrics["fid_a2b"]["doubleValue"],
    "num_real": metrics["fid_a2b_num_real"]["doubleValue"],
}))
"""


def _export_untrained(params: str, out: Path) -> tuple[Path, int]:
    from cyclegan_tfx.config import load_config
    from cyclegan_tfx.model.cyclegan import build_networks
    from cyclegan_tfx.model.export import export_generators

    config = load_config(params)
    size = config.preprocess.image_size
    networks = build_networks(config.model, size)
    export_generators(networks.generator_ab, networks.generator_ba, size, out)
    return out, size


def bench_evaluate(
    params: str,
    test_splits: dict[int, Path],
    work: Path,
    kid_max_samples: int | None = None,
    backbones: tuple[str, ...] = ("standard",),
) -> list[dict]:
    model, _ = _export_untrained(params, work / "model")
    rows = []
    for backbone in backbones:
        for total, test_dir in test_splits.items():
            cache = work / f"feature-cache-{backbone}-{total}"
            for state in ("cold cache", "warm cache"):
                arguments = {
                    "params": params,
                    "cache": str(cache),
                    "model": str(model),
                    "data": str(test_dir / "*"),
                    "out": str(work / f"eval-{backbone}-{total}-{state.split()[0]}"),
                    "kid_max_samples": kid_max_samples,
                    "backbone": backbone,
                }
                row = {"backbone": backbone, "test_images": total, "cache": state}
                rows.append({**row, **_child(_EVALUATE, arguments)})
    return rows


_COMBINER = """
import json, resource, sys
import numpy as np
from tensorflow_model_analysis.metrics import metric_types
from components.quality_metrics import _QualityCombiner, _Settings, emitted_keys
from cyclegan_tfx.config import BackboneConfig
from cyclegan_tfx.evaluation.quality import QualitySettings

class Projection:  # a cheap stand-in backbone with the real feature dimension (memory only)
    name, is_standard, feature_dim = "random-projection-2048", False, 2048
    def __init__(self):
        self.weights = np.random.default_rng(0).standard_normal((16 * 16 * 3, 2048)) / 30
    def __call__(self, images):
        pixels = np.asarray(images, np.float64)[:, ::4, ::4, :].reshape(len(images), -1)
        return pixels / 255 @ self.weights

class Element:
    features = None
    def __init__(self, predictions):
        self.predictions = predictions
    def get_predictions(self, name):
        return self.predictions

args = json.loads(sys.argv[1])
quality = QualitySettings(16, 10, 50, args["kid_max_samples"], 10, False, {}, {})
settings = _Settings(BackboneConfig(cache_dir=args["cache"]), None, True, quality)
combiner = _QualityCombiner(
    {k: metric_types.MetricKey(name=k) for k in emitted_keys(False)}, "", settings
)
combiner._backbone = Projection()
rng = np.random.default_rng(1)
accumulator = combiner.create_accumulator()
for index in range(args["images"]):
    real = rng.integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    is_a = np.array([index % 2])
    element = Element({"real": real, "translated": 255 - real, "is_domain_a": is_a})
    accumulator = combiner.add_input(accumulator, element)
combiner.extract_output(combiner.compact(accumulator))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps({"peak_rss_mb": peak}))
"""


def bench_combiner_memory(sizes: list[int], work: Path, kid_max_samples: int) -> list[dict]:
    """Peak RSS of the quality metric's combiner alone (no TFMA, no Beam), per test-split size.

    The backbone is a random projection to 2,048 features (the real dimension, a fraction of
    the cost), so this measures what the project's metric holds, not Inception's speed.
    """
    rows = []
    for images in sizes:
        cache = work / f"combiner-cache-{images}"
        for state in ("cold cache", "warm cache"):
            arguments = {"images": images, "cache": str(cache), "kid_max_samples": kid_max_samples}
            rows.append({"test_images": images, "cache": state, **_child(_COMBINER, arguments)})
    return rows


def _child(script: str, arguments: dict) -> dict:
    """Runs `script` in a fresh Python process; returns what it printed after RESULT."""
    process = subprocess.run(
        [sys.executable, "-c", script, json.dumps(arguments)],
        capture_output=True,
        text=True,
        check=False,
    )
    if process.returncode != 0:
        raise RuntimeError(process.stderr[-3000:])
    line = next(x for x in process.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


# --- 3. training step --------------------------------------------------------------------


def matmul_gflops(dtype: str, size: int = 2048, repeats: int = 10) -> float:
    """Measured GFLOP/s of a square matmul (2 n^3 FLOP each)."""
    import tensorflow as tf

    a = tf.random.normal((size, size), dtype=tf.float32)
    a = tf.cast(a, dtype)
    step = tf.function(lambda x: tf.matmul(x, x))
    step(a).numpy()
    started = time.perf_counter()
    for _ in range(repeats):
        result = step(a)
    result.numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def _step_flops(gan, real: object) -> float:
    """FLOP of one training step, from TensorFlow's profiler on the two phase graphs."""
    import tensorflow as tf

    def count(function, *args) -> float:
        graph = function.get_concrete_function(*args).graph
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        profile = tf.compat.v1.profiler.profile(
            graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=options
        )
        return float(profile.total_float_ops)

    fake_a, fake_b, _, _ = gan._generator_phase(real, real)
    return count(gan._generator_phase, real, real) + count(
        gan._discriminator_phase, real, real, fake_a, fake_b, {}
    )


def bench_train(params: str, steps: int) -> list[dict]:
    import dataclasses

    import tensorflow as tf
    from paper_network import PAPER_BATCH_SIZE, PAPER_IMAGE_SIZE, PAPER_MODEL

    from cyclegan_tfx.config import load_config
    from cyclegan_tfx.model.cyclegan import CycleGAN

    config = load_config(params)
    setups = {
        f"params.yaml ({config.preprocess.image_size} px, batch {config.train.batch_size})": (
            config.model,
            config.preprocess.image_size,
            config.train.batch_size,
        ),
        "paper (128 px, 64 filters, 9 blocks, batch 1)": (
            PAPER_MODEL,
            PAPER_IMAGE_SIZE,
            PAPER_BATCH_SIZE,
        ),
    }
    rows = []
    for name, (model, size, batch) in setups.items():
        for mixed in (False, True):
            train = dataclasses.replace(config.train, mixed_precision=mixed, batch_size=batch)
            gan = CycleGAN(model, train, steps + 2, seed=0, image_size=size)
            rng = np.random.default_rng(0)
            real = tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32))
            flops = _step_flops(gan, real)
            for _ in range(2):  # warm-up: tracing
                gan.train_step(real, real)
            started = time.perf_counter()
            for _ in range(steps):
                gan.train_step(real, real)
            seconds = (time.perf_counter() - started) / steps
            rows.append(
                {
                    "network": name,
                    "precision": "bfloat16" if mixed else "float32",
                    "gflop_per_step": flops / 1e9,
                    "ms_per_step": seconds * 1000,
                    "gflops": flops / seconds / 1e9,
                }
            )
    return rows


# --- report ------------------------------------------------------------------------------


def _print_table(
    title: str, rows: list[dict], columns: list[tuple[str, str, str]], note: str = ""
) -> None:
    print(f"## {title}\n")
    if note:
        print(f"{note}\n")
    print(_table(rows, columns))
    print()


def _table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    head = "| " + " | ".join(title for title, _, _ in columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    body = [
        "| " + " | ".join(format(row[key], spec) for _, key, spec in columns) + " |" for row in rows
    ]
    return "\n".join([head, rule, *body])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--sizes", type=int, nargs=2, default=[400, 4000])
    parser.add_argument("--train-steps", type=int, default=3)
    stages = ["preprocess", "evaluate", "memory", "train"]
    parser.add_argument("--skip", nargs="*", default=[], choices=stages)
    parser.add_argument(
        "--kid-max-samples", type=int, default=None, help="override evaluate.kid_max_samples"
    )
    parser.add_argument(
        "--backbones",
        nargs="+",
        default=["standard"],
        choices=["standard", "fallback"],
        help="FID networks to time the Evaluator with (fallback: InceptionV3, random weights)",
    )
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from cyclegan_tfx.config import load_config

    image_size = load_config(args.params).preprocess.image_size
    figures: dict = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} CPUs, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    }
    print(f"machine: {figures['machine']}\n")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        work = Path(scratch)
        datasets = {}
        if "preprocess" not in args.skip or "evaluate" not in args.skip:
            datasets = {n: write_dataset(work / f"data-{n}", n, seed=n) for n in args.sizes}
        if "preprocess" not in args.skip or "evaluate" not in args.skip:
            rows = bench_preprocess(datasets, work, image_size)
            figures["preprocess"] = rows
            columns = [("runner", "runner", "s"), ("images", "images", "d")]
            columns += [("seconds", "seconds", ".1f"), ("images/s", "images_per_second", ".1f")]
            _print_table("Preprocessing (Beam job: decode, validate, resize)", rows, columns)
        if "evaluate" not in args.skip:
            splits = {n // 2: work / f"embedded-{n}" / "preprocessed" / "test" for n in args.sizes}
            rows = bench_evaluate(
                args.params, splits, work, args.kid_max_samples, tuple(args.backbones)
            )
            figures["evaluate"] = rows
            columns = [("backbone", "backbone", "s"), ("test images", "test_images", "d")]
            columns += [("feature cache", "cache", "s")]
            columns += [("seconds", "seconds", ".1f"), ("peak RSS (MiB)", "peak_rss_mb", ".0f")]
            _print_table("Evaluator metric (TFMA, FID/KID both ways)", rows, columns)
        if "memory" not in args.skip:
            kid = args.kid_max_samples or 2000
            largest = max(args.sizes) // 2
            rows = bench_combiner_memory([largest, 3 * largest], work, kid)
            figures["combiner_memory"] = rows
            columns = [("test images", "test_images", "d"), ("feature cache", "cache", "s")]
            columns += [("peak RSS (MiB)", "peak_rss_mb", ".0f")]
            note = f"the metric's combiner alone (no TFMA), kid_max_samples {kid}"
            _print_table("Evaluator metric's own memory", rows, columns, note)
        if "train" not in args.skip:
            import tensorflow as tf

            tf.get_logger().setLevel("ERROR")
            matmul = {d: matmul_gflops(d) for d in ("float32", "bfloat16")}
            figures["matmul_gflops"] = matmul
            rows = bench_train(args.params, args.train_steps)
            for row in rows:
                row["of_matmul"] = row["gflops"] / matmul[row["precision"]]
            figures["train"] = rows
            note = (
                f"matmul 2048x2048: float32 {matmul['float32']:.0f} GFLOP/s, "
                f"bfloat16 {matmul['bfloat16']:.0f} GFLOP/s"
            )
            columns = [("network", "network", "s"), ("precision", "precision", "s")]
            columns += [("GFLOP/step", "gflop_per_step", ".2f"), ("ms/step", "ms_per_step", ".0f")]
            columns += [("GFLOP/s", "gflops", ".1f"), ("of matmul rate", "of_matmul", ".0%")]
            _print_table("Training step (GFLOP: TensorFlow's profiler)", rows, columns, note)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()

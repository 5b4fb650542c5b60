"""`make bench-loop`: does the training loop run at the speed of its step?

For the params.yaml network and the paper's (Zhu et al. 2017: ResNet, 64 filters, 9 blocks,
transposed convolutions, 70x70 PatchGAN, 128 px, batch 1), measured in one run:

1. the bare step: `CycleGAN.train_step_on_device` on fixed batches already on the device, in a
   tight loop (synchronised once at the end);
2. the loop: `cyclegan_tfx.model.train.run_loop` as the Trainer runs it, on TFRecords of
   synthetic images the size of the sample data (120 A, 100 B): the input pipeline
   (decoding, random jitter and flips), the image pools, the losses read and the curves
   (DVCLive, TensorBoard) written every `train.log_every_steps`, a checkpoint and a sample
   grid every `train.checkpoint_every_steps` (the paper network, at about a second a step,
   gets one at the end of its 40 timed steps: six times as often as a real run). The timing
   starts after the first checkpoint, so the one-off tracing of the step and of the
   sample-grid translation is not in it;

and prints both rates and their ratio (`ratio 0.93`: the loop runs at 93 % of the step's speed).

Usage: .venv/bin/python bench/loop.py [--params params.yaml] [--steps 250] [--paper-steps 40]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from paper_network import PAPER_BATCH_SIZE, PAPER_IMAGE_SIZE, PAPER_MODEL

from cyclegan_tfx.config import Config, load_config
from cyclegan_tfx.data.preprocess.beam_pipeline import ImageRecord, to_example
from cyclegan_tfx.image_grid import png_bytes
from cyclegan_tfx.model.cyclegan import CycleGAN
from cyclegan_tfx.model.schedules import Timeline
from cyclegan_tfx.model.train import RunFolders, prepare_run, run_loop, steps_per_epoch

COUNTS = {"A": 120, "B": 100}
WARMUP = 3


def _records(path: Path, size: int) -> str:
    """A TFRecord of smooth random images of both domains, in the project's schema."""
    rng = np.random.default_rng(0)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for domain, count in COUNTS.items():
            coarse = rng.uniform(0, 255, (count, 8, 8, 3))
            images = tf.image.resize(coarse, (size, size)).numpy().clip(0, 255).astype(np.uint8)
            for index, image in enumerate(images):
                png = png_bytes(image)
                sha256 = hashlib.sha256(png).hexdigest()
                record = ImageRecord(sha256, f"train{domain}/{index}.png", "train", domain, png)
                writer.write(to_example(record).SerializeToString())
    return str(path)


def _bare_rate(config: Config, size: int, batch: int, steps: int) -> float:
    timeline = Timeline(steps + WARMUP, steps + WARMUP)
    gan = CycleGAN(config.model, config.train, timeline, seed=config.seed, image_size=size)
    rng = np.random.default_rng(0)
    shape = (batch, size, size, 3)
    batches = [tf.constant(rng.uniform(-1, 1, shape).astype(np.float32)) for _ in range(4)]
    for step in range(WARMUP):
        gan.train_step(batches[step % 2], batches[2 + step % 2])
    start = time.perf_counter()
    for step in range(steps):
        gan.train_step_on_device(batches[step % 2], batches[2 + step % 2])
    int(gan.step_counter.numpy())  # waits for the last step
    return steps / (time.perf_counter() - start)


def _loop_rate(config: Config, size: int, steps: int, scratch: Path) -> float:
    files = [_records(scratch / "train.tfrecord", size)]
    per_epoch = steps_per_epoch(COUNTS, config.train.batch_size)
    warmup = config.train.checkpoint_every_steps
    train = dataclasses.replace(config.train, epochs=(steps + warmup) / per_epoch, restart=True)
    folders = RunFolders.choose(scratch / "run", scratch / "checkpoints")
    run = prepare_run(
        files, config.model, train, size, config.seed, folders, tf.distribute.get_strategy()
    )
    clock: dict[str, float] = {}

    def mark(done: int, _) -> None:  # the timer starts after the first checkpoint
        if done == warmup:
            clock["start"] = time.perf_counter()

    run_loop(run, on_step=mark)
    return steps / (time.perf_counter() - clock["start"])


def measure(name: str, config: Config, steps: int) -> dict[str, float]:
    size, batch = config.preprocess.image_size, config.train.batch_size
    bare = _bare_rate(config, size, batch, steps)
    with tempfile.TemporaryDirectory() as scratch:
        loop = _loop_rate(config, size, steps, Path(scratch))
    print(
        f"{name:<9} {size:>4} px, batch {batch}: bare step {bare:6.2f} steps/s "
        f"({1000 / bare:6.1f} ms), loop {loop:6.2f} steps/s ({1000 / loop:6.1f} ms), "
        f"ratio {loop / bare:.2f}"
    )
    return {"bare": bare, "loop": loop, "ratio": loop / bare}


def paper_config(config: Config, steps: int) -> Config:
    """The paper's network at 128 px, batch 1, checkpoints within the measured steps."""
    preprocess = dataclasses.replace(config.preprocess, image_size=PAPER_IMAGE_SIZE)
    model = dataclasses.replace(PAPER_MODEL, generator_output="tanh")
    train = dataclasses.replace(
        config.train, batch_size=PAPER_BATCH_SIZE, checkpoint_every_steps=steps
    )
    return config.replace(preprocess=preprocess, model=model, train=train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--paper-steps", type=int, default=40)
    args = parser.parse_args()
    config = load_config(args.params)
    precision = config.train.mixed_precision
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"train.mixed_precision {precision}; {args.steps} / {args.paper_steps} timed steps "
        "(the loop's after its first checkpoint)"
    )
    measure("params", config, args.steps)
    measure("paper", paper_config(config, args.paper_steps), args.paper_steps)


if __name__ == "__main__":
    main()

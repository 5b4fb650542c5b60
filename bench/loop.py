"""`make bench-loop`: does the training loop run at the speed of its step?

For the params.yaml network and the paper's (Zhu et al. 2017: ResNet, 64 filters, 9 blocks,
transposed convolutions, 70x70 PatchGAN, 128 px, batch 1), measured in one run:

1. the loop: `cyclegan_tfx.model.train.run_loop` as the Trainer runs it, on TFRecords of
   synthetic images the size of the sample data (120 A, 100 B): the input pipeline
   (decoding, random jitter and flips), the image pools, the losses read and the curves
   (DVCLive, TensorBoard) written every `train.log_every_steps`, and a checkpoint and a
   sample grid every `train.checkpoint_every_steps`. The timed window is one checkpoint
   interval long (250 steps: one checkpoint and one grid in it, as often as in a real run)
   and starts after `WARMUP_STEPS` steps and one traced sample grid, so the one-off tracing
   of the step and of the grid's translation is not in it;
2. the bare step: `CycleGAN.train_step_on_device` of the same model on fixed batches
   already on the device, in a tight loop (synchronised at the end of each block). Its
   blocks run inside the timed loop, five times (`BLOCKS`), each half as long as
   the loop steps between them, and their time is taken out of the loop's: both rates are
   measured over the same minutes, so the ratio does not follow the machine's drift (on the
   shared 2-core machines here, two separate measurements a minute apart differed by 10 %);

and prints both rates and their ratio (`ratio 0.93`: the loop runs at 93 % of the step's speed).

About 6 minutes on 2 cores, nearly all of it the paper network's 375 steps.

Usage: .venv/bin/python bench/loop.py [--params params.yaml] [--steps N]
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
from cyclegan_tfx.model.train import (
    RunFolders,
    prepare_run,
    run_loop,
    sample_grid,
    steps_per_epoch,
)

COUNTS = {"A": 120, "B": 100}
WARMUP_STEPS = 10
"""Loop steps before the timer starts: the step's tracing and the input pipeline's start."""
BLOCKS = 5
"""The timed loop stops this many times for a block of bare steps (half as many as between)."""


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


def _fixed_batches(size: int, batch: int) -> list[tf.Tensor]:
    """Four fixed batches already on the device (two per domain)."""
    rng = np.random.default_rng(0)
    shape = (batch, size, size, 3)
    return [tf.constant(rng.uniform(-1, 1, shape).astype(np.float32)) for _ in range(4)]


class _Interleaved:
    """Times `steps` loop steps, stopping every `every` of them to time a block of bare steps.

    The bare steps (half as many as the loop steps between them) train the loop's own model
    on fixed batches: the same weights, in the same caches, as the loop's steps around them
    (a benchmark, so what they do to the model does not matter). Their time is not the loop's.
    """

    def __init__(self, batches: list[tf.Tensor], samples: tuple, steps: int) -> None:
        self.batches, self.samples = batches, samples
        self.steps, self.every = steps, max(2, steps // BLOCKS)
        self.block = max(1, self.every // 2)
        self.start = self.loop_seconds = 0.0
        self.bare_seconds, self.bare_steps = 0.0, 0

    def on_step(self, done: int, gan: CycleGAN) -> None:
        timed = done - WARMUP_STEPS
        if timed == 0:  # traced once (as in a run, where the first grid traces it)
            sample_grid(gan, *self.samples)
            self.start = time.perf_counter()
        elif 0 < timed <= self.steps and timed % self.every == 0:
            int(gan.step_counter.numpy())  # the loop's step is done
            if timed == self.steps:
                self.loop_seconds = time.perf_counter() - self.start - self.bare_seconds
                return
            begin = time.perf_counter()
            for step in range(self.block):
                gan.train_step_on_device(self.batches[step % 2], self.batches[2 + step % 2])
            int(gan.step_counter.numpy())  # waits for the last bare step
            self.bare_seconds += time.perf_counter() - begin
            self.bare_steps += self.block


def _rates(config: Config, size: int, steps: int, scratch: Path) -> tuple[float, float]:
    """(bare step rate, loop rate), measured in alternating blocks over the same minutes."""
    files = [_records(scratch / "train.tfrecord", size)]
    per_epoch = steps_per_epoch(COUNTS, config.train.batch_size)
    batches = _fixed_batches(size, config.train.batch_size)
    loop_steps = WARMUP_STEPS + steps + 1  # the last one (its grid, the curves' close) untimed
    total = loop_steps + steps  # the bare steps count on the model's step too
    train = dataclasses.replace(config.train, epochs=total / per_epoch, restart=True)
    folders = RunFolders.choose(scratch / "run", scratch / "checkpoints")
    run = prepare_run(
        files, config.model, train, size, config.seed, folders, tf.distribute.get_strategy()
    )
    run.steps = loop_steps  # the schedule runs over `total`
    timer = _Interleaved(batches, run.samples, steps)
    run_loop(run, on_step=timer.on_step)
    return timer.bare_steps / timer.bare_seconds, steps / timer.loop_seconds


def measure(name: str, config: Config, steps: int) -> dict[str, float]:
    size, batch = config.preprocess.image_size, config.train.batch_size
    with tempfile.TemporaryDirectory() as scratch:
        bare, loop = _rates(config, size, steps, Path(scratch))
    print(
        f"{name:<9} {size:>4} px, batch {batch}: bare step {bare:6.2f} steps/s "
        f"({1000 / bare:6.1f} ms), loop {loop:6.2f} steps/s ({1000 / loop:6.1f} ms), "
        f"ratio {loop / bare:.2f}"
    )
    return {"bare": bare, "loop": loop, "ratio": loop / bare}


def paper_config(config: Config) -> Config:
    """The paper's network at 128 px, batch 1 (the checkpoints as params.yaml sets them)."""
    preprocess = dataclasses.replace(config.preprocess, image_size=PAPER_IMAGE_SIZE)
    model = dataclasses.replace(PAPER_MODEL, generator_output="tanh")
    train = dataclasses.replace(config.train, batch_size=PAPER_BATCH_SIZE)
    return config.replace(preprocess=preprocess, model=model, train=train)


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what `platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--steps", type=int, help="timed loop steps (default: one checkpoint's)")
    args = parser.parse_args()
    config = load_config(args.params)
    steps = args.steps or config.train.checkpoint_every_steps
    print(
        f"{cpu_model()}, {os.cpu_count()} CPU cores, "
        f"train.mixed_precision {config.train.mixed_precision}; {steps} timed loop steps "
        f"(a checkpoint and a sample grid every {config.train.checkpoint_every_steps})"
    )
    measure("params", config, steps)
    measure("paper", paper_config(config), steps)


if __name__ == "__main__":
    main()

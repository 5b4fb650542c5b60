"""Training-step throughput of the default strategy, with and without XLA.

Prints steps/s and images/s (one image = one A plus one B image through the whole CycleGAN step:
generator phase, image pools, discriminator phase) at a stated configuration, on whatever device
TensorFlow uses (CPU here).

Usage: .venv/bin/python bench/train_step.py [--image-size 64 --filters 16 --blocks 4 --batch 4]
       [--steps 20] [--warmup 3] [--strategy independent]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import tensorflow as tf

from cyclegan_tfx.config import ModelConfig, load_config
from cyclegan_tfx.model.cyclegan import CycleGAN
from cyclegan_tfx.model.optimizer_strategies import OptimizerStrategy


def measure(args: argparse.Namespace, jit_compile: bool) -> tuple[float, float]:
    config = load_config(args.params)
    model = ModelConfig(args.filters, args.blocks, args.filters, 3)
    optimizer = dataclasses.replace(
        config.train.optimizer, strategy=OptimizerStrategy(args.strategy)
    )
    train = dataclasses.replace(config.train, optimizer=optimizer)
    gan = CycleGAN(
        model,
        train,
        args.steps + args.warmup,
        seed=0,
        image_size=args.image_size,
        jit_compile=jit_compile,
    )
    rng = np.random.default_rng(0)
    shape = (args.batch, args.image_size, args.image_size, 3)
    batches = [tf.constant(rng.uniform(-1, 1, shape).astype(np.float32)) for _ in range(4)]
    for step in range(args.warmup):
        gan.train_step(batches[step % 2], batches[2 + step % 2])
    start = time.perf_counter()
    for step in range(args.steps):
        gan.train_step(batches[step % 2], batches[2 + step % 2])
    seconds = time.perf_counter() - start
    return args.steps / seconds, args.steps * args.batch / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--strategy", default="independent", choices=[s.value for s in OptimizerStrategy]
    )
    args = parser.parse_args()
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(
        f"config: image {args.image_size}px, {args.filters} filters, {args.blocks} blocks, "
        f"batch {args.batch}, strategy {args.strategy}, {args.steps} timed steps after "
        f"{args.warmup} warm-up, device {device}"
    )
    for jit in (False, True):
        steps_per_s, images_per_s = measure(args, jit)
        print(f"jit_compile={jit!s:5}  {steps_per_s:7.2f} steps/s  {images_per_s:7.2f} images/s")


if __name__ == "__main__":
    main()

"""The training run: data in, trained generators exported, logs and curves written."""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from cyclegan_tfx.config import NETWORK_NAMES, ModelConfig, TrainConfig
from cyclegan_tfx.grid import image_grid, png_bytes
from cyclegan_tfx.model import data
from cyclegan_tfx.model.cyclegan import CycleGAN, network_losses
from cyclegan_tfx.model.export import export_generators

logger = logging.getLogger(__name__)

LOSSES_FILE = "losses.tsv"
SAMPLES_FILE = "samples.png"
SAMPLE_COUNT = 4


class TrainingDataError(ValueError):
    """The training split is unusable (e.g. a domain has no images)."""


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    steps: int
    examples: dict[str, int]
    final_losses: dict[str, float]
    seconds: float
    weights_fingerprint: str


def total_steps(examples: dict[str, int], epochs: float, batch_size: int) -> int:
    """Steps of a run: an epoch is max(|A|, |B|) / batch_size steps (rounded up)."""
    return math.ceil(epochs * max(examples.values()) / batch_size)


def _sample_grid(cyclegan: CycleGAN, real_a: np.ndarray, real_b: np.ndarray) -> np.ndarray:
    """Real A | fake B | reconstructed A   ||   real B | fake A | reconstructed B."""
    nets = cyclegan.networks

    def run(network, images):
        return network(images, training=False)

    a, b = data.to_float(real_a), data.to_float(real_b)
    fake_b, fake_a = run(nets.generator_ab, a), run(nets.generator_ba, b)
    columns = [
        real_a,
        data.to_uint8(fake_b).numpy(),
        data.to_uint8(run(nets.generator_ba, fake_b)).numpy(),
        real_b,
        data.to_uint8(fake_a).numpy(),
        data.to_uint8(run(nets.generator_ab, fake_a)).numpy(),
    ]
    return image_grid(columns)


def train_and_export(
    train_files: list[str],
    model_config: ModelConfig,
    train_config: TrainConfig,
    image_size: int,
    seed: int,
    run_dir: str | Path,
    export_dir: str | Path,
) -> TrainResult:
    """Trains the CycleGAN on `train_files` and exports the serving SavedModel.

    Args:
        train_files: TFRecord files (optionally gzipped) of the train split, both domains.
        model_config: Architecture.
        train_config: Training loop, losses, optimizers.
        image_size: Side of the (square) training images.
        seed: Seeds weights, data order, flips and image pools.
        run_dir: Where logs, TensorBoard summaries, `losses.tsv` and sample grids go.
        export_dir: Where the serving SavedModel is written.

    Returns:
        A summary of the run.

    Raises:
        TrainingDataError: If a domain has no training images.
        TrainingDivergedError: If a loss becomes NaN/Inf (nothing is exported then).
    """
    tf.config.experimental.enable_op_determinism()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    size = image_size
    train_cfg = train_config
    examples = data.count_domains(train_files)
    empty = [d for d, n in examples.items() if n == 0]
    if empty:
        raise TrainingDataError(
            f"no training images for domain(s) {empty} in {len(train_files)} file(s); "
            "check data/trainA and data/trainB"
        )
    steps = total_steps(examples, train_cfg.epochs, train_cfg.batch_size)
    batch = min(train_cfg.batch_size, min(examples.values()))
    logger.info("training %d steps on %s (batch %d)", steps, examples, batch)
    cyclegan = CycleGAN(model_config, train_cfg, steps, seed=seed, image_size=size)
    stream_a = iter(data.training_stream(train_files, "A", size, batch, seed))
    stream_b = iter(data.training_stream(train_files, "B", size, batch, seed + 1))
    samples_a = np.stack(list(data.domain_images(train_files, "A", size).take(SAMPLE_COUNT)))
    samples_b = np.stack(list(data.domain_images(train_files, "B", size).take(SAMPLE_COUNT)))
    steps_per_epoch = max(1, math.ceil(max(examples.values()) / train_cfg.batch_size))

    writer = tf.summary.create_file_writer(str(run_dir / "tensorboard"))
    columns = ["step", *NETWORK_NAMES, *(f"lr_{n}" for n in NETWORK_NAMES)]
    final: dict[str, float] = {}
    start = time.monotonic()
    with open(run_dir / LOSSES_FILE, "w", newline="") as handle, writer.as_default():
        tsv = csv.writer(handle, delimiter="\t", lineterminator="\n")
        tsv.writerow(columns)
        for step in range(steps):
            rates = cyclegan.learning_rates(step)
            losses = cyclegan.train_step(next(stream_a), next(stream_b))
            per_network = network_losses(losses)
            final = {**per_network, **losses}
            tsv.writerow(
                [step + 1]
                + [f"{per_network[n]:.6g}" for n in NETWORK_NAMES]
                + [f"{rates[n]:.6g}" for n in NETWORK_NAMES]
            )
            for name, value in {**per_network, **losses}.items():
                tf.summary.scalar(f"loss/{name}", value, step=step + 1)
            for name, value in rates.items():
                tf.summary.scalar(f"learning_rate/{name}", value, step=step + 1)
            if (step + 1) % train_cfg.log_every_steps == 0 or step + 1 == steps:
                logger.info(
                    "step %d/%d (epoch %.2f) %s",
                    step + 1,
                    steps,
                    (step + 1) / steps_per_epoch,
                    "  ".join(
                        f"{n}: loss {per_network[n]:.4f} lr {rates[n]:.2e}" for n in NETWORK_NAMES
                    ),
                )
            if (step + 1) % steps_per_epoch == 0 or step + 1 == steps:
                grid = _sample_grid(cyclegan, samples_a, samples_b)
                tf.summary.image("samples", grid[None], step=step + 1)
                (run_dir / SAMPLES_FILE).write_bytes(png_bytes(grid))
    if steps == 0:
        (run_dir / SAMPLES_FILE).write_bytes(
            png_bytes(_sample_grid(cyclegan, samples_a, samples_b))
        )
    seconds = time.monotonic() - start
    export_generators(
        cyclegan.networks.generator_ab, cyclegan.networks.generator_ba, size, export_dir
    )
    fingerprint = cyclegan.weights_fingerprint()
    logger.info("trained %d steps in %.1f s; weights %s", steps, seconds, fingerprint)
    return TrainResult(steps, examples, final, seconds, fingerprint)

"""The training run: data in, trained generators exported, logs and curves written."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cyclegan_tfx.config import NETWORK_NAMES, ModelConfig, TrainConfig
from cyclegan_tfx.grid import image_grid, png_bytes
from cyclegan_tfx.model import data
from cyclegan_tfx.model.checkpoints import TrainingCheckpoints, join
from cyclegan_tfx.model.cyclegan import CycleGAN, network_losses
from cyclegan_tfx.model.distribution import is_chief, select_distribution
from cyclegan_tfx.model.export import export_generators
from cyclegan_tfx.model.networks import build_generator
from cyclegan_tfx.model.schedules import Timeline
from cyclegan_tfx.model.training_log import TrainingLog

logger = logging.getLogger(__name__)

SAMPLES_FILE = "samples.png"
LIVE_DIR = "dvclive"
"""The DVCLive directory inside a training run's folder (the Trainer's ModelRun artifact)."""
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
    chief: bool = True
    """False on the other workers of a multi-worker run (they export nothing)."""


def steps_per_epoch(examples: dict[str, int], batch_size: int) -> int:
    """An epoch is max(|A|, |B|) / batch_size steps (rounded up)."""
    return max(1, math.ceil(max(examples.values()) / batch_size))


def checkpoint_key(train_files: list[str], trainer_config: dict[str, Any]) -> str:
    """Identifies a training run: same inputs and settings resume the same checkpoints."""
    payload = json.dumps({"files": sorted(train_files), "config": trainer_config}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


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
    checkpoint_dir: str | Path | None = None,
    on_step: Callable[[int, CycleGAN], None] | None = None,
    before_checkpoint_commit: Callable[[str], None] | None = None,
    live_dir: str | Path | None = None,
    distribution: tf.distribute.Strategy | None = None,
) -> TrainResult:
    """Trains the CycleGAN on `train_files` and exports the serving SavedModel.

    With `checkpoint_dir`, the run saves a checkpoint every `train.checkpoint_every_steps`
    steps and at every epoch end, resumes from the newest one when started again (unless
    `train.restart`), and deletes them after a successful export. A resumed run reaches the
    same weights as an uninterrupted one. `run_dir`, `export_dir` and `checkpoint_dir` may be
    on any filesystem TensorFlow writes (gs://, s3://, hdfs://).

    Args:
        train_files: TFRecord files (optionally gzipped) of the train split, both domains.
        model_config: Architecture.
        train_config: Training loop, losses, optimizers.
        image_size: Side of the (square) training images.
        seed: Seeds weights, data order, flips and image pools.
        run_dir: Where logs, TensorBoard summaries, `losses.tsv` and sample grids go.
        export_dir: Where the serving SavedModel is written.
        checkpoint_dir: Folder for this run's checkpoints, or None for none.
        on_step: Called after each step with the number of completed steps and the model
            (monitoring, e.g. FID during training in `cyclegan_tfx.compare`; tests).
        before_checkpoint_commit: Passed to TrainingCheckpoints (tests).
        live_dir: Where DVCLive writes the curves while training (a local folder, e.g. the
            workspace's `dvclive/`); default: beside local checkpoints, so a resumed run
            continues them, else `run_dir/dvclive` if local, else a temporary folder. With
            remote checkpoints the curves are saved in each checkpoint and restored with it.
            They end up in `run_dir/dvclive` either way.
        distribution: The tf.distribute strategy; default: chosen from the environment
            (`TF_CONFIG` with several workers: multi-worker; several GPUs: mirrored). In a
            multi-worker run only the chief writes `run_dir`, the checkpoints and the export;
            the other workers train in step with it and restore from its checkpoints.

    Returns:
        A summary of the run.

    Raises:
        TrainingDataError: If a domain has no training images.
        TrainingDivergedError: If a loss becomes NaN/Inf (nothing is exported then).
    """
    if distribution is None:
        distribution = select_distribution(os.environ)  # first: before any TF operation
    chief = is_chief(distribution)
    tf.config.experimental.enable_op_determinism()
    if not chief:  # trains in step with the chief; its own files are scratch
        scratch = tempfile.mkdtemp(prefix="cyclegan-worker-")
        run_dir, live_dir = join(scratch, "run"), Path(scratch, LIVE_DIR)
    run_dir = str(run_dir)
    tf.io.gfile.makedirs(run_dir)
    size = image_size
    train_cfg = train_config
    examples = data.count_domains(train_files)
    empty = [d for d, n in examples.items() if n == 0]
    if empty:
        raise TrainingDataError(
            f"no training images for domain(s) {empty} in {len(train_files)} file(s); "
            "check data/trainA and data/trainB"
        )
    per_epoch = steps_per_epoch(examples, train_cfg.batch_size)
    timeline = Timeline.from_epochs(train_cfg.epochs, train_cfg.schedule.decay_epochs, per_epoch)
    steps = timeline.total_steps
    n_critic = train_cfg.optimizer.n_critic
    batch = min(train_cfg.batch_size, min(examples.values()))
    logger.info(
        "training %d steps on %s (batch %d, strategy %s, n_critic %d)",
        steps,
        examples,
        batch,
        train_cfg.optimizer.strategy,
        n_critic,
    )
    cyclegan = CycleGAN(
        model_config, train_cfg, timeline, seed=seed, image_size=size, distribution=distribution
    )
    augmentation = {
        "jitter_scale": train_cfg.jitter_scale if train_cfg.random_jitter else 1.0,
        "flip": train_cfg.random_flip,
    }
    stream_a = iter(data.training_stream(train_files, "A", size, batch, seed, **augmentation))
    stream_b = iter(data.training_stream(train_files, "B", size, batch, seed + 1, **augmentation))
    samples_a = np.stack(list(data.domain_images(train_files, "A", size).take(SAMPLE_COUNT)))
    samples_b = np.stack(list(data.domain_images(train_files, "B", size).take(SAMPLE_COUNT)))

    remote_checkpoints = checkpoint_dir is not None and _is_remote(checkpoint_dir)
    if live_dir is None:
        if checkpoint_dir is not None and not remote_checkpoints:
            live_dir = Path(checkpoint_dir) / LIVE_DIR
        elif not _is_remote(run_dir):
            live_dir = Path(run_dir) / LIVE_DIR
        else:
            live_dir = Path(tempfile.mkdtemp(prefix="dvclive-"))
    checkpoints = None
    if checkpoint_dir is not None:
        checkpoints = TrainingCheckpoints(
            checkpoint_dir,
            {
                **cyclegan.checkpoint_objects(),
                "stream_a": stream_a,
                "stream_b": stream_b,
            },
            {"pool_a": cyclegan.pool_a, "pool_b": cyclegan.pool_b},
            before_commit=before_checkpoint_commit,
            files_dir=live_dir if remote_checkpoints else None,
            read_only=not chief,
        )
        if train_cfg.restart and chief:
            logger.info("train.restart is true: discarding checkpoints in %s", checkpoint_dir)
            checkpoints.remove_all()
        elif checkpoints.restore_latest() is not None:
            logger.info("resuming at step %d of %d", cyclegan.step, steps)
    curves = TrainingLog(live_dir, resume_step=cyclegan.step if cyclegan.step else None)

    writer = tf.summary.create_file_writer(join(run_dir, "tensorboard"))
    progress = Progress(cyclegan.step, steps)
    final: dict[str, float] = {}
    start = time.monotonic()
    sampled = False
    with writer.as_default():
        for step in range(cyclegan.step, steps):
            rates = cyclegan.learning_rates(step)
            extra = [(next(stream_a), next(stream_b)) for _ in range(n_critic - 1)]
            losses = cyclegan.train_step(next(stream_a), next(stream_b), extra)
            per_network = network_losses(losses)
            final = {**per_network, **losses}
            curves.log(step + 1, per_network, rates)
            for name, value in final.items():
                tf.summary.scalar(f"loss/{name}", value, step=step + 1)
            for name, value in rates.items():
                tf.summary.scalar(f"learning_rate/{name}", value, step=step + 1)
            done = step + 1
            if done % train_cfg.log_every_steps == 0 or done == steps:
                logger.info(
                    "step %d/%d (epoch %.2f, %s) %s",
                    done,
                    steps,
                    done / per_epoch,
                    progress.update(done),
                    "  ".join(
                        f"{n}: loss {per_network[n]:.4f} lr {rates[n]:.2e}" for n in NETWORK_NAMES
                    ),
                )
            epoch_end = done % per_epoch == 0 or done == steps
            if epoch_end:
                grid = _sample_grid(cyclegan, samples_a, samples_b)
                tf.summary.image("samples", grid[None], step=done)
                _write_samples(run_dir, grid)
                sampled = True
            if checkpoints is not None and (
                epoch_end or done % train_cfg.checkpoint_every_steps == 0
            ):
                checkpoints.save(done)
            if on_step is not None:
                on_step(done, cyclegan)
    if not sampled:  # a resumed run that had nothing left to train
        _write_samples(run_dir, _sample_grid(cyclegan, samples_a, samples_b))
    curves.close(copy_to=join(run_dir, LIVE_DIR))
    seconds = time.monotonic() - start
    fingerprint = cyclegan.weights_fingerprint()
    logger.info("trained %d steps in %.1f s; weights %s", steps, seconds, fingerprint)
    if not chief:
        shutil.rmtree(scratch, ignore_errors=True)
        return TrainResult(steps, examples, final, seconds, fingerprint, chief=False)
    export_generators(*serving_generators(cyclegan, model_config, size), size, export_dir)
    if checkpoints is not None:
        checkpoints.remove_all()
    return TrainResult(steps, examples, final, seconds, fingerprint)


def serving_generators(
    cyclegan: CycleGAN, model_config: ModelConfig, image_size: int
) -> tuple[keras.Model, keras.Model]:
    """The generators to export (A->B, B->A): float32 whatever precision trained them.

    bfloat16 is a training speed-up. The served model computes in float32: it runs at full
    speed on servers without bfloat16 hardware, and the session-based loader reproduces it to
    a grey level (bfloat16 kernels differ by several between runtimes). The weights are the
    trained float32 weights (mixed precision keeps float32 weights), so nothing is lost.
    """
    trained = (cyclegan.networks.generator_ab, cyclegan.networks.generator_ba)
    if not cyclegan.mixed_precision:
        return trained
    copies = []
    for network in trained:
        copy = build_generator(model_config, network.name, image_size)  # float32 policy
        copy.set_weights(network.get_weights())
        copies.append(copy)
    return copies[0], copies[1]


def _is_remote(path: str | Path) -> bool:
    return "://" in str(path)


def _write_samples(run_dir: str, grid: np.ndarray) -> None:
    with tf.io.gfile.GFile(join(run_dir, SAMPLES_FILE), "wb") as f:
        f.write(png_bytes(grid))


class Progress:
    """Training speed and time left, for the log: steps/s since the last report, and ETA."""

    def __init__(self, first_step: int, total_steps: int, clock=time.monotonic) -> None:
        self.total = total_steps
        self.clock = clock
        self.last_step, self.last_time = first_step, clock()

    def update(self, step: int) -> str:
        """`<rate> steps/s, ETA <m:ss>` over the steps since the previous call."""
        now = self.clock()
        elapsed, done = now - self.last_time, step - self.last_step
        self.last_step, self.last_time = step, now
        if done <= 0 or elapsed <= 0:
            return "starting"
        rate = done / elapsed
        left = round((self.total - step) / rate)
        return f"{rate:.2f} steps/s, ETA {left // 60}:{left % 60:02d}"

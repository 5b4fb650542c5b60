"""The training run: data in, trained generators exported, logs and curves written.

Over 400 lines on purpose: a run's stages (its folders, set-up, the loop, the export) share
one TrainingRun and private helpers, and each stage is short; the file is the run in order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
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
from cyclegan_tfx.image_grid import image_grid, png_bytes
from cyclegan_tfx.model import data
from cyclegan_tfx.model.checkpoints import TrainingCheckpoints
from cyclegan_tfx.model.cyclegan import CycleGAN, check_finite, network_losses
from cyclegan_tfx.model.distribution import is_chief
from cyclegan_tfx.model.export import export_generators
from cyclegan_tfx.model.networks import build_generator
from cyclegan_tfx.model.schedules import Timeline
from cyclegan_tfx.model.training_log import TrainingLog
from cyclegan_tfx.model.warm_start import (
    WarmStart,
    architecture,
    continue_from,
    save_training_state,
)
from cyclegan_tfx.uri import is_url, join

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
    warm_start: WarmStart | None = None
    """Where a warm-started run began; None for a run from scratch."""

    @property
    def total_steps(self) -> int:
        """The training steps behind the weights: the base model's, then this run's."""
        return self.steps + (self.warm_start.base_steps if self.warm_start else 0)


def steps_per_epoch(examples: dict[str, int], batch_size: int) -> int:
    """An epoch is max(|A|, |B|) / batch_size steps (rounded up)."""
    return max(1, math.ceil(max(examples.values()) / batch_size))


def checkpoint_key(train_files: list[str], trainer_config: dict[str, Any]) -> str:
    """Identifies a training run: same inputs and settings resume the same checkpoints."""
    payload = json.dumps({"files": sorted(train_files), "config": trainer_config}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def sample_grid(cyclegan: CycleGAN, real_a: np.ndarray, real_b: np.ndarray) -> np.ndarray:
    """Real A | fake B | reconstructed A   ||   real B | fake A | reconstructed B."""
    translated = cyclegan.cycle_translations(data.to_float(real_a), data.to_float(real_b))
    fake_b, rec_a, fake_a, rec_b = (data.to_uint8(t).numpy() for t in translated)
    return image_grid([real_a, fake_b, rec_a, real_b, fake_a, rec_b])


@dataclasses.dataclass(frozen=True)
class RunFolders:
    """Where a training run writes.

    Attributes:
        run_dir: Logs, TensorBoard summaries and sample grids (any TensorFlow filesystem).
        checkpoint_dir: This run's checkpoints, or None for none (any TensorFlow filesystem).
        live_dir: The local folder DVCLive writes the curves to while training.
        scratch: A temporary folder to delete at the end (a non-chief worker's), or None.
    """

    run_dir: str
    checkpoint_dir: str | None
    live_dir: Path
    scratch: str | None = None

    @property
    def remote_checkpoints(self) -> bool:
        """Whether the checkpoints are on a remote filesystem (the curves travel with them)."""
        return self.checkpoint_dir is not None and is_url(self.checkpoint_dir)

    @classmethod
    def choose(
        cls,
        run_dir: str | Path,
        checkpoint_dir: str | Path | None = None,
        live_dir: str | Path | None = None,
        chief: bool = True,
    ) -> RunFolders:
        """The folders of a run, chosen as the Trainer and the studies need them.

        DVCLive writes beside local checkpoints (a resumed run continues its curves), else
        in `run_dir` if local, else in a temporary folder; a non-chief worker of a
        multi-worker run writes only scratch files.
        """
        if not chief:
            scratch = tempfile.mkdtemp(prefix="cyclegan-worker-")
            return cls(join(scratch, "run"), _str(checkpoint_dir), Path(scratch, LIVE_DIR), scratch)
        if live_dir is None:
            if checkpoint_dir is not None and not is_url(checkpoint_dir):
                live_dir = Path(checkpoint_dir) / LIVE_DIR
            elif not is_url(run_dir):
                live_dir = Path(run_dir) / LIVE_DIR
            else:
                live_dir = Path(tempfile.mkdtemp(prefix="dvclive-"))
        return cls(str(run_dir), _str(checkpoint_dir), Path(live_dir))


@dataclasses.dataclass
class TrainingRun:
    """A run set up to train: the model, its data streams, checkpoints and logs."""

    cyclegan: CycleGAN
    config: TrainConfig
    folders: RunFolders
    examples: dict[str, int]
    per_epoch: int
    steps: int
    batch: int
    streams: tuple[Any, Any]
    samples: tuple[np.ndarray, np.ndarray]
    checkpoints: TrainingCheckpoints | None
    curves: TrainingLog
    chief: bool
    warm_start: WarmStart | None = None


def prepare_run(
    train_files: list[str],
    model_config: ModelConfig,
    train_config: TrainConfig,
    image_size: int,
    seed: int,
    folders: RunFolders,
    distribution: tf.distribute.Strategy,
    before_checkpoint_commit: Callable[[str], None] | None = None,
    base_model: str | None = None,
) -> TrainingRun:
    """Sets a run up: counts the data, builds the model and streams, restores checkpoints.

    With `base_model` the model starts from that model's training state (warm start), and
    the run's own checkpoints, if any, resume on top of it.

    Raises:
        TrainingDataError: If a domain has no training images.
        WarmStartError: If the base model has no training state for this architecture.
    """
    tf.io.gfile.makedirs(folders.run_dir)
    examples = data.count_domains(train_files)
    empty = [d for d, n in examples.items() if n == 0]
    if empty:
        raise TrainingDataError(
            f"no training images for domain(s) {empty} in {len(train_files)} file(s); "
            "check data/trainA and data/trainB"
        )
    per_epoch = steps_per_epoch(examples, train_config.batch_size)
    timeline = Timeline.from_epochs(
        train_config.epochs, train_config.schedule.decay_epochs, per_epoch
    )
    batch = min(train_config.batch_size, min(examples.values()))
    logger.info(
        "training %d steps on %s (batch %d, strategy %s, n_critic %d)",
        timeline.total_steps,
        examples,
        batch,
        train_config.optimizer.strategy,
        train_config.optimizer.n_critic,
    )
    cyclegan = CycleGAN(
        model_config,
        train_config,
        timeline,
        seed=seed,
        image_size=image_size,
        distribution=distribution,
    )
    augmentation = {
        "jitter_scale": train_config.jitter_scale if train_config.random_jitter else 1.0,
        "flip": train_config.random_flip,
    }
    streams = tuple(
        iter(data.training_stream(train_files, domain, image_size, batch, seed + i, **augmentation))
        for i, domain in enumerate("AB")
    )
    samples = tuple(
        np.stack(list(data.domain_images(train_files, domain, image_size).take(SAMPLE_COUNT)))
        for domain in "AB"
    )
    warm = None
    if base_model is not None:
        warm = continue_from(cyclegan, base_model, model_config, train_config, image_size)
    chief = is_chief(distribution)
    checkpoints = None
    if folders.checkpoint_dir is not None:
        trackables = {
            **cyclegan.checkpoint_objects(),
            "stream_a": streams[0],
            "stream_b": streams[1],
        }
        checkpoints = TrainingCheckpoints(
            folders.checkpoint_dir,
            trackables,
            before_commit=before_checkpoint_commit,
            files_dir=folders.live_dir if folders.remote_checkpoints else None,
            read_only=not chief,
        )
        if train_config.restart and chief:
            logger.info(
                "train.restart is true: discarding checkpoints in %s", folders.checkpoint_dir
            )
            checkpoints.remove_all()
        elif checkpoints.restore_latest() is not None:
            logger.info("resuming at step %d of %d", cyclegan.step, timeline.total_steps)
    curves = TrainingLog(folders.live_dir, resume_step=cyclegan.step if cyclegan.step else None)
    return TrainingRun(
        cyclegan,
        train_config,
        folders,
        examples,
        per_epoch,
        timeline.total_steps,
        batch,
        streams,
        samples,
        checkpoints,
        curves,
        chief,
        warm,
    )


def _report(run: TrainingRun, done: int, losses: dict[str, float], progress: Progress) -> None:
    """The curves, TensorBoard and the log line, every `log_every_steps` (means over them)."""
    rates = run.cyclegan.learning_rates(done)
    per_network = network_losses(losses)
    run.curves.log(done, per_network, rates)
    for name, value in {**per_network, **losses}.items():
        tf.summary.scalar(f"loss/{name}", value, step=done)
    for name, value in rates.items():
        tf.summary.scalar(f"learning_rate/{name}", value, step=done)
    logger.info(
        "step %d/%d (epoch %.2f, %s) %s",
        done,
        run.steps,
        done / run.per_epoch,
        progress.update(done),
        "  ".join(f"{n}: loss {per_network[n]:.4f} lr {rates[n]:.2e}" for n in NETWORK_NAMES),
    )


def run_loop(run: TrainingRun, on_step: Callable[[int, CycleGAN], None] | None = None) -> dict:
    """Trains the remaining steps; returns the last logged losses (means of the interval).

    The step is compiled whole and its losses stay on the device (summed there); the host
    reads them, checks them and writes the curves once every `train.log_every_steps` steps.

    Raises:
        TrainingDivergedError: If a loss is NaN or infinite (checked at each report).
    """
    cyclegan, config = run.cyclegan, run.config
    stream_a, stream_b = run.streams
    progress = Progress(cyclegan.step, run.steps)
    writer = tf.summary.create_file_writer(join(run.folders.run_dir, "tensorboard"))
    final: dict[str, float] = {}
    sampled, reported = False, cyclegan.step
    with writer.as_default():
        for step in range(cyclegan.step, run.steps):
            extra = [(next(stream_a), next(stream_b)) for _ in range(config.optimizer.n_critic - 1)]
            cyclegan.train_step_on_device(next(stream_a), next(stream_b), extra)
            done = step + 1
            if done % config.log_every_steps == 0 or done == run.steps:
                losses = cyclegan.take_loss_means()
                check_finite(losses, done, first_step=reported + 1)
                reported = done
                final = {**network_losses(losses), **losses}
                _report(run, done, losses, progress)
            if done % config.checkpoint_every_steps == 0 or done == run.steps:
                grid = sample_grid(cyclegan, *run.samples)
                tf.summary.image("samples", grid[None], step=done)
                _write_samples(run.folders.run_dir, grid)
                sampled = True
            if run.checkpoints is not None and done % config.checkpoint_every_steps == 0:
                run.checkpoints.save(done)
            if on_step is not None:
                on_step(done, cyclegan)
    if not sampled:  # a resumed run that had nothing left to train
        _write_samples(run.folders.run_dir, sample_grid(cyclegan, *run.samples))
    run.curves.close(copy_to=join(run.folders.run_dir, LIVE_DIR))
    return final


def finish_run(
    run: TrainingRun,
    final: dict,
    seconds: float,
    model_config: ModelConfig,
    image_size: int,
    export_dir: str | Path | None,
    state_dir: str | None = None,
) -> TrainResult:
    """Exports the serving generators (the chief), then deletes the checkpoints.

    With `export_dir` None nothing is exported (a run scored in memory and thrown away). With
    `state_dir` the final training state is kept there, for a later warm start.
    """
    fingerprint = run.cyclegan.weights_fingerprint()
    logger.info("trained %d steps in %.1f s; weights %s", run.steps, seconds, fingerprint)
    result = TrainResult(
        run.steps, run.examples, final, seconds, fingerprint, run.chief, run.warm_start
    )
    if not run.chief:
        shutil.rmtree(run.folders.scratch or "", ignore_errors=True)
        return result
    if export_dir is not None:
        generators = serving_generators(run.cyclegan, model_config, image_size)
        export_generators(*generators, image_size, export_dir)
    if state_dir is not None:
        record = {
            "architecture": architecture(model_config, run.config, image_size),
            "steps": result.total_steps,
            "weights_fingerprint": fingerprint,
        }
        save_training_state(run.cyclegan.checkpoint_objects(), state_dir, record)
    if run.checkpoints is not None:
        run.checkpoints.remove_all()
    return result


def train_and_export(
    train_files: list[str],
    model_config: ModelConfig,
    train_config: TrainConfig,
    image_size: int,
    seed: int,
    folders: RunFolders,
    export_dir: str | Path | None,
    distribution: tf.distribute.Strategy | None = None,
    on_step: Callable[[int, CycleGAN], None] | None = None,
    before_checkpoint_commit: Callable[[str], None] | None = None,
    base_model: str | None = None,
    state_dir: str | None = None,
) -> TrainResult:
    """Trains the CycleGAN on `train_files` and exports the serving SavedModel.

    Set up (:func:`prepare_run`), train (:func:`run_loop`), export (:func:`finish_run`).
    With `folders.checkpoint_dir`, the run saves a checkpoint every
    `train.checkpoint_every_steps` steps, resumes from the newest one when started again
    (unless `train.restart`), and deletes them after a successful export. A resumed run
    reaches the same weights as an uninterrupted one.

    Args:
        train_files: TFRecord files (optionally gzipped) of the train split, both domains.
        model_config: Architecture.
        train_config: Training loop, losses, optimizers.
        image_size: Side of the (square) training images.
        seed: Seeds weights, data order, flips and image pools.
        folders: Where the run writes (:meth:`RunFolders.choose`).
        export_dir: Where the serving SavedModel is written; None: nothing is exported (a run
            scored in memory and thrown away:
            :func:`cyclegan_tfx.experiments.compare.train_and_score`).
        distribution: The tf.distribute strategy (the Trainer chooses it from `TF_CONFIG`:
            :func:`cyclegan_tfx.model.distribution.select_distribution`); default: one device.
            In a multi-worker run only the chief writes the folders, checkpoints and export.
        on_step: Called after each step with the number of completed steps and the model
            (monitoring, e.g. scores during training in `cyclegan_tfx.experiments.compare`; tests).
        before_checkpoint_commit: Passed to TrainingCheckpoints (tests).
        base_model: The serving folder of a model to warm start from (its training state,
            :mod:`cyclegan_tfx.model.warm_start`); None: from scratch.
        state_dir: Where to keep the final training state (the Trainer: in the Model
            artifact); None: not kept.

    Returns:
        A summary of the run.

    Raises:
        TrainingDataError: If a domain has no training images.
        TrainingDivergedError: If a loss becomes NaN/Inf (nothing is exported then).
        WarmStartError: If `base_model` cannot be continued from.
    """
    distribution = distribution or tf.distribute.get_strategy()
    run = prepare_run(
        train_files,
        model_config,
        train_config,
        image_size,
        seed,
        folders,
        distribution,
        before_checkpoint_commit,
        base_model,
    )
    start = time.monotonic()
    final = run_loop(run, on_step)
    seconds = time.monotonic() - start
    return finish_run(run, final, seconds, model_config, image_size, export_dir, state_dir)


def serving_generators(
    cyclegan: CycleGAN, model_config: ModelConfig, image_size: int
) -> tuple[keras.Model, keras.Model]:
    """The generators to export (A->B, B->A): float32 whatever precision trained them.

    bfloat16 is a training speed-up. The served model computes in float32: it runs at full
    speed on servers without bfloat16 hardware, and the session-based loader reproduces it to
    a grey level (bfloat16 kernels differ by several between runtimes). The weights are the
    trained float32 weights (mixed precision keeps float32 weights), so nothing is lost.
    """
    trained = cyclegan.served_generators()
    if not cyclegan.mixed_precision or cyclegan.averaged:  # the averaged copies are float32
        return trained
    copies = []
    for network in trained:
        copy = build_generator(model_config, network.name, image_size)  # float32 policy
        copy.set_weights(network.get_weights())
        copies.append(copy)
    return copies[0], copies[1]


def _str(path: str | Path | None) -> str | None:
    return None if path is None else str(path)


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

"""Per-network learning-rate schedules, driven by the training step.

`learning_rate_at` is the closed form (plain Python, used by tests and logs); `NetworkSchedule`
is the same formula as a Keras schedule. Schedules read the CycleGAN's training-step counter,
not the optimizer's own update count, so every optimizer sees its rate for the same step even
when discriminators are updated `n_critic` times per step or one optimizer serves two networks.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import tensorflow as tf

from cyclegan_tfx.config import OptimizerConfig, ScheduleConfig


@dataclasses.dataclass(frozen=True)
class Timeline:
    """Length of a run in steps, and how many final steps `linear_decay` decays over."""

    total_steps: int
    decay_steps: int

    @classmethod
    def from_epochs(cls, epochs: float, decay_epochs: float, steps_per_epoch: int) -> Timeline:
        """Timeline of `epochs` epochs whose last `decay_epochs` decay (the paper's)."""
        total = math.ceil(epochs * steps_per_epoch)
        return cls(total, min(total, math.ceil(decay_epochs * steps_per_epoch)))

    @property
    def decay_start(self) -> int:
        """The step after which `linear_decay` starts decreasing (the paper's n_epochs)."""
        return self.total_steps - self.decay_steps


def learning_rate_at(
    step: int, optimizer: OptimizerConfig, schedule: ScheduleConfig, timeline: Timeline
) -> float:
    """Returns the learning rate used by the update of training step `step` (0-based).

    - constant: `lr`.
    - linear_decay (Zhu et al. 2017): `lr` up to `decay_start`, then
      `lr * (1 - (step - decay_start) / decay_steps)`, reaching 0 at `total_steps`.
    - exponential: `lr * rate ** (step / exponential_decay_steps)`.
    - cosine: `lr * (1 + cos(pi * step / total_steps)) / 2`.
    """
    lr = optimizer.learning_rate
    total = max(timeline.total_steps, 1)
    step = min(max(step, 0), total)
    kind = optimizer.schedule
    if kind == "constant":
        return lr
    if kind == "linear_decay":
        if step <= timeline.decay_start or timeline.decay_steps == 0:
            return lr
        return lr * max(0.0, 1.0 - (step - timeline.decay_start) / timeline.decay_steps)
    if kind == "exponential":
        return lr * schedule.exponential_decay_rate ** (step / schedule.exponential_decay_steps)
    if kind == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
    raise ValueError(f"unknown schedule {kind!r}")


class NetworkSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Keras form of :func:`learning_rate_at`, reading a training-step variable."""

    def __init__(
        self,
        optimizer: OptimizerConfig,
        schedule: ScheduleConfig,
        timeline: Timeline,
        step: tf.Variable | None = None,
    ) -> None:
        """Creates the schedule.

        Args:
            optimizer: Learning rate and schedule kind.
            schedule: Shared schedule parameters.
            timeline: Run length and decay length in steps.
            step: The training-step counter to follow; None follows the optimizer's own
                update count (the argument Keras passes).
        """
        self.optimizer = optimizer
        self.schedule = schedule
        self.timeline = timeline
        self.step = step

    def __call__(self, optimizer_step):
        """Learning rate at the current training step."""
        step = optimizer_step if self.step is None else self.step
        lr = tf.constant(self.optimizer.learning_rate, tf.float32)
        total = tf.constant(float(max(self.timeline.total_steps, 1)), tf.float32)
        step = tf.clip_by_value(tf.cast(step, tf.float32), 0.0, total)
        kind = self.optimizer.schedule
        if kind == "constant":
            return lr
        if kind == "linear_decay":
            if self.timeline.decay_steps == 0:
                return lr
            start = float(self.timeline.decay_start)
            decayed = lr * tf.maximum(0.0, 1.0 - (step - start) / float(self.timeline.decay_steps))
            return tf.where(step <= start, lr, decayed)
        if kind == "exponential":
            rate = self.schedule.exponential_decay_rate
            return lr * tf.pow(rate, step / float(self.schedule.exponential_decay_steps))
        if kind == "cosine":
            return lr * 0.5 * (1.0 + tf.cos(math.pi * step / total))
        raise ValueError(f"unknown schedule {kind!r}")

    def get_config(self):
        """Keras serialisation (plain numbers only)."""
        return {
            "learning_rate": self.optimizer.learning_rate,
            "schedule": self.optimizer.schedule,
            "total_steps": self.timeline.total_steps,
            "decay_steps": self.timeline.decay_steps,
        }


def build_adam(
    optimizer: OptimizerConfig, learning_rate: NetworkSchedule, name: str
) -> keras.optimizers.Optimizer:
    """Adam with the given schedule, the betas and optional clipping of `optimizer`."""
    return keras.optimizers.Adam(
        learning_rate=learning_rate,
        beta_1=optimizer.beta_1,
        beta_2=optimizer.beta_2,
        clipnorm=optimizer.clipnorm,
        name=name,
    )

"""Per-network learning-rate schedules, driven by the training step.

`learning_rate_at` (plain Python, used by tests and logs) and `NetworkSchedule` (a Keras
schedule) evaluate one formula, `_rate`, with Python's or TensorFlow's operations. Schedules
read the CycleGAN's training-step counter, not the optimizer's own update count, so every
optimizer sees its rate for the same step even when discriminators are updated `n_critic` times
per step or one optimizer serves two networks.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

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


@dataclasses.dataclass(frozen=True)
class _Ops:
    """The few operations the schedule formula needs, in plain Python or in TensorFlow."""

    maximum: Callable[[Any, Any], Any]
    where: Callable[[Any, Any, Any], Any]
    power: Callable[[Any, Any], Any]
    cos: Callable[[Any], Any]


_PYTHON = _Ops(max, lambda condition, a, b: a if condition else b, pow, math.cos)
_TENSORFLOW = _Ops(tf.maximum, tf.where, tf.pow, tf.cos)


def _rate(
    step: Any,
    lr: Any,
    optimizer: OptimizerConfig,
    schedule: ScheduleConfig,
    timeline: Timeline,
    ops: _Ops,
) -> Any:
    """The schedule formula of :func:`learning_rate_at`, for a clipped `step` (float)."""
    kind = optimizer.schedule
    if kind == "constant" or (kind == "linear_decay" and timeline.decay_steps == 0):
        return lr
    if kind == "linear_decay":
        start = float(timeline.decay_start)
        decayed = lr * ops.maximum(0.0, 1.0 - (step - start) / float(timeline.decay_steps))
        return ops.where(step <= start, lr, decayed)
    if kind == "exponential":
        rate = schedule.exponential_decay_rate
        return lr * ops.power(rate, step / float(schedule.exponential_decay_steps))
    if kind == "cosine":
        return lr * 0.5 * (1.0 + ops.cos(math.pi * step / float(max(timeline.total_steps, 1))))
    raise ValueError(f"unknown schedule {kind!r}")


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
    step = float(min(max(step, 0), max(timeline.total_steps, 1)))
    return _rate(step, optimizer.learning_rate, optimizer, schedule, timeline, _PYTHON)


class NetworkSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Keras form of :func:`learning_rate_at` (the same formula), reading a step variable."""

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
        return _rate(step, lr, self.optimizer, self.schedule, self.timeline, _TENSORFLOW)

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

"""Per-network learning-rate schedules.

`learning_rate_at` is the closed form (plain Python, used by tests and reports);
`NetworkSchedule` is the same formula as a Keras schedule driven by an optimizer's step.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from cyclegan_tfx.config import OptimizerConfig, ScheduleConfig


def learning_rate_at(
    step: int, optimizer: OptimizerConfig, schedule: ScheduleConfig, total_steps: int
) -> float:
    """Returns the learning rate at `step` (0-based) of a run of `total_steps` steps.

    - constant: `lr`.
    - linear_decay (Zhu et al. 2017): `lr` for the first `decay_start_fraction` of the steps,
      then linearly down to 0 at `total_steps` (the paper's n_epochs + n_epochs_decay).
    - exponential: `lr * rate ** (step / exponential_decay_steps)`.
    - cosine: `lr * (1 + cos(pi * step / total_steps)) / 2`.
    """
    lr = optimizer.learning_rate
    total = max(total_steps, 1)
    step = min(max(step, 0), total)
    if optimizer.schedule == "constant":
        return lr
    if optimizer.schedule == "linear_decay":
        start = schedule.decay_start_fraction * total
        if step <= start:
            return lr
        return lr * max(0.0, 1.0 - (step - start) / max(total - start, 1e-12))
    if optimizer.schedule == "exponential":
        return lr * schedule.exponential_decay_rate ** (step / schedule.exponential_decay_steps)
    if optimizer.schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
    raise ValueError(f"unknown schedule {optimizer.schedule!r}")


@keras.saving.register_keras_serializable(package="cyclegan_tfx")
class NetworkSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Keras form of :func:`learning_rate_at`."""

    def __init__(
        self, optimizer: OptimizerConfig, schedule: ScheduleConfig, total_steps: int
    ) -> None:
        self.optimizer = optimizer
        self.schedule = schedule
        self.total_steps = max(int(total_steps), 1)

    def __call__(self, step):
        """Learning rate at optimizer step `step` (a scalar tensor)."""
        lr = tf.constant(self.optimizer.learning_rate, tf.float32)
        total = tf.constant(float(self.total_steps), tf.float32)
        step = tf.clip_by_value(tf.cast(step, tf.float32), 0.0, total)
        kind = self.optimizer.schedule
        if kind == "constant":
            return lr
        if kind == "linear_decay":
            start = self.schedule.decay_start_fraction * total
            decayed = lr * tf.maximum(0.0, 1.0 - (step - start) / tf.maximum(total - start, 1e-12))
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
            "total_steps": self.total_steps,
        }


def build_optimizer(
    optimizer: OptimizerConfig, schedule: ScheduleConfig, total_steps: int, name: str
) -> keras.optimizers.Optimizer:
    """Builds the Adam optimizer of one network with its own schedule, betas and clipping."""
    return keras.optimizers.Adam(
        learning_rate=NetworkSchedule(optimizer, schedule, total_steps),
        beta_1=optimizer.beta_1,
        beta_2=optimizer.beta_2,
        clipnorm=optimizer.clipnorm,
        name=f"adam_{name}",
    )

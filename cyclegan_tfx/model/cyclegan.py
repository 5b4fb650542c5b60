"""CycleGAN with four separate optimizers (one per network).

Names used here and the paper's (Zhu et al. 2017):
  generator_ab    = G   (A -> B)          discriminator_a = D_X (real A vs fake A)
  generator_ba    = F   (B -> A)          discriminator_b = D_Y (real B vs fake B)

Losses: LSGAN (least squares), cycle consistency L1 weighted by `lambda_cycle`, identity L1
weighted by `lambda_identity * lambda_cycle`. A training step is the reference's order:
one generator update (both generators, from the summed generator objective), then one
discriminator update on fakes drawn from the 50-image history pools.

Each network has its own Adam optimizer, learning rate, betas and schedule; an optimizer
only ever receives the gradients of its own network's variables.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

import keras
import numpy as np
import tensorflow as tf

from cyclegan_tfx.config import NETWORK_NAMES, ModelConfig, TrainConfig
from cyclegan_tfx.model.image_pool import ImagePool
from cyclegan_tfx.model.networks import build_discriminator, build_generator
from cyclegan_tfx.model.schedules import build_optimizer, learning_rate_at

GENERATOR_LOSS_NAMES = ("gan_ab", "gan_ba", "cycle_aba", "cycle_bab", "identity_a", "identity_b")
DISCRIMINATOR_LOSS_NAMES = ("discriminator_a", "discriminator_b")


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite."""

    def __init__(self, network: str, step: int, value: float) -> None:
        super().__init__(
            f"training diverged: the loss of {network} is {value} at step {step}; "
            "lower that network's learning rate (train.optimizers) or enable clipnorm. "
            "No model was exported."
        )
        self.network = network
        self.step = step


def _mse(x: tf.Tensor, target: float) -> tf.Tensor:
    return tf.reduce_mean(tf.square(x - target))


def _l1(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.abs(x - y))


@dataclasses.dataclass
class Networks:
    """The four networks."""

    generator_ab: keras.Model
    generator_ba: keras.Model
    discriminator_a: keras.Model
    discriminator_b: keras.Model

    def get(self, name: str) -> keras.Model:
        """Returns the network called `name` (one of NETWORK_NAMES)."""
        return getattr(self, name)


def build_networks(config: ModelConfig, image_size: int | None = None) -> Networks:
    """Builds the two generators and two discriminators (seed with keras.utils first)."""
    return Networks(
        generator_ab=build_generator(config, "generator_ab", image_size),
        generator_ba=build_generator(config, "generator_ba", image_size),
        discriminator_a=build_discriminator(config, "discriminator_a", image_size),
        discriminator_b=build_discriminator(config, "discriminator_b", image_size),
    )


def network_losses(losses: dict[str, float]) -> dict[str, float]:
    """Groups step losses per network for logs and plots.

    A generator's curve is its adversarial term plus the cycle term it starts and its identity
    term: generator_ab gets gan_ab, cycle_aba (A -> G -> F -> A) and identity_b (G applied to
    B); generator_ba symmetrically. Both generators are optimised on the sum of all six terms.
    """
    return {
        "generator_ab": losses["gan_ab"] + losses["cycle_aba"] + losses["identity_b"],
        "generator_ba": losses["gan_ba"] + losses["cycle_bab"] + losses["identity_a"],
        "discriminator_a": losses["discriminator_a"],
        "discriminator_b": losses["discriminator_b"],
    }


class CycleGAN:
    """Four networks, four optimizers, two image pools and the training step."""

    def __init__(
        self,
        model_config: ModelConfig,
        train_config: TrainConfig,
        total_steps: int,
        seed: int,
        image_size: int | None = None,
    ) -> None:
        """Builds networks and optimizers deterministically from `seed`.

        Args:
            model_config: Architecture.
            train_config: Loss weights, optimizers, schedules, pool size.
            total_steps: Length of the run (schedules decay over it).
            seed: Seeds weights (keras.utils.set_random_seed) and the image pools.
            image_size: Static image size of the networks' inputs, or None.
        """
        keras.utils.set_random_seed(seed)
        self.train_config = train_config
        self.total_steps = total_steps
        self.networks = build_networks(model_config, image_size)
        self.optimizers = {
            name: build_optimizer(
                train_config.optimizers.for_network(name),
                train_config.schedule,
                total_steps,
                name,
            )
            for name in NETWORK_NAMES
        }
        self.pool_a = ImagePool(train_config.pool_size, seed=seed + 1)  # history of fake A
        self.pool_b = ImagePool(train_config.pool_size, seed=seed + 2)  # history of fake B
        self.step = 0
        for name in NETWORK_NAMES:
            self.optimizers[name].build(self.networks.get(name).trainable_variables)
        self._generator_step = tf.function(self._generator_step_impl)
        self._discriminator_step = tf.function(self._discriminator_step_impl)

    # ----------------------------------------------------------------- steps
    def _apply(self, name: str, loss_gradients: list[tf.Tensor]) -> None:
        network = self.networks.get(name)
        self.optimizers[name].apply_gradients(
            zip(loss_gradients, network.trainable_variables, strict=True)
        )

    def _generator_step_impl(self, real_a: tf.Tensor, real_b: tf.Tensor):
        cfg = self.train_config
        g_ab, g_ba = self.networks.generator_ab, self.networks.generator_ba
        d_a, d_b = self.networks.discriminator_a, self.networks.discriminator_b
        with tf.GradientTape() as tape:
            fake_b = g_ab(real_a, training=True)
            fake_a = g_ba(real_b, training=True)
            losses = {
                "gan_ab": _mse(d_b(fake_b, training=False), 1.0),
                "gan_ba": _mse(d_a(fake_a, training=False), 1.0),
                "cycle_aba": cfg.lambda_cycle * _l1(g_ba(fake_b, training=True), real_a),
                "cycle_bab": cfg.lambda_cycle * _l1(g_ab(fake_a, training=True), real_b),
            }
            if cfg.lambda_identity > 0:
                weight = cfg.lambda_identity * cfg.lambda_cycle
                losses["identity_b"] = weight * _l1(g_ab(real_b, training=True), real_b)
                losses["identity_a"] = weight * _l1(g_ba(real_a, training=True), real_a)
            else:
                losses["identity_a"] = losses["identity_b"] = tf.constant(0.0)
            total = tf.add_n(list(losses.values()))
        variables = g_ab.trainable_variables + g_ba.trainable_variables
        gradients = tape.gradient(total, variables)
        split = len(g_ab.trainable_variables)
        self._apply("generator_ab", gradients[:split])
        self._apply("generator_ba", gradients[split:])
        return fake_a, fake_b, losses

    def _discriminator_step_impl(
        self, real_a: tf.Tensor, real_b: tf.Tensor, fake_a: tf.Tensor, fake_b: tf.Tensor
    ):
        losses = {}
        for name, real, fake in (
            ("discriminator_a", real_a, fake_a),
            ("discriminator_b", real_b, fake_b),
        ):
            network = self.networks.get(name)
            with tf.GradientTape() as tape:
                loss = 0.5 * (
                    _mse(network(real, training=True), 1.0)
                    + _mse(network(fake, training=True), 0.0)
                )
            self._apply(name, tape.gradient(loss, network.trainable_variables))
            losses[name] = loss
        return losses

    def generator_step(self, real_a: tf.Tensor, real_b: tf.Tensor):
        """Updates both generators; returns (fake_a, fake_b, losses)."""
        return self._generator_step(real_a, real_b)

    def discriminator_step(self, real_a, real_b, fake_a, fake_b) -> dict[str, tf.Tensor]:
        """Updates both discriminators on the given fakes; returns their losses."""
        return self._discriminator_step(real_a, real_b, fake_a, fake_b)

    def train_step(self, real_a: tf.Tensor, real_b: tf.Tensor) -> dict[str, float]:
        """One CycleGAN step; returns every loss term as a float.

        Raises:
            TrainingDivergedError: If a loss is NaN or infinite.
        """
        fake_a, fake_b, generator_losses = self.generator_step(real_a, real_b)
        pooled_a = self.pool_a.query(fake_a.numpy())
        pooled_b = self.pool_b.query(fake_b.numpy())
        discriminator_losses = self.discriminator_step(
            real_a, real_b, tf.constant(pooled_a), tf.constant(pooled_b)
        )
        losses = {k: float(v) for k, v in {**generator_losses, **discriminator_losses}.items()}
        for network, value in network_losses(losses).items():
            if not math.isfinite(value):
                raise TrainingDivergedError(network, self.step, value)
        self.step += 1
        return losses

    def learning_rates(self, step: int | None = None) -> dict[str, float]:
        """Learning rate each network's optimizer uses at `step` (default: the current step)."""
        step = self.step if step is None else step
        return {
            name: learning_rate_at(
                step,
                self.train_config.optimizers.for_network(name),
                self.train_config.schedule,
                self.total_steps,
            )
            for name in NETWORK_NAMES
        }

    def weights_fingerprint(self) -> str:
        """A short hash of all network weights (for determinism checks)."""
        digest = hashlib.sha256()
        for name in NETWORK_NAMES:
            for weight in self.networks.get(name).get_weights():
                digest.update(np.ascontiguousarray(weight).tobytes())
        return digest.hexdigest()[:16]

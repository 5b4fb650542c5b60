"""CycleGAN with one optimizer per network (or fewer, by strategy), and its training step.

Names used here and the paper's (Zhu et al. 2017):
  generator_ab    = G   (A -> B)          discriminator_a = D_X (real A vs fake A)
  generator_ba    = F   (B -> A)          discriminator_b = D_Y (real B vs fake B)

Losses: LSGAN (least squares), cycle consistency L1 weighted by `lambda_cycle`, identity L1
weighted by `lambda_identity * lambda_cycle`. A training step is the reference's order: the
generator phase (both generators, from the summed generator objective), then `n_critic`
discriminator phases on fakes drawn from the 50-image history pools. With
`train.generator_ema_decay`, each step then moves an averaged copy of each generator towards
it (Yazici et al. 2019); the averaged copies are what is served.

Optimizer strategies (`train.optimizer.strategy`), as update groups:
  independent      {generator_ab} {generator_ba} {discriminator_a} {discriminator_b}, each with
                   its own settings (default: TTUR);
  shared_schedule  the same four groups, one schedule object shared by all;
  joint            {generator_ab, generator_ba} {discriminator_a, discriminator_b};
  single           {all four}: one Adam, one update per step.

An optimizer only ever receives the gradients of its own group's variables. For `single`, the
summed loss L = L_G + L_D is differentiated per block: dL_G/d(generators) and
dL_D/d(discriminators), applied together in one update after both phases. The naive
d(L_G + L_D)/d(all) would contain dL_G/d(discriminators) - the discriminators would be trained
to help the generators fool them (the pitfall of the "one optimizer, summed loss" recipe) - and
dL_D/d(generators) through the fakes. Blocking both cross terms is what makes the single
optimizer a correct CycleGAN; the remaining difference to the other strategies is one shared
learning rate and simultaneous (not alternating) updates.

Over 400 lines on purpose: like the reference's model file, the losses, the optimizers, both
phases and the one compiled step that chains them read top to bottom in one place; the order
of a step is the paper's, and splitting the step from its phases would hide it.
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
from cyclegan_tfx.model.optimizer_strategies import GENERATORS
from cyclegan_tfx.model.precision import resolve_mixed_precision
from cyclegan_tfx.model.schedules import NetworkSchedule, Timeline, build_adam, learning_rate_at


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite."""

    def __init__(
        self, network: str, step: int, value: float, first_step: int | None = None
    ) -> None:
        where = f"at step {step}" if first_step in (None, step) else f"in steps {first_step}-{step}"
        super().__init__(
            f"training diverged: the loss of {network} is {value} {where}; "
            "lower that network's learning rate (train.optimizer) or set its clipnorm. "
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


def build_networks(
    config: ModelConfig, image_size: int | None = None, mixed_precision: bool = False
) -> Networks:
    """Builds the two generators and two discriminators (seed with keras.utils first).

    With `mixed_precision`, layers compute in bfloat16 and keep float32 weights; the output
    layers stay float32, so losses and exported outputs are float32. bfloat16 has float32's
    range, so no loss scaling is needed (unlike float16).
    """
    previous = keras.config.dtype_policy()
    if mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        return Networks(
            generator_ab=build_generator(config, "generator_ab", image_size),
            generator_ba=build_generator(config, "generator_ba", image_size),
            discriminator_a=build_discriminator(config, "discriminator_a", image_size),
            discriminator_b=build_discriminator(config, "discriminator_b", image_size),
        )
    finally:
        keras.config.set_dtype_policy(previous)


LOSS_TERMS = (
    "gan_ab",
    "gan_ba",
    "cycle_aba",
    "cycle_bab",
    "identity_a",
    "identity_b",
    "discriminator_a",
    "discriminator_b",
)
"""Every loss term of a step (:func:`network_losses` groups them per network)."""


def check_finite(losses: dict[str, float], step: int, first_step: int | None = None) -> None:
    """Raises :class:`TrainingDivergedError` naming the first network whose loss is not finite.

    Args:
        losses: Loss terms (of one step, or means over steps `first_step`..`step`).
        step: The (last) step they come from, counted from 1.
        first_step: The first step of a mean, if they are one.
    """
    for network, value in network_losses(losses).items():
        if not math.isfinite(value):
            raise TrainingDivergedError(network, step, value, first_step)


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


def make_training_deterministic() -> None:
    """Same data, params and code -> the same weights, bit for bit (process-wide settings).

    Deterministic kernels, and no grappler remapping: on the fused training step TF 2.16's
    remapper fails at random ("remapper failed: Mutation::Apply error: fanout ... for missing
    node .../BiasAdd") and leaves a different set of fused Conv2D+BiasAdd+activation kernels
    each time, whose rounding differs.
    """
    tf.config.experimental.enable_op_determinism()
    tf.config.optimizer.set_experimental_options({"remapping": False})


class CycleGAN:
    """Four networks, their optimizers, two image pools and the training step."""

    def __init__(
        self,
        model_config: ModelConfig,
        train_config: TrainConfig,
        timeline: Timeline | int,
        seed: int,
        image_size: int | None = None,
        jit_compile: bool = False,
        distribution: tf.distribute.Strategy | None = None,
    ) -> None:
        """Builds networks and optimizers deterministically from `seed`.

        Args:
            model_config: Architecture.
            train_config: Loss weights, optimizer strategy and settings, schedules, pool size.
            timeline: Length of the run (schedules decay over it); an int means that many
                steps with `train.schedule.decay_epochs` ignored (decay over the whole run).
            seed: Seeds weights (keras.utils.set_random_seed) and the image pools. Building
                a CycleGAN also makes TensorFlow deterministic for the process
                (:func:`make_training_deterministic`).
            image_size: Static image size of the networks' inputs, or None.
            jit_compile: Compile the step functions with XLA.
            distribution: tf.distribute strategy; default: the current one (one device
                unless inside a strategy's scope; see `cyclegan_tfx.model.distribution`).
                Batches passed to the step functions are global batches; they are split
                evenly over the replicas and the gradients summed (losses are scaled by
                1 / replicas, so the update equals the single-device one).
        """
        if isinstance(timeline, int):
            timeline = Timeline(timeline, timeline)
        make_training_deterministic()
        keras.utils.set_random_seed(seed)
        self.train_config = train_config
        self.timeline = timeline
        self.distribution = distribution or tf.distribute.get_strategy()
        self.replicas = self.distribution.num_replicas_in_sync
        if image_size is None:
            raise ValueError("CycleGAN needs the image size (its image pools hold images)")
        with self.distribution.scope():
            self._build(model_config, train_config, timeline, image_size)
        # The histories of fake A and fake B: one global pool each (the global batch's fakes),
        # the same on every replica and worker, so several replicas train like one device.
        shape = (image_size, image_size, 3)
        self.pool_a = ImagePool(train_config.pool_size, shape, seed=seed + 1, name="pool_a")
        self.pool_b = ImagePool(train_config.pool_size, shape, seed=seed + 2, name="pool_b")
        # The losses of the steps since the last read, summed on the device.
        self._loss_sums = {
            name: tf.Variable(0.0, trainable=False, name=f"sum_{name}") for name in LOSS_TERMS
        }
        self._loss_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="loss_steps")

        def distributed(function):
            def run(*args):
                return self.distribution.run(function, args=args)

            return tf.function(run, jit_compile=jit_compile)

        self._generator_phase = distributed(self._generator_phase_impl)
        self._discriminator_phase = distributed(self._discriminator_phase_impl)
        self._step = tf.function(self._step_impl)
        self.cycle_translations = tf.function(self._cycle_translations_impl)

    def _build(self, model_config, train_config, timeline, image_size) -> None:
        self.mixed_precision = resolve_mixed_precision(train_config.mixed_precision)
        self.networks = build_networks(model_config, image_size, self.mixed_precision)
        self.step_counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")
        setup = train_config.optimizer
        self.strategy = setup.strategy
        self.groups = setup.strategy.groups
        shared_schedule = NetworkSchedule(
            setup.shared, train_config.schedule, timeline, self.step_counter
        )
        self.optimizers: dict[str, keras.optimizers.Optimizer] = {}
        for group, members in self.groups.items():
            settings = setup.for_network(members[0])
            schedule = (
                shared_schedule
                if not setup.strategy.per_network_settings
                else NetworkSchedule(settings, train_config.schedule, timeline, self.step_counter)
            )
            optimizer = build_adam(settings, schedule, name=f"adam_{group}")
            optimizer.build(self._variables(members))
            self.optimizers[group] = optimizer
        self.optimizer_of = {
            network: group for group, members in self.groups.items() for network in members
        }
        # Built after every trained network, so that their initial weights do not depend on it.
        self.averaged: dict[str, keras.Model] = {}
        if train_config.generator_ema_decay is not None:
            for name in GENERATORS:
                average = build_generator(model_config, name, image_size)  # float32
                average.set_weights(self.networks.get(name).get_weights())
                self.averaged[name] = average

    def served_generators(self) -> tuple[keras.Model, keras.Model]:
        """(A->B, B->A) as served: the averaged copies if any, else the trained generators."""
        if self.averaged:
            return self.averaged["generator_ab"], self.averaged["generator_ba"]
        return self.networks.generator_ab, self.networks.generator_ba

    def _update_averages(self) -> None:
        """Each average <- d * average + (1 - d) * trained; d = min(decay, (1 + t) / (10 + t))."""
        t = tf.cast(self.step_counter, tf.float32)
        decay = tf.minimum(self.train_config.generator_ema_decay, (1.0 + t) / (10.0 + t))
        for name, average in self.averaged.items():
            trained = self.networks.get(name).weights
            for mean, weight in zip(average.weights, trained, strict=True):
                mean.assign(decay * mean + (1.0 - decay) * tf.cast(weight, mean.dtype))

    @property
    def step(self) -> int:
        """Number of completed training steps."""
        return int(self.step_counter.numpy())

    def _variables(self, networks) -> list[tf.Variable]:
        return [v for name in networks for v in self.networks.get(name).trainable_variables]

    def _apply(self, gradients: dict[str, list[tf.Tensor]]) -> None:
        """Applies each group whose networks all have gradients here, with its optimizer."""
        for group, members in self.groups.items():
            if all(name in gradients for name in members):
                grads = [g for name in members for g in gradients[name]]
                self.optimizers[group].apply_gradients(
                    zip(grads, self._variables(members), strict=True)
                )

    # ----------------------------------------------------------------- phases
    def _generator_phase_impl(self, real_a: tf.Tensor, real_b: tf.Tensor):
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
            # Per-replica mean / replicas: the summed replica gradients are the global mean's.
            total = tf.add_n(list(losses.values())) / self.replicas
        # Gradients w.r.t. the generators only: the discriminators are not trained on L_G.
        grads = tape.gradient(total, self._variables(GENERATORS))
        split = len(g_ab.trainable_variables)
        gradients = {"generator_ab": grads[:split], "generator_ba": grads[split:]}
        if self.strategy.separate_generator_update:
            self._apply(gradients)
        # The discriminator phase waits for this one's gradients: the backward pass reads the
        # discriminators' weights, which that phase (or `single`'s one update) overwrites in
        # place. Without this barrier the two race and `single` trains differently at random.
        with tf.control_dependencies(grads):
            fake_a, fake_b = tf.identity(fake_a), tf.identity(fake_b)
        return fake_a, fake_b, losses, gradients

    def _discriminator_phase_impl(self, real_a, real_b, fake_a, fake_b, generator_gradients):
        losses, gradients = {}, dict(generator_gradients)
        for name, real, fake in (
            ("discriminator_a", real_a, fake_a),
            ("discriminator_b", real_b, fake_b),
        ):
            network = self.networks.get(name)
            # `fake` is a constant here (pooled numpy images): L_D never reaches the generators.
            with tf.GradientTape() as tape:
                loss = 0.5 * (
                    _mse(network(real, training=True), 1.0)
                    + _mse(network(fake, training=True), 0.0)
                )
                scaled = loss / self.replicas
            gradients[name] = tape.gradient(scaled, network.trainable_variables)
            losses[name] = loss
        self._apply(gradients)
        return losses

    def _translate_impl(self, real_a: tf.Tensor, real_b: tf.Tensor):
        return (
            self.networks.generator_ba(real_b, training=True),
            self.networks.generator_ab(real_a, training=True),
        )

    def _cycle_translations_impl(self, real_a: tf.Tensor, real_b: tf.Tensor):
        """(fake B, reconstructed A, fake A, reconstructed B) as served (the samples)."""
        g_ab, g_ba = self.served_generators()
        fake_b, fake_a = g_ab(real_a, training=False), g_ba(real_b, training=False)
        return fake_b, g_ba(fake_b, training=False), fake_a, g_ab(fake_a, training=False)

    # ------------------------------------------------------ the compiled step
    def _local(self, batch: tf.Tensor) -> tf.Tensor:
        """Inside a replica: its part of a global batch."""
        if self.replicas == 1:
            return batch
        context = tf.distribute.get_replica_context()
        size = tf.shape(batch)[0] // self.replicas
        start = context.replica_id_in_sync_group * size
        return batch[start : start + size]

    def _global(self, value) -> tf.Tensor:
        """Per-replica batches -> the global batch, in replica order (in the graph)."""
        if self.replicas == 1:
            return value
        return self.distribution.gather(value, axis=0)

    def _reduced(self, losses: dict) -> dict[str, tf.Tensor]:
        if self.replicas == 1:
            return losses
        mean = tf.distribute.ReduceOp.MEAN
        return {k: self.distribution.reduce(mean, v, axis=None) for k, v in losses.items()}

    def _discriminator_update(self, real_a, real_b, fake_a, fake_b, gradients) -> dict:
        """Pools the global fakes, then one discriminator phase on every replica."""
        # The all-gather of several workers loses the static batch size the pools loop over.
        fake_a, fake_b = (
            tf.ensure_shape(fake_a, real_a.shape),
            tf.ensure_shape(fake_b, real_b.shape),
        )
        pooled_a, pooled_b = self.pool_a.query(fake_a), self.pool_b.query(fake_b)

        def phase(real_a, real_b, pooled_a, pooled_b, gradients):
            return self._discriminator_phase_impl(
                self._local(real_a),
                self._local(real_b),
                self._local(pooled_a),
                self._local(pooled_b),
                gradients,
            )

        losses = self.distribution.run(phase, args=(real_a, real_b, pooled_a, pooled_b, gradients))
        return self._reduced(losses)

    def _step_impl(self, real_a: tf.Tensor, real_b: tf.Tensor, extra_batches: tuple):
        """One whole CycleGAN step on global batches, in one graph (see :meth:`train_step`)."""

        def generator_phase(real_a, real_b):
            return self._generator_phase_impl(self._local(real_a), self._local(real_b))

        fake_a, fake_b, generator_losses, gradients = self.distribution.run(
            generator_phase, args=(real_a, real_b)
        )
        if self.strategy.separate_generator_update:
            gradients = {}
        losses = self._discriminator_update(
            real_a, real_b, self._global(fake_a), self._global(fake_b), gradients
        )
        for extra_a, extra_b in extra_batches:

            def translate(real_a, real_b):
                return self._translate_impl(self._local(real_a), self._local(real_b))

            fake_a, fake_b = self.distribution.run(translate, args=(extra_a, extra_b))
            losses = self._discriminator_update(
                extra_a, extra_b, self._global(fake_a), self._global(fake_b), {}
            )
        self.step_counter.assign_add(1)
        if self.averaged:
            self._update_averages()
        losses = {**self._reduced(generator_losses), **losses}
        for name, value in losses.items():
            self._loss_sums[name].assign_add(tf.cast(value, tf.float32))
        self._loss_steps.assign_add(1)
        return losses

    def take_loss_means(self) -> dict[str, float]:
        """The mean of every loss term over the steps since the last call (then reset)."""
        steps = max(int(self._loss_steps.numpy()), 1)
        means = {name: float(total.numpy()) / steps for name, total in self._loss_sums.items()}
        for total in self._loss_sums.values():
            total.assign(0.0)
        self._loss_steps.assign(0)
        return means

    # ------------------------------------------------------- distribution helpers
    def _split(self, batch):
        """Global batch (tensor or numpy) -> per-replica values (identity on one replica)."""
        if self.replicas == 1:
            return tf.convert_to_tensor(batch)
        batch = tf.convert_to_tensor(batch)
        size = int(batch.shape[0])
        if size % self.replicas:
            raise ValueError(
                f"train.batch_size {size} must be divisible by the {self.replicas} replicas"
            )
        local = size // self.replicas
        return self.distribution.experimental_distribute_values_from_function(
            lambda context: batch[
                context.replica_id_in_sync_group * local : (context.replica_id_in_sync_group + 1)
                * local
            ]
        )

    def _gather(self, value) -> np.ndarray:
        """Per-replica batch -> global numpy batch, in replica order."""
        if self.replicas == 1:
            return value.numpy()
        return self.distribution.gather(value, axis=0).numpy()

    def _mean(self, losses: dict) -> dict[str, float]:
        if self.replicas == 1:
            return {k: float(v) for k, v in losses.items()}
        return {
            k: float(self.distribution.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None))
            for k, v in losses.items()
        }

    # ------------------------------------------------------------- public steps
    def generator_step(self, real_a, real_b):
        """Generator phase on global batches; returns (fake_a, fake_b, losses, gradients).

        Fakes are global numpy batches, losses floats; gradients are the (per-replica) values
        the `single` strategy passes on to :meth:`discriminator_step`. Every strategy but
        `single` has applied the generator update when this returns.
        """
        fake_a, fake_b, losses, gradients = self._generator_phase(
            self._split(real_a), self._split(real_b)
        )
        return self._gather(fake_a), self._gather(fake_b), self._mean(losses), gradients

    def discriminator_step(
        self, real_a, real_b, fake_a, fake_b, generator_gradients=None
    ) -> dict[str, float]:
        """Discriminator phase on the given global batches; returns the discriminator losses.

        With `single`, pass the generator phase's gradients: the one optimizer applies them
        together with the discriminators'.
        """
        if self.strategy == "single" and generator_gradients is None:
            raise ValueError("strategy 'single' needs the generator phase's gradients")
        if self.strategy.separate_generator_update:
            generator_gradients = {}
        losses = self._discriminator_phase(
            self._split(real_a),
            self._split(real_b),
            self._split(fake_a),
            self._split(fake_b),
            generator_gradients,
        )
        return self._mean(losses)

    def train_step_on_device(self, real_a, real_b, extra_batches=()) -> dict[str, tf.Tensor]:
        """One CycleGAN step, compiled whole; returns every loss term as a tensor.

        Nothing is copied to the host: the generator phase, the image pools and the
        discriminator phase(s) run in one graph. Read the losses only when needed (the
        training loop does every `train.log_every_steps`, :func:`check_finite` with them).

        Args:
            real_a: Global batch of domain A, float [-1, 1].
            real_b: Global batch of domain B.
            extra_batches: `n_critic - 1` further (real_a, real_b) pairs for the extra
                discriminator updates.
        """
        return self._step(
            tf.convert_to_tensor(real_a),
            tf.convert_to_tensor(real_b),
            tuple((tf.convert_to_tensor(a), tf.convert_to_tensor(b)) for a, b in extra_batches),
        )

    def train_step(self, real_a, real_b, extra_batches=()) -> dict[str, float]:
        """One CycleGAN step (:meth:`train_step_on_device`); returns the losses as floats.

        Raises:
            TrainingDivergedError: If a loss is NaN or infinite.
        """
        losses = {
            k: float(v) for k, v in self.train_step_on_device(real_a, real_b, extra_batches).items()
        }
        check_finite(losses, self.step)
        return losses

    def learning_rates(self, step: int | None = None) -> dict[str, float]:
        """Learning rate each network's optimizer uses at `step` (default: the current step)."""
        step = self.step if step is None else step
        return {
            name: learning_rate_at(
                step,
                self.train_config.optimizer.for_network(name),
                self.train_config.schedule,
                self.timeline,
            )
            for name in NETWORK_NAMES
        }

    def checkpoint_objects(self) -> dict[str, object]:
        """The trackables of a training checkpoint (networks, optimizer slots, step, pools)."""
        return {
            "step": self.step_counter,
            "pool_a": self.pool_a,
            "pool_b": self.pool_b,
            **{name: self.networks.get(name) for name in NETWORK_NAMES},
            **{f"optimizer_{group}": opt for group, opt in self.optimizers.items()},
            **{f"{name}_average": model for name, model in self.averaged.items()},
        }

    def weights_fingerprint(self) -> str:
        """A short hash of all network weights, averaged copies included (determinism checks)."""
        digest = hashlib.sha256()
        networks = [self.networks.get(name) for name in NETWORK_NAMES]
        for network in networks + list(self.averaged.values()):
            for weight in network.get_weights():
                digest.update(np.ascontiguousarray(weight).tobytes())
        return digest.hexdigest()[:16]

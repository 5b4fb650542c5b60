"""Warm start: a new training run that continues from an earlier model's training state.

Every Trainer run keeps its final training state beside the exported SavedModel, in the Model
artifact (`<model>/training_state/`, not pushed): the four networks, the four optimizers' slots
and iteration counts, and both image pools, as a TF checkpoint, with `training_state.json`
saying what architecture it is for. With `train.warm_start: blessed` the pipeline hands the
Trainer the last blessed Model as its base model, and the run starts from that state instead of
from random weights: same networks, optimizer moments and pools; its own data stream, and its
learning-rate schedule from the start (a new run of `train.epochs` epochs).

A base model without a training state, or with one for another architecture (generator,
filters, blocks, image size, pool size, optimizer grouping), is an error that says so:
continuing would need weights of other shapes, and silently starting from scratch would not
be what was asked for.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import tensorflow as tf

from cyclegan_tfx.config import ModelConfig, TrainConfig
from cyclegan_tfx.uri import join, parent

logger = logging.getLogger(__name__)

TRAINING_STATE_DIR = "training_state"
STATE_FILE = "training_state.json"
_CHECKPOINT_PREFIX = "state"


class WarmStartError(ValueError):
    """The base model cannot be continued from (missing, no state, other architecture)."""


@dataclasses.dataclass(frozen=True)
class WarmStart:
    """Where a warm-started run began.

    Attributes:
        base_model: The base model's serving folder.
        base_steps: The total training steps behind the base model.
        base_weights_fingerprint: The base model's weights (its training state's).
        start_weights_fingerprint: The weights once restored, before the first step.
    """

    base_model: str
    base_steps: int
    base_weights_fingerprint: str
    start_weights_fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the model's record and registry entry keep it)."""
        return dataclasses.asdict(self)


def architecture(
    model_config: ModelConfig, train_config: TrainConfig, image_size: int
) -> dict[str, Any]:
    """What a training state's variables' shapes and structure depend on."""
    return json.loads(
        json.dumps(
            {
                "model": dataclasses.asdict(model_config),
                "image_size": image_size,
                "pool_size": train_config.pool_size,
                "optimizer_groups": train_config.optimizer.strategy.groups,
                # Present only when on, so that older states (which have no averages) match.
                **({"generator_ema": True} if train_config.generator_ema_decay else {}),
            },
            default=str,
            sort_keys=True,
        )
    )


def state_dir_of(serving_model_dir: str) -> str:
    """The training state's folder of a Model artifact, from its serving model folder."""
    return join(parent(serving_model_dir.rstrip("/")), TRAINING_STATE_DIR)


def save_training_state(objects: dict[str, object], state_dir: str, record: dict[str, Any]) -> None:
    """Writes the training state (`objects`: the CycleGAN's checkpoint objects) and its record.

    Args:
        objects: :meth:`cyclegan_tfx.model.cyclegan.CycleGAN.checkpoint_objects`.
        state_dir: The folder (:func:`state_dir_of` the exported model).
        record: `architecture`, `steps` (total behind it), `weights_fingerprint`.
    """
    tf.io.gfile.makedirs(state_dir)
    tf.train.Checkpoint(**objects).write(join(state_dir, _CHECKPOINT_PREFIX))
    with tf.io.gfile.GFile(join(state_dir, STATE_FILE), "w") as f:
        f.write(json.dumps(record, indent=2, sort_keys=True) + "\n")


def read_state_record(base_model: str) -> dict[str, Any]:
    """The record of the base model's training state.

    Raises:
        WarmStartError: If the base model has no (readable) training state.
    """
    path = join(state_dir_of(base_model), STATE_FILE)
    if not tf.io.gfile.exists(path):
        raise WarmStartError(
            f"the base model {base_model} has no training state ({path} is missing): it was "
            "trained before models kept one, or the folder was removed. Train once with "
            "train.warm_start: none and bless that model, then warm start from it"
        )
    with tf.io.gfile.GFile(path) as f:
        try:
            return json.loads(f.read())
        except ValueError as error:
            raise WarmStartError(f"{path} is not valid JSON ({error})") from error


def _differences(base: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key in sorted(set(base) | set(current)):
        old, new = base.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            found += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            found.append(f"{prefix}{key}: {old!r} in the base model, {new!r} now")
    return found


def restore_training_state(
    objects: dict[str, object], base_model: str, current: dict[str, Any]
) -> dict[str, Any]:
    """Restores `objects` (networks, optimizers, pools) from the base model's training state.

    Args:
        objects: Checkpoint objects of the new run (their variables are overwritten); those
            the state has and `objects` leaves out, such as the step, are not restored.
        base_model: The base model's serving folder (the Trainer's `fn_args.base_model`).
        current: :func:`architecture` of the new run.

    Returns:
        The base state's record.

    Raises:
        WarmStartError: If there is no state, or it is for another architecture.
    """
    record = read_state_record(base_model)
    differences = _differences(record.get("architecture") or {}, current)
    if differences:
        raise WarmStartError(
            f"cannot warm start from {base_model}: it has another architecture ("
            + "; ".join(differences)
            + "). Set train.warm_start: none to train this architecture from scratch"
        )
    prefix = join(state_dir_of(base_model), _CHECKPOINT_PREFIX)
    try:
        tf.train.Checkpoint(**objects).read(prefix).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise WarmStartError(
            f"cannot warm start from {base_model}: its training state does not fit this "
            f"model ({type(error).__name__}: {str(error)[:300]})"
        ) from error
    return record


def continue_from(
    cyclegan: Any,
    base_model: str,
    model_config: ModelConfig,
    train_config: TrainConfig,
    image_size: int,
) -> WarmStart:
    """Restores the base model's training state into a new run's CycleGAN (its step stays 0).

    Args:
        cyclegan: The new run's :class:`cyclegan_tfx.model.cyclegan.CycleGAN`.
        base_model: The base model's serving folder.
        model_config: The new run's architecture.
        train_config: The new run's training settings (pool size, optimizer grouping).
        image_size: The new run's image size.

    Raises:
        WarmStartError: If the base model cannot be continued from.
    """
    current = architecture(model_config, train_config, image_size)
    # Everything but the step: a warm-started run counts (and schedules) its own steps anew.
    objects = {
        name: trackable
        for name, trackable in cyclegan.checkpoint_objects().items()
        if trackable is not cyclegan.step_counter
    }
    record = restore_training_state(objects, base_model, current)
    warm = WarmStart(
        base_model=base_model,
        base_steps=int(record.get("steps") or 0),
        base_weights_fingerprint=str(record.get("weights_fingerprint")),
        start_weights_fingerprint=cyclegan.weights_fingerprint(),
    )
    logger.info(
        "warm start from %s (%d steps behind it, weights %s)",
        base_model,
        warm.base_steps,
        warm.start_weights_fingerprint,
    )
    return warm

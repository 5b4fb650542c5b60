"""Which tf.distribute strategy trains, and which process is the chief.

- Several workers named in `TF_CONFIG` (what Kubeflow's TFJob, Vertex AI worker pools and
  TFX's distributed Trainers set): `MultiWorkerMirroredStrategy`. Every worker runs the same
  training loop on the same global batches (each keeps its replicas' slice, so the input is
  read in full by every worker: fine for image datasets of this size), the gradients are
  all-reduced, and only the chief writes: checkpoints, curves, samples and the export. The
  other workers restore from the chief's checkpoints when a run resumes.
- Several GPUs on one machine: `MirroredStrategy`.
- Otherwise the default strategy (one device).

The chief is the task of type `chief`, or worker 0 when the cluster names no chief, as in
TensorFlow's own multi-worker guide.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import tensorflow as tf

logger = logging.getLogger(__name__)

TF_CONFIG_VARIABLE = "TF_CONFIG"
"""The environment variable that describes a training cluster."""

_TRAINING_TASKS = ("chief", "worker")


class ClusterConfigError(ValueError):
    """TF_CONFIG cannot be used to train (malformed, or set after TensorFlow started)."""


def cluster_of(environ: Mapping[str, str]) -> dict | None:
    """The parsed `TF_CONFIG` when it names more than one training task, else None.

    Args:
        environ: The process environment (`os.environ`).

    Raises:
        ClusterConfigError: If `TF_CONFIG` is not JSON with a `cluster` and a `task`.
    """
    text = environ.get(TF_CONFIG_VARIABLE, "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
        tasks = sum(len(config["cluster"].get(kind, [])) for kind in _TRAINING_TASKS)
        task = config["task"]
        task_type, task_index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ClusterConfigError(
            f"{TF_CONFIG_VARIABLE} is not a TensorFlow cluster description ({error}): expected "
            '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}'
        ) from error
    if tasks <= 1:
        return None
    return {"cluster": config["cluster"], "task": {"type": task_type, "index": task_index}}


def is_chief_task(task_type: str | None, task_index: int | None, cluster: Mapping) -> bool:
    """Whether a task is the chief: type `chief`, or worker 0 in a cluster without one."""
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    return task_type == "worker" and task_index == 0 and "chief" not in cluster


def select_distribution(environ: Mapping[str, str]) -> tf.distribute.Strategy:
    """The strategy for this process (see the module docstring); logs the choice.

    Must run before TensorFlow executes any operation when `TF_CONFIG` names several workers
    (collective operations are configured at startup).

    Args:
        environ: The process environment (`os.environ`).

    Raises:
        ClusterConfigError: If `TF_CONFIG` is malformed, or TensorFlow already ran operations.
    """
    cluster = cluster_of(environ)
    if cluster is not None:
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec(cluster["cluster"]),
            task_type=cluster["task"]["type"],
            task_id=cluster["task"]["index"],
            rpc_layer="grpc",
        )
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
        except RuntimeError as error:
            raise ClusterConfigError(
                f"{TF_CONFIG_VARIABLE} names several workers, but TensorFlow already ran "
                "operations in this process, so it cannot join the cluster "
                f"({error}): start training in a fresh process"
            ) from error
        logger.info(
            "multi-worker training: %s %d of cluster %s, %d replicas in sync",
            cluster["task"]["type"],
            cluster["task"]["index"],
            cluster["cluster"],
            strategy.num_replicas_in_sync,
        )
        return strategy
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        logger.info("training on %d GPUs (MirroredStrategy)", len(gpus))
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's outputs (always, unless multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    spec = resolver.cluster_spec().as_dict()
    return is_chief_task(resolver.task_type, resolver.task_id, spec)

"""One process of the multi-worker tests (multiworker_test.py starts it, once per worker).

`TF_CONFIG` in the environment makes it a worker of a local cluster; without it, it trains in
one process. Usage: python multiworker_process.py '<json arguments>'.

- {"job": "steps", "out": F, "half_batch": bool, "devices": 2}: four CycleGAN steps on
  fixed global batches of 4; saves every weight to the .npz file F. With "devices": 2,
  MirroredStrategy over the CPU split into two logical devices (one machine, two replicas).
- {"job": "train", "root", "records", "run_dir", "export_dir", "checkpoints", "stop_at"}:
  train_and_export; with "stop_at", the process stops (exit 3) after that step.
"""

import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
from conftest import tiny_config

from cyclegan_tfx.config import NETWORK_NAMES
from cyclegan_tfx.model.distribution import select_distribution

STOPPED = 3


def _steps(args: dict) -> None:
    if args.get("devices") == 2:  # one machine, two devices: the CPU split in two
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
        )
        distribution = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        distribution = select_distribution(os.environ)  # first, before any TF operation
    from cyclegan_tfx.model.cyclegan import CycleGAN

    config = tiny_config(Path("."), batch_size=4)
    rng = np.random.default_rng(0)
    batches = [rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32) for _ in range(8)]
    if args.get("half_batch"):  # what a worker alone would do if gradients were not averaged
        batches = [batch[:2] for batch in batches]
    gan = CycleGAN(config.model, config.train, 4, seed=0, image_size=16, distribution=distribution)
    for step in range(4):
        gan.train_step(batches[2 * step], batches[2 * step + 1])
    weights = {
        f"{name}/{index}": weight
        for name in NETWORK_NAMES
        for index, weight in enumerate(gan.networks.get(name).get_weights())
    }
    np.savez(args["out"], **weights)
    print("REPLICAS", gan.replicas)


class _StopError(Exception):
    pass


def _train(args: dict) -> None:
    from cyclegan_tfx.model.distribution import is_chief, select_distribution
    from cyclegan_tfx.model.train import RunFolders, train_and_export

    distribution = select_distribution(os.environ)  # first: before any TensorFlow operation

    def stop(done, model):
        if done == args.get("stop_at"):
            raise _StopError

    config = tiny_config(Path(args["root"]), epochs=2.0, batch_size=2, checkpoint_every_steps=2)
    try:
        result = train_and_export(
            [args["records"]],
            config.model,
            config.train,
            16,
            config.seed,
            RunFolders.choose(args["run_dir"], args["checkpoints"], chief=is_chief(distribution)),
            args["export_dir"],
            distribution=distribution,
            on_step=stop,
        )
    except _StopError:
        sys.exit(STOPPED)
    print("RESULT", json.dumps({"chief": result.chief, "weights": result.weights_fingerprint}))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    arguments = json.loads(sys.argv[1])
    {"steps": _steps, "train": _train}[arguments["job"]](arguments)

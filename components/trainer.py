"""TFX Trainer entry point (`run_fn`): unpacks the config and calls the training code.

The pipeline passes only the sections that define the model (seed, image size, model, train) in
`custom_config`, so changing e.g. evaluation thresholds does not invalidate the Trainer's cache.
It also passes the fingerprint of the training code (:mod:`cyclegan_tfx.code_fingerprint`):
TFX caches on `custom_config`, so changed training code retrains instead of reusing a model the
old code produced.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import tensorflow as tf
from tfx import v1 as tfx

from cyclegan_tfx.code_fingerprint import CONFIG_KEY as CODE_FINGERPRINT_KEY
from cyclegan_tfx.code_fingerprint import check_running_code, code_fingerprint
from cyclegan_tfx.config import Config, ModelConfig, TrainConfig, build_section
from cyclegan_tfx.model.distribution import is_chief, select_distribution
from cyclegan_tfx.model.model_info import serving_fingerprint, write_model_info
from cyclegan_tfx.model.train import RunFolders, checkpoint_key, train_and_export
from cyclegan_tfx.model.warm_start import WarmStartError, state_dir_of
from cyclegan_tfx.uri import is_url, join

logger = logging.getLogger(__name__)


CHECKPOINT_ROOT_KEY = "checkpoint_root"
LIVE_DIR_KEY = "live_dir"
LOCATION_KEYS = (CHECKPOINT_ROOT_KEY, LIVE_DIR_KEY)
"""Where things are written, not what is trained: not part of the checkpoints' run key."""
TRAINER_MODULE = __name__
"""The module whose code (with everything it imports) the Trainer runs."""


def trainer_custom_config(config: Config, pipeline_root: str) -> dict[str, Any]:
    """The part of the configuration the Trainer depends on (JSON-serialisable).

    Checkpoints live outside the Trainer's per-execution folders, under
    `<pipeline_root>/checkpoints/<run key>`, so a Trainer re-run after an interruption finds
    and resumes them, on any filesystem TensorFlow writes (a gs:// or s3:// root too, so a
    preempted Kubeflow/Vertex AI Trainer pod resumes). The run key includes the code
    fingerprint, so changed code never resumes checkpoints written by the old code.

    With a local pipeline root the training curves (DVCLive) are written live into the
    workspace's `paths.dvclive` folder; remote runs keep them in the Trainer's ModelRun.
    """
    full = config.to_dict()
    local = not is_url(pipeline_root)
    return {
        "seed": config.seed,
        "image_size": config.preprocess.image_size,
        "model": full["model"],
        "train": full["train"],
        CODE_FINGERPRINT_KEY: code_fingerprint(TRAINER_MODULE).digest,
        CHECKPOINT_ROOT_KEY: f"{pipeline_root.rstrip('/')}/checkpoints",
        LIVE_DIR_KEY: str(config.paths.resolve("dvclive")) if local else None,
    }


def base_model_for(fn_args: tfx.components.FnArgs, train_config: TrainConfig) -> str | None:
    """The serving folder of the model to warm start from, or None to train from scratch.

    Raises:
        WarmStartError: If `train.warm_start` is `blessed` and there is no blessed model.
    """
    if train_config.warm_start == "none":
        return None
    if not fn_args.base_model:
        raise WarmStartError(
            "train.warm_start is 'blessed', but no model has been blessed yet in this "
            "pipeline's ML Metadata: run once with train.warm_start: none, then warm start"
        )
    return fn_args.base_model


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Trains the CycleGAN and writes the serving SavedModel to `fn_args.serving_model_dir`.

    The final training state is kept in the Model artifact beside it
    (:mod:`cyclegan_tfx.model.warm_start`), and with `train.warm_start: blessed` the run
    starts from the base model's (the pipeline's last blessed model).

    Raises:
        StaleCodeError: If the code running here differs from the code whose fingerprint the
            pipeline was compiled with (e.g. a Kubeflow image built from another commit).
        WarmStartError: If a warm start was asked for and cannot be made.
    """
    distribution = select_distribution(os.environ)  # first: before any TensorFlow operation
    custom = fn_args.custom_config
    running = check_running_code(TRAINER_MODULE, custom.get(CODE_FINGERPRINT_KEY), "Trainer")
    model_config = build_section(ModelConfig, custom["model"], "model")
    train_config = build_section(TrainConfig, custom["train"], "train")
    files = sorted(f for pattern in fn_args.train_files for f in tf.io.gfile.glob(pattern))
    base_model = base_model_for(fn_args, train_config)
    settings = {k: v for k, v in custom.items() if k not in LOCATION_KEYS}
    settings["base_model"] = base_model  # another base model never resumes these checkpoints
    checkpoint_dir = join(custom[CHECKPOINT_ROOT_KEY], checkpoint_key(files, settings))
    result = train_and_export(
        files,
        model_config,
        train_config,
        image_size=custom["image_size"],
        seed=custom["seed"],
        folders=RunFolders.choose(
            fn_args.model_run_dir, checkpoint_dir, custom.get(LIVE_DIR_KEY), is_chief(distribution)
        ),
        export_dir=fn_args.serving_model_dir,
        distribution=distribution,
        base_model=base_model,
        state_dir=state_dir_of(fn_args.serving_model_dir),
    )
    if not result.chief:  # a multi-worker run's other workers: the chief writes the model
        logger.info("Trainer finished on a non-chief worker: %s", result)
        return
    write_model_info(
        fn_args.serving_model_dir,
        {
            CODE_FINGERPRINT_KEY: running.digest,
            "code_files": list(running.files),
            "weights_fingerprint": result.weights_fingerprint,
            "serving_fingerprint": serving_fingerprint(
                result.weights_fingerprint, custom["image_size"]
            ),
            "image_size": custom["image_size"],
            "steps": result.steps,
            "total_steps": result.total_steps,
            "warm_start": result.warm_start.to_dict() if result.warm_start else None,
            "train_examples": result.examples,
        },
    )
    logger.info("Trainer finished: %s", result)

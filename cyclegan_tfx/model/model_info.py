"""What a trained model is: the record the Trainer writes beside the serving SavedModel.

`<SavedModel>/assets.extra/cyclegan_tfx.json` (TF Serving and KServe ignore `assets.extra/`
except for warm-up requests; the Pusher copies it with the model) holds:

- `code_fingerprint`, `code_files`: the training code that produced the weights
  (:mod:`cyclegan_tfx.code_fingerprint` of `components.trainer`);
- `weights_fingerprint`: a hash of every network's weights;
- `serving_fingerprint`: what makes two pushed models interchangeable for a server: the
  generator weights, the export code (`cyclegan_tfx.model.export` and what it imports) and
  the image size. Two models with the same serving fingerprint answer every request the same,
  so the Pusher does not push a second copy (:func:`find_pushed_version`).

It travels with the model, so the registry records the code that trained a version, not the
code checked out when it was pushed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
from typing import Any

import tensorflow as tf

from cyclegan_tfx.code_fingerprint import code_fingerprint

logger = logging.getLogger(__name__)

MODEL_INFO_FILE = "assets.extra/cyclegan_tfx.json"
EXPORT_MODULE = "cyclegan_tfx.model.export"


def serving_fingerprint(weights_fingerprint: str, image_size: int) -> str:
    """The identity of a served model: weights, export code and image size (see docstring)."""
    payload = json.dumps(
        {
            "weights": weights_fingerprint,
            "export_code": code_fingerprint(EXPORT_MODULE).digest,
            "image_size": image_size,
        },
        sort_keys=True,
    )
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


def write_model_info(export_dir: str, info: dict[str, Any]) -> None:
    """Writes `info` as the model's record (`assets.extra/cyclegan_tfx.json`)."""
    path = posixpath.join(str(export_dir), MODEL_INFO_FILE)
    tf.io.gfile.makedirs(posixpath.dirname(path))
    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write(json.dumps(info, indent=2, sort_keys=True) + "\n")


def read_model_info(model_dir: str) -> dict[str, Any] | None:
    """The record of the SavedModel in `model_dir`, or None (an older export, or unreadable)."""
    path = posixpath.join(str(model_dir), MODEL_INFO_FILE)
    if not tf.io.gfile.exists(path):
        return None
    try:
        with tf.io.gfile.GFile(path) as handle:
            info = json.loads(handle.read())
    except (ValueError, tf.errors.OpError) as error:
        logger.warning("ignoring unreadable model record %s: %s", path, error)
        return None
    return info if isinstance(info, dict) else None


def find_pushed_version(base_directory: str, fingerprint: str) -> str | None:
    """The oldest version under a serving base path whose serving fingerprint is `fingerprint`.

    Args:
        base_directory: The Pusher's destination (`serving/<name>/`, or gs://...).
        fingerprint: A :func:`serving_fingerprint`.

    Returns:
        The version folder's name, or None when no complete pushed version matches.
    """
    if not tf.io.gfile.isdir(base_directory):
        return None
    versions = sorted(
        (name.rstrip("/") for name in tf.io.gfile.listdir(base_directory)),
        key=lambda name: (not name.isdigit(), int(name) if name.isdigit() else 0),
    )
    for version in versions:
        if not version.isdigit():
            continue
        folder = posixpath.join(base_directory, version)
        if not tf.io.gfile.exists(posixpath.join(folder, "saved_model.pb")):
            continue  # an incomplete push: saved_model.pb is copied last
        info = read_model_info(folder)
        if info and info.get("serving_fingerprint") == fingerprint:
            return version
    return None

"""Pusher: the standard TFX Pusher, except that a model already pushed is not pushed again.

A re-run whose blessed model is one that an earlier run already pushed (the Trainer was a
cache hit, or retrained to the same weights after a comment-only change) would make the
standard Pusher copy it into a new version folder: a duplicate version with a new number. Here
the model's serving fingerprint (:mod:`cyclegan_tfx.model.model_info`: weights, export code,
image size) is looked up among the versions already in the push destination first; on a
match the PushedModel artifact is marked pushed *as that existing version*
(`pushed_version`, `pushed_destination`) with `already_pushed = 1`, and nothing is copied.
"""

from __future__ import annotations

import logging
from typing import Any

from tfx import types
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from cyclegan_tfx.model.model_info import find_pushed_version, read_model_info
from cyclegan_tfx.registry.lineage import ALREADY_PUSHED_KEY

logger = logging.getLogger(__name__)


class Executor(pusher_executor.Executor):
    """TFX Pusher executor that does not push a model twice (see module docstring)."""

    def Do(  # noqa: N802 (TFX executor API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Marks an already pushed model as pushed at its version; else pushes as usual."""
        if self.CheckBlessing(input_dict):
            model_path = self.GetModelPath(input_dict)
            destination = pusher_pb2.PushDestination()
            proto_utils.json_to_proto(
                exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
            )
            info = read_model_info(model_path) or {}
            fingerprint = info.get("serving_fingerprint")
            if destination.WhichOneof("destination") == "filesystem" and fingerprint:
                base = destination.filesystem.base_directory
                version = find_pushed_version(base, fingerprint)
                if version is not None:
                    model_push = artifact_utils.get_single_instance(
                        output_dict[standard_component_specs.PUSHED_MODEL_KEY]
                    )
                    logger.info(
                        "the blessed model is already pushed as version %s (serving "
                        "fingerprint %s): not pushing it again",
                        version,
                        fingerprint,
                    )
                    io_utils.copy_dir(model_path, model_push.uri)
                    self._MarkPushed(
                        model_push,
                        pushed_destination=f"{base.rstrip('/')}/{version}",
                        pushed_version=version,
                    )
                    model_push.set_int_custom_property(ALREADY_PUSHED_KEY, 1)
                    return
        super().Do(input_dict, output_dict, exec_properties)


class Pusher(tfx.components.Pusher):
    """The TFX Pusher (same inputs, outputs and parameters) running :class:`Executor`."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

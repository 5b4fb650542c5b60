"""What an executor is given, read the same way under LocalDagRunner and Kubeflow V2 / Vertex AI.

- :func:`pipeline_run_id`: the pipeline run the executor runs in.
- :func:`single_inputs`: the one artifact of each input channel.
- :func:`plain_mlmd_artifact`: an input artifact's ML Metadata proto with plain custom
  properties. Kubeflow V2 hands executors every custom property as a JSON struct value (a
  number is a float: `blessed` is 1.0), which TFX's `Artifact.get_*_custom_property` getters
  read but code reading the proto's `int_value` / `string_value` does not.
"""

from __future__ import annotations

import posixpath

from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils


def pipeline_run_id(context: base_executor.BaseExecutor.Context | None) -> str | None:
    """The id of the pipeline run of an executor's context, or None if it cannot be told.

    LocalDagRunner puts it into the context. Kubeflow V2 / Vertex AI do not; there the task's
    folder is `<pipeline root>/<project number>/<pipeline job id>/<task>_<uuid>/`, its
    temporary folder `.temp/<task>_<uuid>/` under it
    (tfx/orchestration/kubeflow/v2/container/kubeflow_v2_run_executor.py), so the run is the
    pipeline job the task folder is in.
    """
    if context is None:
        return None
    if context.pipeline_run_id:
        return context.pipeline_run_id
    try:
        temporary = context.get_tmp_path().rstrip("/")
    except RuntimeError:
        return None
    task_root = posixpath.dirname(posixpath.dirname(temporary))
    return posixpath.basename(posixpath.dirname(task_root)) or None


def plain_mlmd_artifact(artifact: types.Artifact) -> metadata_store_pb2.Artifact:
    """A copy of the artifact's proto whose custom properties are ints, doubles or strings.

    A whole number is an `int_value` (Kubeflow's 1.0 is ML Metadata's 1), a string a
    `string_value`; anything else is kept as it came.
    """
    proto = metadata_store_pb2.Artifact()
    proto.CopyFrom(artifact.mlmd_artifact)
    for key in list(proto.custom_properties):
        value = artifact.get_custom_property(key)
        target = proto.custom_properties[key]
        if isinstance(value, bool) or (isinstance(value, float) and value.is_integer()):
            target.Clear()
            target.int_value = int(value)
        elif isinstance(value, int):
            target.Clear()
            target.int_value = value
        elif isinstance(value, float):
            target.Clear()
            target.double_value = value
        elif isinstance(value, str):
            target.Clear()
            target.string_value = value
    return proto


def single_inputs(input_dict: dict[str, list[types.Artifact]]) -> dict[str, types.Artifact]:
    """The one artifact of each input channel of an executor."""
    return {key: artifact_utils.get_single_instance(found) for key, found in input_dict.items()}

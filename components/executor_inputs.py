"""What an executor is given, read the same way under LocalDagRunner and Kubeflow V2 / Vertex AI.

- :func:`pipeline_run_id`: the pipeline run the executor runs in.
- :func:`single_inputs`: the one artifact of each input channel.

An input artifact's properties are read through :func:`cyclegan_tfx.mlmd.plain_mlmd_artifact`
(Kubeflow V2 hands executors JSON-valued ones).
"""

from __future__ import annotations

import posixpath

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


def single_inputs(input_dict: dict[str, list[types.Artifact]]) -> dict[str, types.Artifact]:
    """The one artifact of each input channel of an executor."""
    return {key: artifact_utils.get_single_instance(found) for key, found in input_dict.items()}

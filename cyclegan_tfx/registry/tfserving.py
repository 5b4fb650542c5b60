"""TF Serving's side of the registry: its model config file and its model status API.

`models.config` is built and parsed with TF Serving's own protos
(`tensorflow_serving.config.model_server_config_pb2`, from the pinned `tensorflow-serving-api`)
and `text_format`, so what is written is what `tensorflow_model_server --model_config_file`
parses.

Version labels and a running server: TF Serving assigns a label only to a version that is
already loaded, unless it was started with `--allow_version_labels_for_unavailable_models`,
and even then only a *new* label may point at an unloaded version. Moving `production` from
version N to N+1 in one config reload is therefore refused while N+1 is still loading. The
documented procedure (TF Serving's serving_config guide, "Assigning String Labels to Model
Versions") is two configs: first serve N and N+1 with the label still on N, then, once N+1 is
AVAILABLE, move the label. :func:`wait_until_available` is the "once it is loaded" step; it
asks the server's REST status API (`GET /v1/models/<name>/versions/<version>`).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

logger = logging.getLogger(__name__)

HEADER = "# Written by `cyclegan-tfx models` (promote/rollback rewrite it); do not edit.\n"
AVAILABLE = "AVAILABLE"


class ServingConfigError(ValueError):
    """A models.config that TF Serving would not parse, or not the shape the registry writes."""


class ServerWaitError(RuntimeError):
    """The server did not report the version AVAILABLE in time (the message says what to do)."""


def models_config(
    name: str, base_path: str, versions: list[str], labels: dict[str, str]
) -> model_server_config_pb2.ModelServerConfig:
    """The ModelServerConfig serving `versions` of one model, with version `labels`.

    Args:
        name: The model name clients call (`/v1/models/<name>`).
        base_path: The folder holding the numeric version folders, as the server sees it.
        versions: The versions to load (`model_version_policy.specific`).
        labels: Label -> version (each must be one of `versions`).

    Raises:
        ServingConfigError: If a label points at a version that is not served.
    """
    for label, version in labels.items():
        if version not in versions:
            raise ServingConfigError(f"label {label!r} -> {version}, which is not served")
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name = name
    model.base_path = base_path
    model.model_platform = "tensorflow"
    model.model_version_policy.specific.versions.extend(int(v) for v in versions)
    for label, version in labels.items():
        model.version_labels[label] = int(version)
    return config


def models_config_text(config: model_server_config_pb2.ModelServerConfig) -> str:
    """The text proto TF Serving's `--model_config_file` reads (with a header comment)."""
    return HEADER + text_format.MessageToString(config)


def parse_models_config(text: str) -> model_server_config_pb2.ModelServerConfig:
    """Parses a `--model_config_file` the way TF Serving does (text proto).

    Raises:
        ServingConfigError: If the text is not a valid ModelServerConfig.
    """
    try:
        return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as error:
        raise ServingConfigError(f"not a TF Serving ModelServerConfig: {error}") from None


def version_state(server: str, model: str, version: str, timeout: float = 5.0) -> str | None:
    """The state TF Serving reports for one version (`AVAILABLE`, `LOADING`, ...), or None.

    None means the server does not know the version (yet) or could not be reached.
    """
    url = f"{server.rstrip('/')}/v1/models/{model}/versions/{version}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read().decode())
    except (urllib.error.URLError, OSError, ValueError) as error:
        logger.debug("status of %s %s: %s", model, version, error)
        return None
    for status in body.get("model_version_status", []):
        if str(status.get("version")) == str(version):
            return status.get("state")
    return None


def wait_until_available(
    server: str,
    model: str,
    version: str,
    *,
    timeout_s: float,
    poll_s: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Polls the server's status API until `version` of `model` is AVAILABLE.

    Raises:
        ServerWaitError: If it is not AVAILABLE within `timeout_s` seconds.
    """
    if not server.startswith(("http://", "https://")):
        raise ServerWaitError(f"--server must be an http(s) URL of TF Serving's REST API: {server}")
    deadline = clock() + timeout_s
    state = None
    while True:
        state = version_state(server, model, version)
        if state == AVAILABLE:
            logger.info("%s version %s is AVAILABLE on %s", model, version, server)
            return
        if clock() >= deadline:
            break
        sleep(poll_s)
    raise ServerWaitError(
        f"{server} did not report {model} version {version} AVAILABLE within {timeout_s:g} s "
        f"(last state: {state or 'unknown'}). Is the server polling this models.config "
        "(--model_config_file_poll_wait_seconds) and can it load the version? Check its log, "
        "then run the command again"
    )

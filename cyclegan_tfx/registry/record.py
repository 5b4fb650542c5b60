"""Records a pushed model in the model registry (serving/<name>/registry.json).

The pipeline's PushRecorder (components/push_recorder.py) runs :func:`record_version` right
after the Pusher, in every runner, with the lineage of the run's artifacts and the
:func:`run_provenance` taken when the pipeline was built; :func:`recorded_push` reads back what
a local run recorded. The Pusher only copies the SavedModel; the record adds what
`cyclegan-tfx models` shows about it: the evaluation both ways (FID with its spread and the
identity mapping's, KID, ground-truth MAE/PSNR/SSIM where the data has them), every check of
the gate, the baseline it beat, the data version (`data.dvc` md5), the git commit, the params
hash, the optimizer strategy, the code and weights fingerprints, the push time and its
lineage.

`cyclegan-tfx models register [VERSION ...]` registers versions after the fact from ML
Metadata (pushed before the registry existed, or with a lost entry).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import ml_metadata as mlmd

from cyclegan_tfx.config import RUN_OUTPUT_PATHS, Config
from cyclegan_tfx.evaluation.gate import summary_values
from cyclegan_tfx.evaluation.gate_report import evaluation_gate, evaluation_metrics
from cyclegan_tfx.evaluation.metric_keys import KEYS
from cyclegan_tfx.mlmd import open_store, run_artifacts
from cyclegan_tfx.model.model_info import read_model_info
from cyclegan_tfx.registry import lineage, provenance
from cyclegan_tfx.registry.store import ModelRegistry, utc_from_epoch, utc_now
from cyclegan_tfx.uri import is_url

logger = logging.getLogger(__name__)

AT_PUSH_ONLY = ("data", "git", "params_hash", "optimizer_strategy")
"""Entry fields only known when recorded right after the push."""
PUSH_RECORD_TYPE = "cyclegan_tfx.PushRecord"
"""Artifact type of the PushRecorder's output (components/push_recorder.py)."""
PUSH_RECORD_FILE = "record.json"
"""The file in a PushRecord artifact: the version, whether it was registered now, the entry."""
RECORDED_VERSION_KEY = "recorded_version"
"""PushRecord properties: the version ("" when nothing was pushed), ..."""
NEWLY_REGISTERED_KEY = "newly_registered"
"""... 1 when this record registered it (0: it was registered already), ..."""
RECORDED_BY_RUN_KEY = "recorded_by_run"
"""... and the pipeline run that recorded it."""


def model_registry(config: Config, serving_dir: str | None = None) -> ModelRegistry:
    """The registry of a serving folder (default the pipeline's, see `Config.serving_dir`)."""
    return ModelRegistry(serving_dir or config.serving_dir(), config.pipeline.name)


@dataclasses.dataclass(frozen=True)
class RecordedPush:
    """The version the newest run pushed, and whether this run wrote it.

    Attributes:
        version: The serving version.
        already_pushed: True when this run pushed nothing new: its blessed model had been
            pushed before (as `version`; the Pusher found it there, or was a cache hit), so
            nothing was copied and nothing new registered.
    """

    version: str
    already_pushed: bool


def model_record(model_dir: str) -> dict[str, Any]:
    """What the Trainer recorded about the model in `model_dir` (code, weights), for an entry."""
    info = read_model_info(model_dir) or {}
    return {
        "training_code": {
            "fingerprint": info.get("code_fingerprint"),
            "files": info.get("code_files"),
        },
        "weights_fingerprint": info.get("weights_fingerprint"),
        "serving_fingerprint": info.get("serving_fingerprint"),
        "total_steps": info.get("total_steps", info.get("steps")),
        "warm_start": info.get("warm_start"),
    }


def _base_version(registry: ModelRegistry, warm_start: dict[str, Any] | None) -> str | None:
    """The registered version a warm-started model continued from (by its weights)."""
    if not warm_start:
        return None
    base = warm_start.get("base_weights_fingerprint")
    found = [
        version
        for version, entry in registry.read()["versions"].items()
        if base and entry.get("weights_fingerprint") == base
    ]
    return min(found, key=int) if found else None


def _lineage_model(entry: dict[str, Any]) -> dict[str, Any]:
    """The Model artifact an entry's lineage names ({} when it names none)."""
    return (entry.get("lineage") or {}).get("model") or {}


def _baseline(
    registry: ModelRegistry,
    store: mlmd.MetadataStore | None,
    push: lineage.PushLineage,
    baseline_values: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """The baseline the version beat: its latest earlier version (registered, else any push).

    Registered versions are matched by the baseline's Model artifact id or uri; without an
    ML Metadata `store` (a scheduled run's PushRecorder) only registered versions are known.
    """
    if push.baseline_model is None:
        return None
    model_id, model_uri = push.baseline_model.id, push.baseline_model.uri
    earlier = [
        version
        for version, entry in registry.read()["versions"].items()
        if _lineage_model(entry).get("id") == model_id
        or _lineage_model(entry).get("uri") == model_uri
    ]
    if not earlier and store is not None:
        earlier = lineage.pushed_versions_of_model(store, model_id)
    earlier = [v for v in earlier if v.isdigit() and int(v) < int(push.version)]
    return {
        "version": max(earlier, key=int) if earlier else None,
        "model_artifact_id": model_id,
        "model_uri": model_uri,
        **summary_values(baseline_values or {}),
    }


def _entry(
    registry: ModelRegistry,
    store: mlmd.MetadataStore | None,
    push: lineage.PushLineage,
    provenance: dict[str, Any] | None,
    pipeline_run: str | None,
) -> dict[str, Any]:
    """The registry entry of a push; `provenance` (:func:`run_provenance`) None: backfilled."""
    metrics = evaluation_metrics(push.evaluation.uri) if push.evaluation else {}
    candidate = metrics.get("candidate", {})
    checks = evaluation_gate(push.evaluation.uri)[0] if push.evaluation else []
    entry: dict[str, Any] = {
        "pushed_at": utc_from_epoch(int(push.version)) if push.version.isdigit() else None,
        "pipeline_run": pipeline_run,
        "metrics": {
            **summary_values(candidate),
            "backbone": candidate.get(KEYS["a2b"].backbone),
        },
        "gate": [check.to_dict() for check in checks],
        "baseline": _baseline(registry, store, push, metrics.get("baseline")),
        "lineage": push.to_dict(),
        **model_record(registry.version_path(push.version)),
    }
    if entry["warm_start"]:
        entry["warm_start"] = {
            **entry["warm_start"],
            "base_version": _base_version(registry, entry["warm_start"]),
        }
    if provenance is not None:
        entry |= {key: provenance.get(key) for key in AT_PUSH_ONLY}
    else:
        # Today's data.dvc, commit and params need not be the ones the version was made from.
        entry |= dict.fromkeys(AT_PUSH_ONLY)
        entry["backfilled_at"] = utc_now()
    return entry


def run_outputs(config: Config) -> list[str]:
    """What a pipeline run writes, relative to the project: changes there are not dirt.

    DVC's lock files are among them: `dvc repro` rewrites them as stages finish.
    """
    root = Path(config.paths.root).resolve()
    outputs = ["dvc.lock", "**/dvc.lock"]
    for name in RUN_OUTPUT_PATHS:
        if is_url(getattr(config.paths, name)):
            continue  # not in the project's tree
        path = config.paths.resolve(name)
        if path.is_relative_to(root):
            outputs.append(path.relative_to(root).as_posix())
    return outputs


def run_provenance(config: Config, *, data: bool = True) -> dict[str, Any]:
    """Where a run's model comes from, as its registry entry records it (`AT_PUSH_ONLY`).

    Taken when the pipeline is built (before the run writes anything) and handed to the
    PushRecorder as an execution property.

    Args:
        config: The configuration of the run.
        data: Whether the project's `data.dvc` is the run's data. A compiled Kubeflow pipeline
            reads the folder its `examples_root` parameter names at run time, so there the
            data version is left empty and the lineage's Examples artifact says what it read.
    """
    root = config.paths.root
    return {
        "data": provenance.data_version(root) if data else None,
        "git": provenance.git_state(root, run_outputs(config)),
        "params_hash": provenance.params_hash(config),
        "optimizer_strategy": provenance.optimizer_strategy(config.train),
    }


def record_version(
    registry: ModelRegistry,
    push: lineage.PushLineage,
    provenance: dict[str, Any] | None,
    pipeline_run: str | None,
) -> bool:
    """Registers a pushed version unless it is registered already (by the run that pushed it).

    Args:
        registry: The registry of the push destination.
        push: The push's lineage (from ML Metadata or from the run's artifacts).
        provenance: :func:`run_provenance` of the run.
        pipeline_run: The pipeline run id that records it.

    Returns:
        Whether the version was registered now.
    """
    if registry.entry(push.version) is not None:
        logger.info("version %s is already registered", push.version)
        return False
    registry.record(push.version, _entry(registry, None, push, provenance, pipeline_run))
    logger.info("registered version %s in %s", push.version, registry.registry_path)
    return True


def recorded_push(config: Config, run_id: str) -> RecordedPush | None:
    """The version a local run's PushRecorder recorded, read back from ML Metadata.

    Returns:
        The version, with `already_pushed` unless this very run registered it (a cached
        PushRecorder's record is an earlier run's); None when the run pushed nothing.
    """
    artifacts = run_artifacts(config.paths.metadata_path, config.pipeline.name, run_id)
    records = [
        a
        for a in artifacts.get(PUSH_RECORD_TYPE, [])
        if a.custom_properties[RECORDED_VERSION_KEY].string_value
    ]
    if not records:
        logger.info("the run pushed no model; registry unchanged")
        return None
    newest = max(records, key=lambda a: a.id)
    properties = newest.custom_properties
    registered_now = (
        properties[NEWLY_REGISTERED_KEY].int_value == 1
        and properties[RECORDED_BY_RUN_KEY].string_value == run_id
    )
    return RecordedPush(properties[RECORDED_VERSION_KEY].string_value, not registered_now)


def backfill(
    config: Config, versions: list[str] | None = None, registry: ModelRegistry | None = None
) -> list[str]:
    """Registers pushed versions from ML Metadata after the fact (replacing their metadata).

    For versions pushed before the registry existed, or whose entry was lost or recorded
    incompletely. Metrics, baseline, push time and lineage come from ML Metadata; the data
    version, git commit, params hash and strategy of that time are kept from the existing
    entry when it has them, else left empty.

    Args:
        config: The project configuration (where serving/ and ML Metadata are).
        versions: The serving versions; default: every version on disk whose entry is missing
            or has no metrics.
        registry: The registry to write; default the pipeline's (:func:`model_registry`).

    Returns:
        The versions registered.

    Raises:
        MetadataError: If ML Metadata is missing or does not know a version.
    """
    registry = registry or model_registry(config)
    if versions is None:
        recorded = registry.read()["versions"]
        versions = [
            v
            for v in registry.versions()
            if ((recorded.get(v) or {}).get("metrics") or {}).get(KEYS["a2b"].fid) is None
        ]
    store = open_store(config.paths.metadata_path)
    for version in versions:
        push = lineage.push_lineage(store, config.pipeline.name, version)
        pipeline_run = push.pusher.run if push.pusher else None
        entry = _entry(registry, store, push, None, pipeline_run)
        existing = registry.entry(version) or {}
        entry |= {k: existing[k] for k in AT_PUSH_ONLY if existing.get(k) is not None}
        registry.record(version, entry)
    return versions

"""Records the model the newest local run pushed in the model registry (serving/<name>/).

Called after each local run (`pipeline.local_runner.run_and_report`). The Pusher only copies the
SavedModel; this adds what `cyclegan-tfx models` shows about it: the evaluation both
ways (FID with its spread and the identity mapping's, KID, ground-truth MAE/PSNR/SSIM where the
data has them), every check of the gate, the baseline it beat, the data version (`data.dvc`
md5), the git commit, the params hash, the optimizer strategy, the code and weights
fingerprints, the push time and its ML Metadata lineage.

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
from cyclegan_tfx.model.uri import is_url
from cyclegan_tfx.registry import lineage, provenance
from cyclegan_tfx.registry.store import ModelRegistry, utc_from_epoch, utc_now

logger = logging.getLogger(__name__)

AT_PUSH_ONLY = ("data", "git", "params_hash", "optimizer_strategy")
"""Entry fields only known when recorded right after the push."""


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
    }


def _baseline(
    registry: ModelRegistry,
    store: mlmd.MetadataStore,
    push: lineage.PushLineage,
    baseline_values: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """The baseline the version beat: its latest earlier version (registered, else any push)."""
    if push.baseline_model is None:
        return None
    model_id = push.baseline_model.id
    earlier = [
        version
        for version, entry in registry.read()["versions"].items()
        if ((entry.get("lineage") or {}).get("model") or {}).get("id") == model_id
    ] or lineage.pushed_versions_of_model(store, model_id)
    earlier = [v for v in earlier if v.isdigit() and int(v) < int(push.version)]
    return {
        "version": max(earlier, key=int) if earlier else None,
        "model_artifact_id": model_id,
        "model_uri": push.baseline_model.uri,
        **summary_values(baseline_values or {}),
    }


def _entry(
    config: Config,
    registry: ModelRegistry,
    store: mlmd.MetadataStore,
    push: lineage.PushLineage,
    *,
    at_push: bool,
) -> dict[str, Any]:
    """The registry entry of a push; provenance only when recorded right after the push."""
    metrics = evaluation_metrics(push.evaluation.uri) if push.evaluation else {}
    candidate = metrics.get("candidate", {})
    checks = evaluation_gate(push.evaluation.uri)[0] if push.evaluation else []
    root = config.paths.root
    entry: dict[str, Any] = {
        "pushed_at": utc_from_epoch(int(push.version)) if push.version.isdigit() else None,
        "pipeline_run": push.pusher.run if push.pusher else None,
        "metrics": {
            **summary_values(candidate),
            "backbone": candidate.get(KEYS["a2b"].backbone),
        },
        "gate": [check.to_dict() for check in checks],
        "baseline": _baseline(registry, store, push, metrics.get("baseline")),
        "lineage": push.to_dict(),
        **model_record(registry.version_path(push.version)),
    }
    if at_push:
        entry |= {
            "data": provenance.data_version(root),
            "git": provenance.git_state(root, run_outputs(config)),
            "params_hash": provenance.params_hash(config),
            "optimizer_strategy": provenance.optimizer_strategy(config.train),
        }
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


def record_push(config: Config, run_id: str | None = None) -> RecordedPush | None:
    """Registers the version a pipeline run pushed, if it pushed one.

    A version that is already registered (a re-run whose Pusher was a cache hit, or whose
    blessed model the Pusher found already pushed) is left as it is.

    Args:
        config: The configuration of the run.
        run_id: The pipeline run id; default: the newest run in ML Metadata.

    Returns:
        The pushed serving version, or None when the run pushed nothing.
    """
    metadata_path = config.paths.metadata_path
    artifacts = run_artifacts(metadata_path, config.pipeline.name, run_id)
    pushed = [
        a for a in artifacts.get("PushedModel", []) if a.custom_properties["pushed"].int_value == 1
    ]
    if not pushed:
        logger.info("the run pushed no model; registry unchanged")
        return None
    newest = max(pushed, key=lambda a: a.id)
    version = newest.custom_properties["pushed_version"].string_value
    already = newest.custom_properties[lineage.ALREADY_PUSHED_KEY].int_value == 1
    registry = model_registry(config)
    if registry.entry(version) is not None:
        # Registered by the run that pushed it; here the Pusher found it or was a cache hit.
        logger.info("version %s is already registered", version)
        return RecordedPush(version, True)
    store = open_store(metadata_path)
    push = lineage.push_lineage(store, config.pipeline.name, version)
    registry.record(version, _entry(config, registry, store, push, at_push=True))
    return RecordedPush(version, already)


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
        entry = _entry(config, registry, store, push, at_push=False)
        existing = registry.entry(version) or {}
        entry |= {k: existing[k] for k in AT_PUSH_ONLY if existing.get(k) is not None}
        registry.record(version, entry)
    return versions

"""What `cyclegan-tfx models list` and `models show` print: the rows, the table, the description.

The lineage shown is ML Metadata's when the local store knows the version, else the one
recorded in the registry entry (a scheduled run's, recorded by its PushRecorder).
"""

from __future__ import annotations

from typing import Any

from cyclegan_tfx.config import DIRECTIONS, Config
from cyclegan_tfx.evaluation.metric_keys import KEYS
from cyclegan_tfx.mlmd import MetadataError, open_store
from cyclegan_tfx.registry import lineage
from cyclegan_tfx.registry.store import STAGES, ModelRegistry

_MISSING = "-"


def _number(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else _MISSING


def _short(value: Any, length: int) -> str:
    return str(value)[:length] if value else _MISSING


def _git_text(git: dict[str, Any] | None) -> str:
    if not git:
        return _MISSING
    return git["commit"][:10] + ("+dirty" if git.get("dirty") else "")


def _code_text(code: dict[str, Any] | None) -> str:
    if not code or not code.get("fingerprint"):
        return f"{_MISSING} (not recorded by the Trainer that made this model)"
    return f"{code['fingerprint']} ({len(code.get('files') or ())} files)"


def _metric_lines(metrics: dict[str, Any]) -> list[str]:
    """The evaluation of a version, a line per metric, both directions, ± spread."""

    def value(key: str, digits: int = 2) -> str:
        text = _number(metrics.get(key), digits)
        spread = metrics.get(f"{key}_std")
        return f"{text} ± {spread:.{digits}f}" if isinstance(spread, int | float) else text

    lines = []
    for label, metric, digits in (
        ("MAE", "mae", 2),
        ("PSNR", "psnr", 2),
        ("SSIM", "ssim", 3),
    ):
        keys = [KEYS[d].paired(metric) for d in DIRECTIONS]
        if any(k in metrics for k in keys):
            identity = " / ".join(_number(metrics.get(f"{k}_identity"), digits) for k in keys)
            colour = " / ".join(_number(metrics.get(f"{k}_colour_transfer"), digits) for k in keys)
            cells = " / ".join(value(k, digits) for k in keys)
            lines.append(
                f"  {label + ' a2b / b2a':<16} {cells}  (doing nothing {identity}; "
                f"colour transfer {colour})"
            )
    fids = " / ".join(value(KEYS[d].fid) for d in DIRECTIONS)
    identity = _number(metrics.get(KEYS["a2b"].fid_identity))
    colour = " / ".join(_number(metrics.get(KEYS[d].fid_colour_transfer)) for d in DIRECTIONS)
    lines.append(
        f"  FID a2b / b2a    {fids}  (doing nothing {identity}; colour transfer {colour}; "
        f"backbone {metrics.get('backbone') or _MISSING})"
    )
    kids = " / ".join(_number(metrics.get(KEYS[d].kid), 4) for d in DIRECTIONS)
    lines.append(f"  KID a2b / b2a    {kids}")
    return lines


def _baseline_text(baseline: dict[str, Any] | None) -> str:
    if not baseline:
        return "none"
    name = baseline.get("version") or f"model#{baseline.get('model_artifact_id')}"
    return f"{name} ({_number(baseline.get('fid_a2b'))}/{_number(baseline.get('fid_b2a'))})"


def version_rows(registry: ModelRegistry) -> list[dict[str, Any]]:
    """One row per version on disk or in the registry, oldest first, with its stages."""
    data = registry.read()
    in_stage = {stage: registry.stage_version(stage) for stage in STAGES}
    on_disk = set(registry.versions())
    rows = []
    for version in sorted(on_disk | set(data["versions"]), key=int):
        entry = data["versions"].get(version, {})
        rows.append(
            {
                "version": version,
                "semver": entry.get("semver"),
                "stages": [stage for stage, current in in_stage.items() if current == version],
                "on_disk": version in on_disk,
                "registered": version in data["versions"],
                **{k: v for k, v in entry.items() if k not in ("version", "semver")},
            }
        )
    return rows


def list_table(rows: list[dict[str, Any]]) -> str:
    """The `models list` table of :func:`version_rows`."""
    header = (
        "VERSION",
        "REG",
        "STAGE",
        "MAE_A2B",
        "MAE_B2A",
        "FID_A2B",
        "FID_B2A",
        "KID_A2B",
        "KID_B2A",
        "BASELINE(FID a2b/b2a)",
        "DATA(md5)",
        "GIT",
        "PARAMS",
        "STRATEGY",
        "PUSHED",
    )
    table = [header]
    for row in rows:
        metrics = row.get("metrics") or {}
        stage = ",".join(row["stages"]) or _MISSING
        if not row["on_disk"]:
            stage += " (deleted)"
        table.append(
            (
                row["version"],
                row["semver"] or _MISSING,
                stage,
                *(_number(metrics.get(KEYS[d].paired("mae"))) for d in DIRECTIONS),
                *(_number(metrics.get(KEYS[d].fid)) for d in DIRECTIONS),
                *(_number(metrics.get(KEYS[d].kid), 4) for d in DIRECTIONS),
                _baseline_text(row.get("baseline")) if row["registered"] else _MISSING,
                _short((row.get("data") or {}).get("md5"), 12),
                _git_text(row.get("git")),
                _short((row.get("params_hash") or "").removeprefix("sha256:"), 12),
                row.get("optimizer_strategy") or _MISSING,
                row.get("pushed_at") or _MISSING,
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    )


def lineage_for(config: Config, version: str, entry: dict[str, Any]) -> tuple[dict | None, str]:
    """The lineage from ML Metadata if it knows the version, else the one recorded at push."""
    metadata_path = config.paths.metadata_path
    try:
        store = open_store(metadata_path)
        found = lineage.push_lineage(store, config.pipeline.name, version)
        return found.to_dict(), f"ML Metadata {metadata_path}"
    except MetadataError as error:
        recorded = entry.get("lineage")
        if recorded:
            return recorded, f"recorded at push time ({error})"
        return None, str(error)


def _execution_text(execution: dict[str, Any] | None) -> str:
    if not execution:
        return ""
    node, number, state = execution["node"], execution["id"], execution["state"]
    return f"<- {node} execution #{number} ({state}, run {execution['run']})"


def _artifact_line(label: str, artifact: dict[str, Any] | None, extra: str = "") -> str:
    if not artifact:
        return f"  {label:<16} {_MISSING}"
    return f"  {label:<16} #{artifact['id']:<5} {artifact['uri']} {extra}".rstrip()


def _warm_start_text(entry: dict[str, Any]) -> str:
    warm = entry.get("warm_start")
    if not entry:
        return _MISSING
    if not warm:
        return "scratch (no warm start)"
    version = warm.get("base_version") or "an unregistered version"
    return (
        f"{version} (warm start: {warm.get('base_model')}, weights "
        f"{warm.get('base_weights_fingerprint')}, {warm.get('base_steps')} steps behind it)"
    )


def show_text(config: Config, registry: ModelRegistry, version: str) -> str:
    """The human-readable description and lineage of `version`."""
    entry = registry.entry(version) or {}
    stages = [s for s in STAGES if registry.stage_version(s) == version]
    metrics = entry.get("metrics") or {}
    data = entry.get("data") or {}
    lines = [
        f"{registry.model_name} {version} ({entry.get('semver') or 'unregistered'})"
        + (f"  [{', '.join(stages)}]" if stages else ""),
        f"  path             {registry.version_path(version)}",
        f"  pushed           {entry.get('pushed_at') or _MISSING}"
        f"  (pipeline run {entry.get('pipeline_run') or _MISSING})",
        *_metric_lines(metrics),
        f"  baseline beaten  {_baseline_text(entry.get('baseline'))}",
        f"  data version     {data.get('dvc_file', 'data.dvc')} md5 {data.get('md5', _MISSING)}"
        + (f" ({data.get('nfiles')} files, {data.get('size')} bytes)" if data else ""),
        f"  git commit       {_git_text(entry.get('git'))}",
        f"  params hash      {entry.get('params_hash') or _MISSING}",
        f"  optimizer        {entry.get('optimizer_strategy') or _MISSING}",
        f"  training code    {_code_text(entry.get('training_code'))}",
        f"  weights          {entry.get('weights_fingerprint') or _MISSING}",
        f"  started from     {_warm_start_text(entry)}",
    ]
    if not entry:
        lines.append("  (no push metadata: pushed before the registry recorded it)")
    found, source = lineage_for(config, version, entry)
    lines.append(f"Lineage ({source}):")
    if found:
        blessing = found.get("blessing") or {}
        blessed = (blessing.get("properties") or {}).get("blessed")
        reused = ", ".join(
            f"#{e['id']} (run {e['run']})" for e in found.get("trainer_reused_by") or ()
        )
        lines += [
            _artifact_line("PushedModel", found["pushed_model"], _execution_text(found["pusher"])),
            _artifact_line("Model", found["model"], _execution_text(found["trainer"])),
        ]
        if reused:
            lines.append(f"  {'':<16} reused from the cache by Trainer execution {reused}")
        lines += [
            _artifact_line(
                "ModelBlessing",
                found["blessing"],
                f"blessed={blessed} {_execution_text(found['evaluator'])}",
            ),
            _artifact_line("ModelEvaluation", found["evaluation"]),
            _artifact_line("baseline Model", found["baseline_model"]),
            _artifact_line("Examples", found["examples"], _execution_text(found["example_gen"])),
        ]
    lines.append(
        f"  DVC data         {data.get('dvc_file', 'data.dvc')} md5 {data.get('md5', _MISSING)}"
    )
    return "\n".join(lines)

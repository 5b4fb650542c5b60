"""DVC metrics and plots from the last local pipeline run (read back from ML Metadata).

Writes, under `paths.metrics` / `paths.plots`:
- `metrics/evaluation.json`: per direction FID (with bootstrap spread and N), the FID of
  doing nothing, KID, and with ground truth MAE / PSNR / SSIM (translation and doing nothing),
  the baseline's values and whether there was one (`baseline_applied`), blessed yes/no,
  pushed version.
- `reports/gate.json`: every check of the blessing (:mod:`cyclegan_tfx.evaluation.gate`), as
  `make explain-gate --json` prints it.
- `dvclive/`: per-network loss and learning-rate curves of the model's training (DVCLive; the
  Trainer writes them there live, this copies them from the ModelRun when it was cached).
- `plots/fid.json`, `plots/mae.json`: one bar per direction and model (candidate, baseline,
  doing nothing).
- `plots/translations_a2b.png`, `plots/translations_b2a.png`: test images | translations
  (| ground truth).
- `plots/training_samples.png`: the Trainer's last sample grid.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import tensorflow as tf
from tfx.utils import path_utils

from cyclegan_tfx.config import DIRECTIONS, Config
from cyclegan_tfx.evaluation.gate import summary_values
from cyclegan_tfx.evaluation.gate_report import GateReport, evaluation_metrics, gate_report
from cyclegan_tfx.evaluation.metric_keys import metric_key
from cyclegan_tfx.evaluation.quality import SOURCE_DOMAIN
from cyclegan_tfx.evaluation.scorer import read_test_split
from cyclegan_tfx.image_grid import image_grid, png_bytes
from cyclegan_tfx.mlmd import newest_artifact, run_artifacts, run_name
from cyclegan_tfx.model.export import SIGNATURE_FOR_DIRECTION
from cyclegan_tfx.model.train import LIVE_DIR, SAMPLES_FILE

logger = logging.getLogger(__name__)

EVALUATION_METRICS_FILE = "evaluation.json"
GATE_REPORT_FILE = "gate.json"
FID_PLOT_FILE = "fid.json"
MAE_PLOT_FILE = "mae.json"
SAMPLES_PLOT_FILE = "training_samples.png"
TRANSLATIONS_PER_DIRECTION = 8


def translations_plot_file(direction: str) -> str:
    """File name of the test-translation grid of `direction`."""
    return f"translations_{direction}.png"


def _test_images(examples_uri: str, count: int) -> dict[str, dict[str, Any]]:
    """The first `count` test images of each domain, with their ground truth (or None)."""
    files = sorted(tf.io.gfile.glob(str(Path(examples_uri) / "Split-test" / "*")))
    if not files:
        return {}
    split = read_test_split(files)
    return {
        domain: {
            "images": found["images"][:count],
            "truths": None if found["truths"] is None else found["truths"][:count],
        }
        for domain, found in split.items()
        if len(found["images"])
    }


def _translation_grids(model_uri: str, examples_uri: str) -> dict[str, bytes]:
    """PNG grids (input | translation | ground truth, if any) of the first test images."""
    model = tf.saved_model.load(path_utils.serving_model_path(model_uri))
    test = _test_images(examples_uri, TRANSLATIONS_PER_DIRECTION)
    grids = {}
    for direction in DIRECTIONS:
        if SOURCE_DOMAIN[direction] not in test:
            continue
        batch, truths = test[SOURCE_DOMAIN[direction]].values()
        signature = model.signatures[SIGNATURE_FOR_DIRECTION[direction]]
        translated = signature(images=tf.constant(batch))["translated"].numpy()
        columns = [batch, translated] + ([] if truths is None else [truths])
        grids[direction] = png_bytes(image_grid(columns))
    return grids


def bar_points(metrics: dict[str, dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """One bar per direction and model (candidate, baseline, doing nothing, colour transfer).

    Each point has its own `bar` label, so the bars of one direction are drawn side by side,
    not stacked.
    """
    points = []
    for direction in DIRECTIONS:
        key = metric_key(metric, direction)
        candidate = metrics.get("candidate", {})
        roles = [
            ("candidate", candidate.get(key)),
            ("baseline", (metrics.get("baseline") or {}).get(key)),
            ("identity", candidate.get(metric_key(metric, direction, "_identity"))),
            ("colour transfer", candidate.get(metric_key(metric, direction, "_colour_transfer"))),
        ]
        for role, value in roles:
            if value is not None:
                points.append(
                    {
                        "bar": f"{direction} {role}",
                        "direction": direction,
                        "model": role,
                        metric: value,
                    }
                )
    return points


def write_reports(config: Config, run_id: str | None = None) -> tuple[dict[str, Any], GateReport]:
    """Writes DVC metrics and plots of a pipeline run.

    Args:
        config: The configuration of the run.
        run_id: The pipeline run id; default: the newest run in ML Metadata.

    Returns:
        The evaluation summary (metrics/evaluation.json) and the gate report it came from.
    """
    run_id = run_name(config.paths.metadata_path, config.pipeline.name, run_id)
    artifacts = run_artifacts(config.paths.metadata_path, config.pipeline.name, run_id)
    metrics_dir = config.paths.resolve("metrics")
    plots_dir = config.paths.resolve("plots")
    metrics_dir.mkdir(parents=True, exist_ok=True)
    plots_dir.mkdir(parents=True, exist_ok=True)

    model = newest_artifact(artifacts, "Model")
    model_run = newest_artifact(artifacts, "ModelRun")
    evaluation = newest_artifact(artifacts, "ModelEvaluation")
    examples = newest_artifact(artifacts, "Examples")

    metrics = evaluation_metrics(evaluation.uri) if evaluation else {}
    baseline = metrics.get("baseline")
    report = gate_report(artifacts, run_id)
    summary: dict[str, Any] = {
        "pipeline_run_id": run_id,
        "blessed": report.blessed,
        "pushed_version": report.pushed_version,
        "backbone": report.backbone,
        "validation_ok": report.validation_ok,
        "baseline_applied": report.baseline_applied,
        **summary_values(metrics.get("candidate", {})),
        "baseline": summary_values(baseline) if baseline else None,
    }
    (metrics_dir / EVALUATION_METRICS_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    reports_dir = config.paths.resolve("reports")
    reports_dir.mkdir(parents=True, exist_ok=True)
    (reports_dir / GATE_REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    for name, metric in ((FID_PLOT_FILE, "fid"), (MAE_PLOT_FILE, "mae")):
        points = bar_points(metrics, metric)
        (plots_dir / name).write_text(json.dumps(points, indent=2) + "\n")
    if model_run is not None:
        run_dir = Path(model_run.uri)
        if (run_dir / LIVE_DIR).is_dir():  # the curves of the model (the Trainer may be cached)
            live = config.paths.resolve("dvclive")
            if live.resolve() != (run_dir / LIVE_DIR).resolve():
                shutil.rmtree(live, ignore_errors=True)
                shutil.copytree(run_dir / LIVE_DIR, live)
        if (run_dir / SAMPLES_FILE).is_file():
            shutil.copyfile(run_dir / SAMPLES_FILE, plots_dir / SAMPLES_PLOT_FILE)
    if model is not None and examples is not None:
        for direction, png in _translation_grids(model.uri, examples.uri).items():
            (plots_dir / translations_plot_file(direction)).write_bytes(png)
    logger.info("reports written under %s, %s and %s", metrics_dir, plots_dir, reports_dir)
    return summary, report

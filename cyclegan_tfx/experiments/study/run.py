"""One run of the optimizer study: the `study_run` stage of `study/dvc.yaml`.

Trains params.yaml's `seed`, `model` and `train` for `study_run.epochs` (the schedules decay
over the last `study_run.decay_epochs`) on the `study_run.dataset` TFRecords, outside the TFX
pipeline (the same training code as the Trainer), and scores the generators on that dataset's
test split: paired ground-truth MAE / PSNR / SSIM every `study_run.eval_every_epochs`, and at
the end these with FID and KID both ways (the gate's backbone). Writes, under `paths.study_run`:

- `metrics.json`: the final scores, steps, wall time and the fingerprint of the code that ran
  (a DVC metric: `dvc exp show` lists it per experiment);
- `curve.json`: the scores at every evaluation (`{"curve": [{"epoch", "step", ...}]}`).

Usage: cyclegan-tfx study-run [--params params.yaml]   (study/dvc.yaml runs it as
`python -m cyclegan_tfx.cli study-run`, the code of the experiment's own checkout)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from cyclegan_tfx.code_fingerprint import code_fingerprint
from cyclegan_tfx.config import STUDY_DATASETS, Config, ConfigError, load_config
from cyclegan_tfx.evaluation.scorer import TestSetScorer, preprocessed_files
from cyclegan_tfx.experiments.compare import train_and_score
from cyclegan_tfx.model import data
from cyclegan_tfx.model.train import steps_per_epoch

logger = logging.getLogger(__name__)

MODULE = "cyclegan_tfx.experiments.study.run"
METRICS_FILE = "metrics.json"
CURVE_FILE = "curve.json"


def run_config(config: Config) -> Config:
    """The configuration the run trains: `study_run`'s dataset and budget applied."""
    study = config.study_run
    paths = dataclasses.replace(
        config.paths, preprocessed=getattr(config.paths, STUDY_DATASETS[study.dataset])
    )
    schedule = dataclasses.replace(config.train.schedule, decay_epochs=study.decay_epochs)
    train = dataclasses.replace(config.train, epochs=study.epochs, schedule=schedule)
    return config.replace(paths=paths, train=train)


def study_run(config: Config) -> dict[str, Any]:
    """Trains and scores one run (see the module docstring).

    Returns:
        {"metrics": final scores and run facts, "curve": scores per evaluation}.

    Raises:
        FileNotFoundError: If the dataset's TFRecords are missing.
    """
    config = run_config(config)
    logger.info("study run on %s from the code in %s", config.study_run.dataset, __file__)
    train_files, _ = preprocessed_files(config)
    per_epoch = steps_per_epoch(data.count_domains(train_files), config.train.batch_size)
    eval_every = max(1, round(config.study_run.eval_every_epochs * per_epoch))
    test_set = TestSetScorer.from_config(config)
    # FID/KID (a backbone pass over the test split) only at the end; the curve is paired.
    result = train_and_score(config, test_set, eval_every, curve_distances=False)
    if result["final"] is None:
        raise RuntimeError("the run ended without scoring its final step")
    curve = [{"epoch": point["step"] / per_epoch, **point} for point in result["curve"]]
    metrics = {
        **result["final"],
        "steps": result["steps"],
        "epochs": result["steps"] / per_epoch,
        "wall_seconds": result["wall_seconds"],
        "backbone": test_set.backbone.name,
        "code": code_fingerprint(MODULE).digest,
    }
    metrics.pop("step", None)
    return {"metrics": metrics, "curve": curve}


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: 0 on success, 2 on a configuration or missing-data error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_config(args.params)
        out = config.paths.resolve("study_run")
        found = study_run(config)
    except (ConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    (out / METRICS_FILE).write_text(json.dumps(found["metrics"], indent=2) + "\n")
    (out / CURVE_FILE).write_text(json.dumps({"curve": found["curve"]}, indent=2) + "\n")
    print(json.dumps(found["metrics"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared fixtures: tiny configurations and tiny TFRecord datasets."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml

from cyclegan_tfx.config import Config, load_config
from cyclegan_tfx.data.preprocess.beam_pipeline import ImageRecord, to_example
from cyclegan_tfx.evaluation.fid.weights import TORCHSCRIPT
from cyclegan_tfx.image_grid import png_bytes

REPO_ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "cyclegan_tfx.cli"]
"""`cyclegan-tfx`, as dvc.yaml's stages run it (the code of this checkout)."""
QUIET_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
"""The environment dvc.yaml's stages run the CLI with."""


def run_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Runs `cyclegan-tfx ARGS` as a user's `dvc repro` would, capturing its output."""
    return subprocess.run(
        [*CLI, *args], cwd=REPO_ROOT, env=QUIET_ENV, capture_output=True, text=True, timeout=timeout
    )


def write_params(config: Config, path: Path) -> Path:
    """Writes `config` as a params file at `path` (relative paths resolve against its folder)."""
    path.write_text(yaml.safe_dump(config.to_dict()))
    return path


def tiny_config(root: Path, **train_overrides) -> Config:
    """The repo's params.yaml shrunk to seconds-long runs, with paths under `root`."""
    config = load_config(REPO_ROOT / "params.yaml")
    paths = dataclasses.replace(config.paths, root=str(root))
    preprocess = dataclasses.replace(config.preprocess, image_size=16, num_shards=1)
    model = dataclasses.replace(
        config.model,
        generator_filters=4,
        generator_blocks=1,
        discriminator_filters=4,
        discriminator_layers=2,
        generator="unet",
        unet_downsamplings=4,  # 16 px -> 1 px
    )
    train_settings = {
        "batch_size": 2,
        "epochs": 1,
        "pool_size": 4,
        "log_every_steps": 1,
        # float32 whatever the machine: the tests' numbers must not depend on the hardware
        # (bfloat16 is tested where it is the subject).
        "mixed_precision": False,
        "schedule": dataclasses.replace(config.train.schedule, decay_epochs=0.5),
    }
    train = dataclasses.replace(config.train, **{**train_settings, **train_overrides})
    return config.replace(paths=paths, preprocess=preprocess, model=model, train=train)


E2E_SIZE = 16
MECHANICS_GATE = {
    "fid_gap_closed_min": 0.1,
    "mae_vs_colour_transfer_max": None,
    "fid_vs_colour_transfer_max": None,
}


def installed_fid_weights(config: Config) -> Path:
    """The standard FID weights `make setup` installed (the tests evaluate with them)."""
    path = Path(config.evaluate.backbone.cache_dir).expanduser() / TORCHSCRIPT.filename
    assert path.is_file(), f"{path} missing: run `make setup` (it installs the FID weights)"
    return path


def e2e_config(root: Path, epochs: float, **train_overrides) -> Config:
    """tiny_config trained fast enough to beat doing nothing on the synthetic data.

    One constant learning rate of 1e-3 for all four networks: on these 16 px images 40 epochs
    (320 steps) bring the paired error to about 0.46 (A->B) and 0.70 (B->A) of doing nothing's,
    5 epochs only to 0.78 and 0.92.
    The FID statistics cache lives in the workspace, so runs are hermetic.

    This is the lane of the pipeline's mechanics (caching, export, registry, lineage), on a
    16 px synthetic colour task: colour transfer solves it almost exactly and the standard FID
    network sees little in 16 px images, so its gate skips the colour-transfer check and asks
    FID for a tenth of the gap to the truth (:data:`MECHANICS_GATE`). The shipped gate is
    tested on the sample's rings task (`gate_e2e_test.py`).
    """
    config = tiny_config(root, epochs=epochs, **train_overrides)
    fast = {
        name: dataclasses.replace(
            getattr(config.train.optimizer.networks, name),
            learning_rate=1e-3,
            schedule="constant",
        )
        for name in ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")
    }
    networks = dataclasses.replace(config.train.optimizer.networks, **fast)
    optimizer = dataclasses.replace(config.train.optimizer, networks=networks)
    train = dataclasses.replace(config.train, optimizer=optimizer)
    backbone = dataclasses.replace(
        config.evaluate.backbone,
        cache_dir=str(root / "fid-cache"),
        inception_weights=str(installed_fid_weights(config)),
    )
    gate = dataclasses.replace(config.evaluate.gate, **MECHANICS_GATE)
    evaluate = dataclasses.replace(
        config.evaluate, backbone=backbone, ground_truth="paired", gate=gate
    )
    return config.replace(train=train, evaluate=evaluate)


def push_lane_config(root: Path, epochs: float, **train_overrides) -> Config:
    """e2e_config with a gate that pushes every trained model: for the lanes about pushing,
    caching and the registry, where a retrained model may score worse than its baseline.

    The shipped gate has its own lane (gate_e2e_test). FID's gap check is off too: on 24 test
    images of 16 px its spread is about the check's whole range (two models of the same paired
    error, 17.8 and 19.8 against doing nothing's 48.6, closed 0.41 ± 0.21 and 0.09 ± 0.28 of
    the B->A gap). The paired error still refuses an untrained candidate.
    """
    config = e2e_config(root, epochs=epochs, **train_overrides)
    gate = dataclasses.replace(
        config.evaluate.gate,
        fid_max_relative_increase=10.0,
        mae_max_increase=100.0,
        fid_gap_closed_min=-1.0e9,
    )
    return config.replace(evaluate=dataclasses.replace(config.evaluate, gate=gate))


def write_e2e_dataset(root: Path) -> Path:
    """The preprocessed TFRecords of a paired synthetic dataset under root/build/preprocessed."""
    preprocessed = root / "build" / "preprocessed"
    write_examples(
        preprocessed / "train" / "part-00000-of-00001.tfrecord",
        {"A": synthetic_images(16, E2E_SIZE, "A", 0), "B": synthetic_images(12, E2E_SIZE, "B", 1)},
    )
    test_a, truth_b = synthetic_pairs(24, E2E_SIZE, "A", 2)
    test_b, truth_a = synthetic_pairs(24, E2E_SIZE, "B", 3)
    write_examples(
        preprocessed / "test" / "part-00000-of-00001.tfrecord",
        {"A": test_a, "B": test_b},
        split="test",
        truths={"A": truth_b, "B": truth_a},
    )
    return preprocessed


def b_grade(images: np.ndarray) -> np.ndarray:
    """The synthetic data's A -> B mapping: bluish and darker (per-channel affine)."""
    graded = images.astype(np.float64) * np.array([0.5, 0.6, 1.0]) + np.array([0, 10, 40])
    return np.clip(graded, 0, 255).astype(np.uint8)


def _smooth_images(count: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(count, 4, 4, 3))
    images = tf.image.resize(coarse, (size, size), method="bilinear").numpy()
    return np.clip(images, 0, 255).astype(np.uint8)


def synthetic_images(count: int, size: int, domain: str, seed: int) -> np.ndarray:
    """Smooth random images; domain B is a bluish, darker version of the same kind."""
    images = _smooth_images(count, size, seed)
    return b_grade(images) if domain == "B" else images


def synthetic_pairs(count: int, size: int, domain: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Test images of `domain` and their true translation into the other domain.

    B images are graded A images, so the truth of an A image is its grade, and the truth of a B
    image the A image it was graded from.
    """
    originals = _smooth_images(count, size, seed)
    graded = b_grade(originals)
    return (originals, graded) if domain == "A" else (graded, originals)


def write_examples(
    path: Path,
    images: dict[str, np.ndarray],
    split: str = "train",
    truths: dict[str, np.ndarray] | None = None,
) -> Path:
    """Writes a TFRecord of tf.Examples in the project's schema (with ground truth if given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for domain, batch in images.items():
            for index, image in enumerate(batch):
                truth = png_bytes(truths[domain][index]) if truths and domain in truths else b""
                record = ImageRecord(
                    sha256=f"{domain}{index}",
                    path=f"{split}{domain}/{index}.png",
                    split=split,
                    domain=domain,
                    png=png_bytes(image),
                    truth=truth,
                )
                writer.write(to_example(record).SerializeToString())
    return path


@pytest.fixture
def tiny_records(tmp_path: Path) -> Path:
    """A train TFRecord with 6 A images and 4 B images of 16x16."""
    return write_examples(
        tmp_path / "train.tfrecord",
        {"A": synthetic_images(6, 16, "A", 0), "B": synthetic_images(4, 16, "B", 1)},
    )


def saved_model_cli_run(
    model_dir: str | Path, signature: str, images: np.ndarray, workdir: Path
) -> np.ndarray:
    """Runs `saved_model_cli run` (the session-based loader TF Serving uses) as a subprocess.

    Returns:
        The signature's `translated` output, read back from the .npy file the CLI writes.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    inputs = workdir / f"{signature}_in.npy"
    np.save(inputs, images)
    out_dir = workdir / f"{signature}_out"
    cli = Path(sys.executable).with_name("saved_model_cli")
    command = [str(cli), "run", "--dir", str(model_dir), "--tag_set", "serve"]
    command += ["--signature_def", signature, "--inputs", f"images={inputs}"]
    command += ["--outdir", str(out_dir), "--overwrite"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"saved_model_cli run {signature} failed:\n{done.stderr[-3000:]}")
    return np.load(out_dir / "translated.npy")


FAKE_VERSIONS = ("1700000100", "1700000200", "1700000300")


def make_fake_versions(model_dir: Path, versions: tuple[str, ...] = FAKE_VERSIONS) -> None:
    """Pushed-version folders with a placeholder saved_model.pb (for registry tests)."""
    for version in versions:
        (model_dir / version / "variables").mkdir(parents=True)
        (model_dir / version / "saved_model.pb").write_bytes(b"fake")


@pytest.fixture
def fake_registry(tmp_path: Path):
    """A ModelRegistry over three fake pushed versions in serving/cyclegan/."""
    from cyclegan_tfx.registry.store import ModelRegistry

    model_dir = tmp_path / "serving" / "cyclegan"
    make_fake_versions(model_dir)
    return ModelRegistry(model_dir, "cyclegan")


def stored_eval_config(eval_config, has_baseline: bool):
    """The EvalConfig as the TFX Evaluator stores it (change thresholds dropped without a
    baseline: TFX's rubber stamp)."""
    import tensorflow_model_analysis as tfma

    return tfma.utils.update_eval_config_with_defaults(
        eval_config, has_baseline=has_baseline, rubber_stamp=True
    )


def tfma_validate(eval_config, candidate: dict, baseline: dict | None = None):
    """Runs TFMA's metric validation as the Evaluator does, on given metric values.

    String values (the backbone's name) are not validated. Returns (validation_ok, the set of
    failed (metric name, is_diff) pairs).
    """
    from tensorflow_model_analysis.evaluators import metrics_validator
    from tensorflow_model_analysis.metrics import metric_types

    numeric = {k: v for k, v in candidate.items() if not isinstance(v, str)}
    if baseline is None:
        keys = {metric_types.MetricKey(name=n, model_name=""): v for n, v in numeric.items()}
    else:
        keys = {}
        for name, value in numeric.items():
            key = metric_types.MetricKey(name=name, model_name="candidate")
            base = baseline.get(name, value)
            keys[key] = value
            keys[metric_types.MetricKey(name=name, model_name="baseline")] = base
            keys[key.make_diff_key()] = value - base
    result = metrics_validator.validate_metrics(((), keys), eval_config)
    failures = {
        (f.metric_key.name, f.metric_key.is_diff)
        for s in result.metric_validations_per_slice
        for f in s.failures
    }
    return result.validation_ok, failures


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with slow end-to-end lanes first, the quick files after them (order kept within).

    `make test` hands whole files to 2 worker processes (pytest-xdist, `--dist loadfile`) in
    this order: the long lanes start at once and the many quick files fill the gaps at the
    end, instead of a 14-minute file starting last.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)

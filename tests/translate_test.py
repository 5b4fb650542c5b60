"""`python -m cyclegan_tfx.translate`: any image size (resize / tile), same file names, unreadable
files reported and skipped, clear usage errors.

A tiny SavedModel with the exported signatures' contract (uint8 [N, S, S, 3] -> `translated`)
that inverts colours stands in for a generator, so results are exact. The end-to-end lane runs
the command with a model pushed by the real pipeline.
"""

import csv

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from cyclegan_tfx import translate

SIZE = 16


class _Inverter(tf.Module):
    def __init__(self, signature_size: int) -> None:
        super().__init__()
        spec = tf.TensorSpec([None, signature_size, signature_size, 3], tf.uint8, name="images")
        self.a2b = tf.function(lambda images: {"translated": 255 - images}, input_signature=[spec])
        self.b2a = tf.function(lambda images: {"translated": images}, input_signature=[spec])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("serving") / "cyclegan" / "1700000000"
    module = _Inverter(SIZE)
    signatures = {"translate_a2b": module.a2b, "translate_b2a": module.b2a}
    tf.saved_model.save(module, str(path), signatures=signatures)
    return path


@pytest.fixture(scope="module")
def translator(model_dir):
    return translate.load_translator(model_dir, "a2b")


def _image(height, width, seed=0, channels=3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)


def test_signature_size_is_read_from_the_model(translator):
    assert translator.size == SIZE
    assert translator.direction == "a2b"


@pytest.mark.parametrize("shape", [(16, 16), (40, 23), (5, 7), (17, 100)])
def test_tile_mode_translates_every_pixel_at_full_resolution(translator, shape):
    image = _image(*shape)
    out = translate.translate_tiled(image, translator, batch_size=3)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, 255 - image)


@pytest.mark.parametrize("shape", [(16, 16), (120, 45), (9, 300)])
def test_resize_mode_keeps_the_input_size(translator, shape):
    flat = np.full((*shape, 3), 40, np.uint8)
    out = translate.translate_resized(flat, translator)
    assert out.shape == flat.shape
    assert np.abs(out.astype(int) - 215).max() <= 1


def _write_inputs(folder):
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(_image(30, 50, 1)).save(folder / "photo.png")
    Image.fromarray(_image(64, 48, 2)).save(folder / "sub" / "shot.jpg", quality=95)
    Image.fromarray(_image(20, 20, 3, channels=4), "RGBA").save(folder / "alpha.webp")
    Image.fromarray(_image(12, 33, 4)[..., 0], "L").save(folder / "gray.bmp")
    Image.fromarray(_image(40, 40, 5)).save(folder / "broken.png")
    data = (folder / "broken.png").read_bytes()
    (folder / "broken.png").write_bytes(data[: len(data) // 2])  # truncated
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "readme.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"ignored")


READABLE = ["alpha.webp", "gray.bmp", "photo.png", "sub/shot.jpg"]


@pytest.mark.parametrize("mode", ["resize", "tile"])
def test_folder_gets_one_output_per_readable_input_with_the_same_name(
    model_dir, tmp_path, capsys, mode
):
    _write_inputs(tmp_path / "in")
    out_dir = tmp_path / "out"
    status = translate.main(
        [
            "--model",
            str(model_dir),
            "--direction",
            "a2b",
            "--mode",
            mode,
            "--batch-size",
            "2",
            str(tmp_path / "in"),
            str(out_dir),
        ]
    )
    assert status == 0
    outputs = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file())
    assert outputs == sorted([*READABLE, translate.REJECTS_FILE])
    for name in READABLE:
        source, result = Image.open(tmp_path / "in" / name), Image.open(out_dir / name)
        assert result.size == source.size, name
        assert result.format == source.format, name
    with open(out_dir / translate.REJECTS_FILE, newline="") as handle:
        rejects = {row["path"]: row["reason"] for row in csv.DictReader(handle)}
    assert rejects == {
        "broken.png": "truncated",
        "empty.jpg": "empty_file",
        "readme.txt": "not_an_image",
    }
    out = capsys.readouterr().out
    assert "translated 4 of 7 files (a2b" in out
    assert "skipped 3 unreadable file(s)" in out


def test_png_output_matches_the_model_exactly_in_tile_mode(translator, tmp_path):
    image = _image(21, 37, 9)
    Image.fromarray(image).save(tmp_path / "in.png")
    (tmp_path / "src").mkdir()
    (tmp_path / "in.png").rename(tmp_path / "src" / "x.png")
    result = translate.translate_folder(translator, tmp_path / "src", tmp_path / "dst", "tile")
    assert result.translated == ["x.png"] and result.rejects_file is None
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "dst" / "x.png")), 255 - image)


def test_no_readable_image_exits_1(model_dir, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.jpg").write_bytes(b"garbage")
    args = ["--model", str(model_dir), "--direction", "b2a", str(tmp_path / "in"), str(tmp_path)]
    assert translate.main([*args[:-1], str(tmp_path / "out")]) == 1
    assert "translated 0 of 1 files" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing_model", "no SavedModel in"),
        ("base_dir", "it holds versions: pass"),
        ("missing_input", "input folder not found"),
        ("same_folder", "OUT_DIR must differ from IN_DIR"),
        ("bad_batch", "--batch-size must be >= 1"),
    ],
)
def test_usage_errors_exit_2_with_a_message(model_dir, tmp_path, capsys, setup, message):
    in_dir, out_dir, model, extra = tmp_path / "in", tmp_path / "out", model_dir, []
    in_dir.mkdir()
    Image.fromarray(_image(8, 8)).save(in_dir / "a.png")
    if setup == "missing_model":
        model = tmp_path / "nowhere"
    elif setup == "base_dir":
        model = model_dir.parent
    elif setup == "missing_input":
        in_dir = tmp_path / "absent"
    elif setup == "same_folder":
        out_dir = in_dir
    else:
        extra = ["--batch-size", "0"]
    args = ["--model", str(model), "--direction", "a2b", *extra, str(in_dir), str(out_dir)]
    assert translate.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out_dir.exists() or out_dir == in_dir


def test_bad_direction_is_rejected(model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        translate.main(["--model", str(model_dir), "--direction", "x2y", "a", "b"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'x2y'" in capsys.readouterr().err


def test_model_without_the_signature_is_a_clear_error(tmp_path):
    module = _Inverter(SIZE)
    tf.saved_model.save(module, str(tmp_path / "m"), signatures={"other": module.a2b})
    with pytest.raises(translate.TranslateError, match="has no signature 'translate_a2b'"):
        translate.load_translator(tmp_path / "m", "a2b")


def test_output_folder_inside_the_input_folder_is_not_read_back(translator, tmp_path):
    Image.fromarray(_image(16, 16)).save(tmp_path / "a.png")
    translate.translate_folder(translator, tmp_path, tmp_path / "out")
    again = translate.translate_folder(translator, tmp_path, tmp_path / "out")
    assert again.translated == ["a.png"]

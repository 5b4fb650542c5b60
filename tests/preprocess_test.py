"""Tests of the Beam preprocessing job (cyclegan_tfx.data.preprocess)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import yaml
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from messy_dataset import (
    EXPECTED_DUPLICATES,
    EXPECTED_EXAMPLES,
    EXPECTED_REJECTS,
    encode,
    gray16_png,
    make_dataset,
    noise_rgb,
    palette_png,
    truncated,
    write,
)
from PIL import Image

from cyclegan_tfx.config import PreprocessConfig
from cyclegan_tfx.data import schema
from cyclegan_tfx.data.preprocess import beam_pipeline, images
from cyclegan_tfx.data.preprocess.__main__ import main
from cyclegan_tfx.evaluation.colour_transfer import fit, transfer

REPO = Path(__file__).resolve().parents[1]
IMAGE_SIZE = 24
NUM_SHARDS = 3
CONFIG = PreprocessConfig(
    image_size=IMAGE_SIZE,
    num_shards=NUM_SHARDS,
    extensions=(".png", ".jpg", ".jpeg", ".tif", ".tiff"),
)
# FnApiRunner: what the DirectRunner falls back to, without its attempt to download Prism.
RUNNER = "FnApiRunner"


def _rgb_array(data: bytes) -> np.ndarray:
    return np.asarray(images.decode_to_rgb(data, "test"))


# --- images.py ---------------------------------------------------------------------------------


def test_grayscale_l_becomes_rgb() -> None:
    gray = Image.fromarray(np.arange(400, dtype=np.uint8).reshape(20, 20) % 200)
    rgb = _rgb_array(encode(gray))
    assert rgb.shape == (20, 20, 3)
    np.testing.assert_array_equal(rgb[..., 0], np.asarray(gray))
    np.testing.assert_array_equal(rgb[..., 1], rgb[..., 2])


def test_rgba_is_composited_on_white() -> None:
    pixels = np.zeros((20, 20, 4), dtype=np.uint8)
    pixels[:, :10] = (255, 0, 0, 0)  # fully transparent red -> white
    pixels[:, 10:15] = (0, 0, 255, 255)  # opaque blue
    pixels[:, 15:] = (255, 0, 0, 128)  # half-transparent red over white
    rgb = _rgb_array(encode(Image.fromarray(pixels)))
    assert tuple(rgb[0, 0]) == (255, 255, 255)
    assert tuple(rgb[0, 12]) == (0, 0, 255)
    red, green, blue = (int(v) for v in rgb[0, 17])
    assert red == 255 and 120 <= green <= 135 and 120 <= blue <= 135


def test_la_is_composited_on_white() -> None:
    pixels = np.zeros((20, 20, 2), dtype=np.uint8)  # black, fully transparent
    rgb = _rgb_array(encode(Image.fromarray(pixels, mode="LA")))
    assert tuple(rgb[5, 5]) == (255, 255, 255)


def test_palette_with_transparency() -> None:
    rgb = _rgb_array(palette_png())
    assert tuple(rgb[0, 0]) == (255, 255, 255)  # transparent index -> white
    assert tuple(rgb[0, 15]) == (255, 0, 0)


def test_16bit_grayscale_is_scaled_not_clipped() -> None:
    source = Image.open(io.BytesIO(gray16_png()))
    assert source.mode.startswith("I")  # Pillow decodes 16-bit PNG as I;16 (or I)
    rgb = _rgb_array(gray16_png())
    assert tuple(rgb[5, 5]) == (128, 128, 128)  # 32768 / 257 = 127.5 -> 128
    assert tuple(rgb[0, 0]) == (255, 255, 255)
    assert tuple(rgb[0, 1]) == (0, 0, 0)


def test_16bit_big_endian_tiff() -> None:
    values = np.full((20, 20), 257 * 100, dtype=">u2")
    image = Image.frombytes("I;16B", (20, 20), values.tobytes())
    data = encode(image, "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "I;16B"
    assert tuple(_rgb_array(data)[3, 3]) == (100, 100, 100)


def test_32bit_integer_and_float() -> None:
    wide = np.zeros((20, 20), dtype=np.int32)
    wide[:, 10:] = 1_000_000  # beyond 16 bits: min..max stretched
    rgb = _rgb_array(encode(Image.fromarray(wide, mode="I"), "TIFF"))
    assert rgb[0, 0, 0] == 0 and rgb[0, 15, 0] == 255
    unit = np.full((20, 20), 0.5, dtype=np.float32)
    assert _rgb_array(encode(Image.fromarray(unit, mode="F"), "TIFF"))[0, 0, 0] == 128


def test_cmyk_and_bilevel() -> None:
    cmyk = np.zeros((20, 20, 4), dtype=np.uint8)
    cmyk[:, 10:, 0] = 255  # pure cyan
    rgb = _rgb_array(encode(Image.fromarray(cmyk, mode="CMYK"), "TIFF"))
    assert tuple(rgb[0, 0]) == (255, 255, 255)
    assert tuple(rgb[0, 15]) == (0, 255, 255)
    bilevel = Image.new("1", (20, 20), 1)
    assert tuple(_rgb_array(encode(bilevel))[0, 0]) == (255, 255, 255)


def test_exif_orientation_is_applied() -> None:
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[0, 0] = (255, 0, 0)  # top-left marker
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    rgb = _rgb_array(encode(Image.fromarray(pixels), exif=exif.tobytes()))
    assert rgb.shape == (40, 20, 3)
    assert tuple(rgb[0, 19]) == (255, 0, 0)  # now top-right


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", images.EMPTY_FILE),
        (b"this is a text file, not a PNG\n", images.NOT_AN_IMAGE),
        (truncated(encode(noise_rgb(1, 64, 64))), images.TRUNCATED),
        (truncated(encode(noise_rgb(2, 64, 64), "JPEG")), images.TRUNCATED),
        (encode(noise_rgb(3, 8, 40)), images.TOO_SMALL),
    ],
    ids=["empty", "text", "truncated_png", "truncated_jpeg", "too_small"],
)
def test_bad_files_are_rejected(data: bytes, reason: str) -> None:
    with pytest.raises(images.ImageRejected) as caught:
        images.process_image(data, "x.png", IMAGE_SIZE)
    assert caught.value.reason == reason
    assert "x.png" in caught.value.message


def test_resize_square_centre_crops() -> None:
    pixels = np.zeros((30, 90, 3), dtype=np.uint8)
    pixels[:, :30] = (255, 0, 0)
    pixels[:, 30:60] = (0, 255, 0)
    pixels[:, 60:] = (0, 0, 255)
    out = images.resize_square(Image.fromarray(pixels), 16)
    assert out.size == (16, 16)
    np.testing.assert_allclose(np.asarray(out)[8, 8], (0, 255, 0), atol=2)
    assert images.resize_square(Image.fromarray(pixels), 64).size == (64, 64)  # upscaling too


def test_encode_png_is_deterministic_and_drops_metadata() -> None:
    image = noise_rgb(4)
    image.info["icc_profile"] = b"not really a profile"
    first, second = images.encode_png(image), images.encode_png(image.copy())
    assert first == second
    assert b"iCCP" not in first
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(first))), np.asarray(image))


# --- the Beam pipeline -------------------------------------------------------------------------


def _run(data_dir: Path, out: Path, *beam_args: str) -> None:
    pipeline = beam.Pipeline(runner=RUNNER, options=PipelineOptions(list(beam_args)))
    beam_pipeline.build_pipeline(
        pipeline,
        str(data_dir),
        str(out / "preprocessed"),
        str(out / "reports"),
        str(out / "metrics" / "preprocess.json"),
        CONFIG,
    )
    pipeline.run().wait_until_finish()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The dataset, run once single-threaded and once with 3 threads."""
    root = tmp_path_factory.mktemp("preprocess")
    make_dataset(root / "data")
    _run(root / "data", root / "run1", "--direct_running_mode=in_memory", "--direct_num_workers=1")
    _run(
        root / "data",
        root / "run2",
        "--direct_running_mode=multi_threading",
        "--direct_num_workers=3",
    )
    return root / "data", root / "run1", root / "run2"


def _read_examples(tfrecord_dir: Path) -> list[tf.train.Example]:
    examples = []
    for path in sorted(tfrecord_dir.glob("*.tfrecord")):
        for raw in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            examples.append(tf.train.Example.FromString(raw))
    return examples


def _feature(example: tf.train.Example, key: str) -> bytes:
    return example.features.feature[key].bytes_list.value[0]


def test_outputs_are_byte_identical_across_parallelism(runs: tuple[Path, Path, Path]) -> None:
    _, run1, run2 = runs
    files1 = sorted(p.relative_to(run1) for p in run1.rglob("*") if p.is_file())
    files2 = sorted(p.relative_to(run2) for p in run2.rglob("*") if p.is_file())
    assert files1 == files2
    for relative in files1:
        assert (run1 / relative).read_bytes() == (run2 / relative).read_bytes(), relative


def test_every_shard_file_exists(runs: tuple[Path, Path, Path]) -> None:
    _, run1, _ = runs
    for split in schema.SPLITS:
        names = sorted(p.name for p in (run1 / "preprocessed" / split).iterdir())
        assert names == [f"part-{s:05d}-of-{NUM_SHARDS:05d}.tfrecord" for s in range(NUM_SHARDS)]


def test_tfrecords_parse_with_schema(runs: tuple[Path, Path, Path]) -> None:
    data_dir, run1, _ = runs
    counts: dict[str, int] = {}
    for split in schema.SPLITS:
        for example in _read_examples(run1 / "preprocessed" / split):
            keys = set(example.features.feature) - {schema.TRUTH_KEY}  # paired test images
            if split == "test":  # every test image carries the colour-transfer baseline
                keys.remove(schema.COLOUR_TRANSFER_KEY)
            assert keys == {
                schema.IMAGE_KEY,
                schema.DOMAIN_KEY,
                schema.SPLIT_KEY,
                schema.SOURCE_SHA256_KEY,
                schema.SOURCE_PATH_KEY,
            }
            assert _feature(example, schema.SPLIT_KEY) == split.encode()
            domain = _feature(example, schema.DOMAIN_KEY).decode()
            source = _feature(example, schema.SOURCE_PATH_KEY).decode()
            assert source.startswith(schema.layout_dir(split, domain) + "/")
            image = Image.open(io.BytesIO(_feature(example, schema.IMAGE_KEY)))
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (24, 24))
            sha = _feature(example, schema.SOURCE_SHA256_KEY).decode()
            assert sha == hashlib.sha256((data_dir / source).read_bytes()).hexdigest()
            name = schema.layout_dir(split, domain)
            counts[name] = counts.get(name, 0) + 1
    assert counts == EXPECTED_EXAMPLES


def test_records_are_sharded_by_hash_and_sorted(runs: tuple[Path, Path, Path]) -> None:
    _, run1, _ = runs
    for path in sorted((run1 / "preprocessed").rglob("*.tfrecord")):
        shard = int(path.name.split("-")[1])
        raw = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
        shas = [_feature(tf.train.Example.FromString(r), schema.SOURCE_SHA256_KEY) for r in raw]
        assert shas == sorted(shas)
        assert all(beam_pipeline.shard_of(s.decode(), NUM_SHARDS) == shard for s in shas)


def test_duplicate_across_splits_is_kept_in_test(runs: tuple[Path, Path, Path]) -> None:
    _, run1, _ = runs
    paths = {
        _feature(e, schema.SOURCE_PATH_KEY).decode()
        for split in schema.SPLITS
        for e in _read_examples(run1 / "preprocessed" / split)
    }
    assert "testA/leak.png" in paths and "trainA/leak.png" not in paths
    assert "trainB/b1.png" in paths and "trainB/copy.png" not in paths
    with (run1 / "reports" / "duplicates.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [["path", "duplicate_of"], *map(list, EXPECTED_DUPLICATES)]


def test_rejects_report(runs: tuple[Path, Path, Path]) -> None:
    _, run1, _ = runs
    with (run1 / "reports" / "rejects.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["path"], r["reason"]) for r in rows] == EXPECTED_REJECTS
    assert all(r["message"] for r in rows)


def test_metrics_json(runs: tuple[Path, Path, Path]) -> None:
    _, run1, _ = runs
    text = (run1 / "metrics" / "preprocess.json").read_text()
    metrics = json.loads(text)
    stats = metrics.pop("colour_stats_lab")
    assert sorted(stats) == ["A", "B"] and all(
        len(s["mean"]) == len(s["std"]) == 3 for s in stats.values()
    )
    assert metrics == {
        "duplicates": 2,
        "examples": EXPECTED_EXAMPLES,
        "examples_total": 12,
        "image_size": IMAGE_SIZE,
        "num_shards": NUM_SHARDS,
        "paired": {"testA": 2, "testB": 0},
        "rejected": 8,
        "rejected_by_reason": {
            "empty_file": 1,
            "hidden_file": 1,
            "not_an_image": 2,
            "truncated": 2,
            "truth_without_image": 1,
            "unsupported_extension": 1,
        },
    }
    assert (
        text == json.dumps({**metrics, "colour_stats_lab": stats}, indent=2, sort_keys=True) + "\n"
    )


def test_colour_transfer_is_fitted_on_train_and_applied_to_test(runs) -> None:
    _, run1, _ = runs
    decoded = {
        split: [
            (
                _feature(e, schema.DOMAIN_KEY).decode(),
                np.asarray(Image.open(io.BytesIO(_feature(e, schema.IMAGE_KEY)))),
                e,
            )
            for e in _read_examples(run1 / "preprocessed" / split)
        ]
        for split in schema.SPLITS
    }
    fitted = {d: fit([i for dom, i, _ in decoded["train"] if dom == d]) for d in "AB"}
    for domain, image, example in decoded["test"]:
        png = _feature(example, schema.COLOUR_TRANSFER_KEY)
        expected = transfer(image, fitted[domain], fitted[schema.other_domain(domain)])
        got = np.asarray(Image.open(io.BytesIO(png)))
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    for _, _, example in decoded["train"]:
        assert schema.COLOUR_TRANSFER_KEY not in example.features.feature


def test_ground_truth_is_joined_to_its_test_image(runs: tuple[Path, Path, Path]) -> None:
    data_dir, run1, _ = runs
    examples = _read_examples(run1 / "preprocessed" / "test")
    by_path = {_feature(e, schema.SOURCE_PATH_KEY).decode(): e for e in examples}
    truth = by_path["testA/a1.png"].features.feature[schema.TRUTH_KEY].bytes_list.value[0]
    expected = images.process_image(
        (data_dir / "testA_truthB/a1.png").read_bytes(), "a1.png", IMAGE_SIZE
    )
    assert truth == expected  # preprocessed exactly like an image
    assert schema.TRUTH_KEY in by_path["testA/leak.png"].features.feature
    assert schema.TRUTH_KEY not in by_path["testB/t1.png"].features.feature  # its truth broke
    for example in _read_examples(run1 / "preprocessed" / "train"):
        assert schema.TRUTH_KEY not in example.features.feature


def test_an_unpaired_dataset_has_no_truth_and_no_truth_rejects(tmp_path: Path) -> None:
    write(tmp_path / "data", "trainA/a.png", encode(noise_rgb(30)))
    write(tmp_path / "data", "trainB/b.png", encode(noise_rgb(31)))
    write(tmp_path / "data", "testA/c.png", encode(noise_rgb(32)))
    write(tmp_path / "data", "testB/d.png", encode(noise_rgb(33)))
    _run(tmp_path / "data", tmp_path / "out")
    metrics = json.loads((tmp_path / "out" / "metrics" / "preprocess.json").read_text())
    assert metrics["paired"] == {"testA": 0, "testB": 0} and metrics["rejected"] == 0
    for example in _read_examples(tmp_path / "out" / "preprocessed" / "test"):
        assert schema.TRUTH_KEY not in example.features.feature


def test_pcollections_with_assert_that(runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    data_dir, _, _ = runs
    with test_pipeline.TestPipeline(runner=RUNNER) as pipeline:
        outputs = beam_pipeline.build_pipeline(
            pipeline,
            str(data_dir),
            str(tmp_path / "out"),
            str(tmp_path / "reports"),
            str(tmp_path / "metrics.json"),
            CONFIG,
        )
        reasons = outputs.rejects | beam.Map(lambda r: (r.path, r.reason))
        assert_that(reasons, equal_to(EXPECTED_REJECTS), label="Rejects")
        assert_that(outputs.duplicates, equal_to(EXPECTED_DUPLICATES), label="Duplicates")
        kept = outputs.examples | beam.Map(lambda r: r.path)
        assert_that(kept | "Count" >> beam.combiners.Count.Globally(), equal_to([12]), label="Kept")


# --- layout errors and the CLI -----------------------------------------------------------------


def test_missing_layout_folder_is_an_error(tmp_path: Path) -> None:
    for name in ("trainA", "trainB", "testA"):
        write(tmp_path, f"{name}/x.png", encode(noise_rgb(20)))
    with pytest.raises(beam_pipeline.DatasetLayoutError, match="testB"):
        beam_pipeline.scan_dataset(str(tmp_path), CONFIG.extensions)


def test_train_folder_without_images_is_an_error(tmp_path: Path) -> None:
    for name in ("trainA", "testA", "testB"):
        write(tmp_path, f"{name}/x.png", encode(noise_rgb(21)))
    write(tmp_path, "trainB/readme.txt", b"no images here")
    with pytest.raises(beam_pipeline.DatasetLayoutError, match="trainB has no image files"):
        beam_pipeline.scan_dataset(str(tmp_path), CONFIG.extensions)


def _params(tmp_path: Path, data_dir: Path) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paths"].update(
        data=str(data_dir),
        preprocessed=str(tmp_path / "preprocessed"),
        reports=str(tmp_path / "reports"),
        metrics=str(tmp_path / "metrics"),
    )
    params["preprocess"]["image_size"] = IMAGE_SIZE
    params["model"]["unet_downsamplings"] = 3  # a U-Net that fits 24 px images
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_cli_missing_layout_exits_2(tmp_path: Path) -> None:
    write(tmp_path / "data", "trainA/x.png", encode(noise_rgb(22)))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cyclegan_tfx.data.preprocess",
            "--params",
            str(_params(tmp_path, tmp_path / "data")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "missing folder(s) trainB, testA, testB" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_bad_params_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--params", str(tmp_path / "nope.yaml")]) == 2
    assert "params file not found" in capsys.readouterr().err


def test_cli_runs_and_removes_stale_shards(
    runs: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, _, _ = runs
    stale = tmp_path / "preprocessed" / "train" / "part-00007-of-00009.tfrecord"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    params = _params(tmp_path, data_dir)
    assert main(["--params", str(params), f"--runner={RUNNER}"]) == 0
    assert not stale.exists()
    out = capsys.readouterr().out
    assert (
        "12 examples (testA=2 testB=1 trainA=7 trainB=2; with ground truth testA=2), "
        "8 rejected, 2 duplicates" in out
    )
    # The params' num_shards (2) differs from the fixture's (3): two files per split.
    assert len(list((tmp_path / "preprocessed" / "train").glob("*.tfrecord"))) == 2

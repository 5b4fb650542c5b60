"""Tests of the sample dataset generator (cyclegan_tfx.data.sample_datasets)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cyclegan_tfx.data import sample_datasets
from cyclegan_tfx.image_grid import png_bytes

COUNTS = {"trainA": 12, "trainB": 10, "testA": 4, "testB": 5}
CROP = 48


def _load(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample") / "data"
    assert (
        sample_datasets.make_sample_dataset(
            out, seed=7, crop_size=CROP, counts=COUNTS, task="grade"
        )
        == COUNTS
    )
    return out


TRUTH = {"testA_truthB": COUNTS["testA"], "testB_truthA": COUNTS["testB"]}


def test_layout_and_counts(dataset: Path) -> None:
    assert sorted(p.name for p in dataset.iterdir()) == sorted({**COUNTS, **TRUTH})
    for name, count in {**COUNTS, **TRUTH}.items():
        files = sorted(p.name for p in (dataset / name).iterdir())
        assert files == [f"{i:04d}.png" for i in range(count)]
        for image in _load(dataset / name):
            assert image.shape == (CROP, CROP, 3) and image.dtype == np.uint8


def test_same_seed_gives_identical_bytes(dataset: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    sample_datasets.make_sample_dataset(again, seed=7, crop_size=CROP, counts=COUNTS, task="grade")
    for name in COUNTS:
        for path in sorted((dataset / name).iterdir()):
            assert path.read_bytes() == (again / name / path.name).read_bytes(), path


def test_other_seed_differs(dataset: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    sample_datasets.make_sample_dataset(other, seed=8, crop_size=CROP, counts=COUNTS, task="grade")
    assert (other / "trainA" / "0000.png").read_bytes() != (
        dataset / "trainA" / "0000.png"
    ).read_bytes()


def test_all_images_are_distinct_and_unpaired(dataset: Path) -> None:
    hashes = [_sha(p.read_bytes()) for name in COUNTS for p in (dataset / name).glob("*.png")]
    assert len(hashes) == len(set(hashes)) == sum(COUNTS.values())
    b_hashes = {_sha(p.read_bytes()) for n in ("trainB", "testB") for p in (dataset / n).iterdir()}
    for name in ("trainA", "testA"):
        for image in _load(dataset / name):
            assert _sha(png_bytes(sample_datasets.winter_grade(image))) not in b_hashes


def test_test_split_carries_the_true_translation(dataset: Path) -> None:
    for path in sorted((dataset / "testA").iterdir()):
        truth = np.asarray(Image.open(dataset / "testA_truthB" / path.name))
        assert np.array_equal(truth, sample_datasets.winter_grade(np.asarray(Image.open(path))))
    for path in sorted((dataset / "testB").iterdir()):
        original = np.asarray(Image.open(dataset / "testB_truthA" / path.name))
        assert np.array_equal(np.asarray(Image.open(path)), sample_datasets.winter_grade(original))
    assert not (dataset / "trainA_truthB").exists()  # the training split stays unpaired


def _saturation_and_blueness(images: list[np.ndarray]) -> tuple[float, float]:
    pixels = np.concatenate([i.reshape(-1, 3) for i in images]).astype(np.float64)
    saturation = (pixels.max(axis=1) - pixels.min(axis=1)) / np.maximum(pixels.max(axis=1), 1)
    return float(saturation.mean()), float((pixels[:, 2] - pixels[:, 0]).mean())


def test_domain_b_is_a_winter_grade(dataset: Path) -> None:
    sat_a, blue_a = _saturation_and_blueness(_load(dataset / "trainA") + _load(dataset / "testA"))
    sat_b, blue_b = _saturation_and_blueness(_load(dataset / "trainB") + _load(dataset / "testB"))
    assert sat_b < 0.7 * sat_a
    assert blue_b > blue_a + 10


def test_crops_are_not_flat(dataset: Path) -> None:
    for path in dataset.rglob("*.png"):
        luma = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
        assert luma.std() > 5, path


def test_winter_grade_properties() -> None:
    assert tuple(sample_datasets.winter_grade(np.zeros((1, 1, 3), np.uint8))[0, 0]) == (22, 25, 29)
    white = sample_datasets.winter_grade(np.full((1, 1, 3), 255, np.uint8))[0, 0]
    assert white[2] == 255 and white[0] < white[1] < white[2]
    with pytest.raises(ValueError, match="uint8"):
        sample_datasets.winter_grade(np.zeros((2, 2), np.uint8))


def test_png_bytes_have_no_metadata() -> None:
    data = png_bytes(np.zeros((4, 4, 3), np.uint8))
    chunks = []
    position = 8
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        chunks.append(data[position + 4 : position + 8])
        position += 12 + length
    assert chunks == [b"IHDR", b"IDAT", b"IEND"]
    assert Image.open(io.BytesIO(data)).size == (4, 4)


def test_existing_files_need_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "data"
    small = {"trainA": 2, "trainB": 2, "testA": 1, "testB": 1}
    sample_datasets.make_sample_dataset(out, seed=1, crop_size=CROP, counts=small)
    with pytest.raises(FileExistsError):
        sample_datasets.make_sample_dataset(out, seed=1, crop_size=CROP, counts=small)
    fewer = {"trainA": 1, "trainB": 1, "testA": 1, "testB": 1}
    sample_datasets.make_sample_dataset(out, seed=1, crop_size=CROP, counts=fewer, overwrite=True)
    assert sorted(p.name for p in (out / "trainA").iterdir()) == ["0000.png"]


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="counts"):
        sample_datasets.make_sample_dataset(tmp_path, seed=1, counts={"trainA": 1})
    with pytest.raises(ValueError, match="too large"):
        sample_datasets.make_sample_dataset(tmp_path, seed=1, crop_size=800, counts=COUNTS)


def test_uneven_dataset_cuts_domain_b_from_fewer_photographs(tmp_path: Path) -> None:
    uneven = tmp_path / "uneven"
    counts = {"trainA": 40, "trainB": 40, "testA": 2, "testB": 2}
    sample_datasets.make_sample_dataset(
        uneven,
        seed=7,
        crop_size=CROP,
        counts=counts,
        b_sources=sample_datasets.UNEVEN_B_SOURCES,
        task="grade",
    )
    even = tmp_path / "even"
    sample_datasets.make_sample_dataset(even, seed=7, crop_size=CROP, counts=counts, task="grade")

    def spread(folder: Path) -> float:
        # How varied a domain is: mean distance of each image's colour statistics to the mean.
        stats = np.array([[*i.mean((0, 1)), *i.std((0, 1))] for i in _load(folder)])
        return float(np.linalg.norm(stats - stats.mean(0), axis=1).mean())

    # On the committed data_uneven/ (100 images of 80 px) the ratio is 0.59 (25.3 vs 42.8).
    assert spread(uneven / "trainB") < 0.85 * spread(even / "trainB")
    assert spread(uneven / "trainA") == pytest.approx(spread(even / "trainA"))


def test_unknown_b_source_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="b_sources must name some of"):
        sample_datasets.make_sample_dataset(tmp_path, seed=7, counts=COUNTS, b_sources=("moon",))


@pytest.fixture(scope="module")
def rings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rings") / "data"
    sample_datasets.make_sample_dataset(out, seed=7, crop_size=CROP, counts=COUNTS)  # the default
    return out


def _luma(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def test_rings_change_structure_inside_the_object_only(rings: Path) -> None:
    """A -> B darkens rings inside the object; the background is untouched."""
    pairs = [("testA", "testA_truthB", 1), ("testB_truthA", "testB", 1)]
    for plain_dir, ringed_dir, _ in pairs:
        for path in sorted((rings / plain_dir).iterdir()):
            plain = np.asarray(Image.open(path)).astype(int)
            ringed = np.asarray(Image.open(rings / ringed_dir / path.name)).astype(int)
            changed = np.abs(plain - ringed).max(axis=-1) > 2
            assert 0.05 < changed.mean() < 0.5, path  # a structure, not the whole image
            assert (_luma(ringed)[changed] < _luma(plain)[changed]).all()  # the rings are dark
            # The change has holes (plain bands between rings), unlike a filled blob.
            rows = changed[changed.any(axis=1)]
            assert any(np.diff(row.astype(int)).__abs__().sum() >= 4 for row in rows), path


def test_rings_follow_the_object_and_are_reproducible(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    thing = sample_datasets.RingedObject.draw(rng, 64)
    background = np.full((64, 64, 3), 200, np.uint8)
    plain, ringed = thing.render(background, rings=False), thing.render(background, rings=True)
    assert np.array_equal(ringed, thing.render(background, rings=True))
    centre = (round(thing.centre_y), round(thing.centre_x))
    assert (ringed[centre] < plain[centre]).all()  # the innermost band is a dark spot
    moved = dataclasses.replace(thing, centre_x=thing.centre_x + 5)
    assert not np.array_equal(moved.render(background, rings=True), ringed)
    assert np.array_equal(plain[0, 0], background[0, 0])


def test_unknown_task_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="task must be one of"):
        sample_datasets.make_sample_dataset(tmp_path, seed=7, counts=COUNTS, task="zebra")

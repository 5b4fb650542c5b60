"""Small, reproducible, unpaired sample datasets from real photographs: two tasks.

Source images are the colour photographs bundled inside the scikit-image wheel (no download):
astronaut, coffee, chelsea, rocket, the left view of stereo_motorcycle, immunohistochemistry,
hubble_deep_field and retina.

Each source image is cut into four disjoint regions: its longer axis is halved into an A half
and a B half (which half is A alternates between images), and each half is split along its own
longer axis into a train part (70 %) and a test part (30 %). Crops are square windows of
1, 1.5, 2 or 3 times `crop_size`, at random positions inside one region, resized (Lanczos) to
`crop_size`; windows that are mostly flat or dark (sky, the black around the retina, empty
space) are redrawn. So A and B never show the same pixels (the data is unpaired), and test crops
never overlap train crops.

Two tasks tell domain B from domain A (`task`):

- `rings` (`data/`, what `make run` trains on): one elliptical object is composited onto each
  crop (:class:`RingedObject`: random position, size, orientation and colour, lit like a dome,
  antialiased); in A it is plain, in B it carries dark rings that follow its outline. Changing
  the domain means adding or removing a structure in the right place, as in horse <-> zebra;
  a colour filter cannot do it.
- `grade` (`data_grade/`, the style case): domain B gets the :func:`winter_grade` colour grade.

The output follows the CycleGAN layout `out_dir/{trainA,trainB,testA,testB}/NNNN.png`, and the
same seed gives byte-identical files.

The *uneven* variant (`b_sources=UNEVEN_B_SOURCES`, `data_uneven/`) cuts domain B from two of
the photographs only, so one domain is far more varied than the other: the situation in which
separate optimizers per generator are said to help (the optimizer study, `make study`).

Because either domain's version of a crop determines the other's, the test split is *paired*
(see :mod:`cyclegan_tfx.data.schema`): `testA_truthB/NNNN.png` is the B version of `testA/NNNN.png`
(its true A->B translation), and `testB_truthA/NNNN.png` the A version that `testB/NNNN.png` was
made from (its true B->A translation). The training split stays unpaired.
"""

from __future__ import annotations

import colorsys
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from cyclegan_tfx.data import schema
from cyclegan_tfx.image_grid import png_bytes

logger = logging.getLogger(__name__)

DEFAULT_COUNTS: Mapping[str, int] = {"trainA": 120, "trainB": 100, "testA": 200, "testB": 200}
LAYOUT = ("trainA", "trainB", "testA", "testB")
TRUTH_FOLDERS = {name: schema.truth_dir(name[-1]) for name in ("testA", "testB")}
"""Test folder -> the folder of its ground truth (`testA` -> `testA_truthB`)."""
UNEVEN_B_SOURCES = ("coffee", "chelsea")
"""Domain B of the uneven dataset (`data_uneven/`): two photographs (a cup, a cat) against
domain A's eight (portrait, cup, cat, rocket, motorcycle, histology, galaxies, retina)."""
TRAIN_FRACTION = 0.7
WINDOW_SCALES = (1.0, 1.5, 2.0, 3.0)
MIN_LUMA_STD = 20.0  # on 0..255: rejects flat windows
MAX_DARK_FRACTION = 0.3  # fraction of pixels with luma < 24: rejects mostly black windows
MAX_ATTEMPTS = 1000
TASKS = ("rings", "grade")
"""`rings`: objects gain or lose rings (texture and structure, the default); `grade`: the
"winter" colour grade (a style change)."""
RING_BANDS = 4
RING_DARKNESS = 0.3
RENDER_SUPERSAMPLING = 4


def _skimage_sources() -> list[tuple[str, Callable[[], np.ndarray]]]:
    return [
        ("astronaut", data.astronaut),
        ("coffee", data.coffee),
        ("chelsea", data.chelsea),
        ("rocket", data.rocket),
        ("motorcycle", lambda: data.stereo_motorcycle()[0]),
        ("immunohistochemistry", data.immunohistochemistry),
        ("hubble_deep_field", data.hubble_deep_field),
        ("retina", data.retina),
    ]


@dataclasses.dataclass(frozen=True)
class _Region:
    source: int  # index into the source list
    top: int
    left: int
    height: int
    width: int


def winter_grade(rgb: np.ndarray) -> np.ndarray:
    """Applies the "winter" colour grade of domain B.

    On values in [0, 1]:

    1. desaturate to 40 % around the Rec. 601 luma (`Y = 0.299 R + 0.587 G + 0.114 B`);
    2. brighten the mid-tones with a gamma of 0.85 and lift the shadows: `0.1 + 0.9 * c**0.85`
       (black becomes 0.1, white stays 1);
    3. cool tint: multiply R, G, B by 0.88, 0.97, 1.12 and clip.

    Args:
        rgb: An `(H, W, 3)` uint8 image.

    Returns:
        The graded `(H, W, 3)` uint8 image.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    x = rgb.astype(np.float64) / 255.0
    luma = x @ np.array([0.299, 0.587, 0.114])
    x = luma[..., None] + 0.4 * (x - luma[..., None])
    x = 0.1 + 0.9 * np.clip(x, 0.0, 1.0) ** 0.85
    x = x * np.array([0.88, 0.97, 1.12])
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class RingedObject:
    """An elliptical object of the `rings` task, in pixels of its crop.

    Domain A shows it plain; domain B shows it with dark rings: the level sets of its elliptical
    radius r (0 at the centre, 1 at the outline) are cut into :data:`RING_BANDS` bands, and the
    odd ones, counted from the outline, are darkened to :data:`RING_DARKNESS` of the colour. So
    the rings' layout follows from the object's shape and position alone, and either image
    determines the other.
    """

    centre_x: float
    centre_y: float
    semi_major: float
    semi_minor: float
    angle: float  # radians, of the major axis
    colour: tuple[float, float, float]  # RGB in [0, 1]

    @classmethod
    def draw(cls, rng: np.random.Generator, size: int) -> RingedObject:
        """A random object that lies mostly inside a `size` x `size` crop."""
        centre_x, centre_y = rng.uniform(0.35, 0.65, 2) * size
        semi_major = rng.uniform(0.24, 0.36) * size
        semi_minor = semi_major * rng.uniform(0.6, 1.0)
        hue, saturation, value = rng.uniform(0, 1), rng.uniform(0.55, 0.95), rng.uniform(0.7, 0.95)
        rgb = colorsys.hsv_to_rgb(hue, saturation, value)
        return cls(centre_x, centre_y, semi_major, semi_minor, rng.uniform(0, np.pi), rgb)

    def render(self, background: np.ndarray, rings: bool) -> np.ndarray:
        """The object composited onto a uint8 crop, antialiased, with or without rings."""
        size = background.shape[0]
        scale = RENDER_SUPERSAMPLING
        coords = (np.arange(size * scale) + 0.5) / scale
        x, y = np.meshgrid(coords - self.centre_x, coords - self.centre_y)
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        u, v = (x * cos + y * sin) / self.semi_major, (y * cos - x * sin) / self.semi_minor
        radius = np.sqrt(u**2 + v**2)
        inside = radius < 1.0
        shade = 0.8 + 0.2 * np.sqrt(np.clip(1.0 - radius**2, 0.0, 1.0))  # a lit dome
        colour = shade[..., None] * np.asarray(self.colour)
        if rings:
            band = np.floor((1.0 - radius) * RING_BANDS).astype(int)
            colour = np.where((inside & (band % 2 == 1))[..., None], colour * RING_DARKNESS, colour)
        alpha = _downsample(inside.astype(np.float64), scale)
        premultiplied = _downsample(colour * inside[..., None], scale)
        image = background.astype(np.float64) / 255.0 * (1.0 - alpha[..., None]) + premultiplied
        return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def _downsample(values: np.ndarray, factor: int) -> np.ndarray:
    """Box-filters a [H*f, W*f(, C)] array to [H, W(, C)] (the antialiasing of `render`)."""
    height, width = values.shape[0] // factor, values.shape[1] // factor
    return values.reshape(height, factor, width, factor, *values.shape[2:]).mean(axis=(1, 3))


def _split_regions(index: int, height: int, width: int) -> dict[str, _Region]:
    """Cuts one image into the four disjoint regions trainA, testA, trainB, testB."""
    if width >= height:
        halves = [(0, 0, height, width // 2), (0, width // 2, height, width - width // 2)]
    else:
        halves = [(0, 0, height // 2, width), (height // 2, 0, height - height // 2, width)]
    if index % 2:
        halves.reverse()
    regions = {}
    for domain, (top, left, h, w) in zip("AB", halves, strict=True):
        if h >= w:
            cut = int(h * TRAIN_FRACTION)
            train, test = (top, left, cut, w), (top + cut, left, h - cut, w)
        else:
            cut = int(w * TRAIN_FRACTION)
            train, test = (top, left, h, cut), (top, left + cut, h, w - cut)
        regions[f"train{domain}"] = _Region(index, *train)
        regions[f"test{domain}"] = _Region(index, *test)
    return regions


def _is_interesting(window: np.ndarray) -> bool:
    luma = window.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return bool(luma.std() >= MIN_LUMA_STD and (luma < 24).mean() <= MAX_DARK_FRACTION)


def _draw_crop(
    rng: np.random.Generator,
    images: list[np.ndarray],
    regions: list[_Region],
    crop_size: int,
    used: set[tuple[int, int, int, int]],
) -> np.ndarray:
    """Draws one new, non-flat crop from one of `regions`, resized to `crop_size`."""
    for _ in range(MAX_ATTEMPTS):
        region = regions[int(rng.integers(len(regions)))]
        max_window = min(region.height, region.width)
        windows = [w for w in (round(s * crop_size) for s in WINDOW_SCALES) if w <= max_window]
        window = windows[int(rng.integers(len(windows)))]
        top = region.top + int(rng.integers(region.height - window + 1))
        left = region.left + int(rng.integers(region.width - window + 1))
        key = (region.source, top, left, window)
        pixels = images[region.source][top : top + window, left : left + window]
        if key in used or not _is_interesting(pixels):
            continue
        used.add(key)
        if window == crop_size:
            return np.array(pixels)
        resized = Image.fromarray(pixels).resize((crop_size, crop_size), Image.Resampling.LANCZOS)
        return np.asarray(resized)
    raise RuntimeError(f"no usable crop found in {MAX_ATTEMPTS} attempts")


def _versions(rng: np.random.Generator, crop: np.ndarray, task: str) -> tuple[np.ndarray, ...]:
    """(domain A's version, domain B's version) of one crop."""
    if task == "grade":
        return crop, winter_grade(crop)
    thing = RingedObject.draw(rng, crop.shape[0])
    return thing.render(crop, rings=False), thing.render(crop, rings=True)


def make_sample_dataset(
    out_dir: Path,
    seed: int,
    crop_size: int = 80,
    counts: Mapping[str, int] = DEFAULT_COUNTS,
    overwrite: bool = False,
    b_sources: Sequence[str] | None = None,
    task: str = "rings",
) -> dict[str, int]:
    """Writes the sample dataset in the CycleGAN layout (see the module docstring).

    Args:
        out_dir: Dataset root; receives `trainA/`, `trainB/`, `testA/`, `testB/` and the
            ground truth of the test images in `testA_truthB/`, `testB_truthA/`.
        seed: Seed of the NumPy generator; the same seed gives byte-identical files.
        crop_size: Side length of the square PNG crops.
        counts: Number of images per layout folder (keys: trainA, trainB, testA, testB).
        overwrite: Delete `*.png` files already in the layout folders instead of failing.
        b_sources: Names of the source photographs domain B is cut from (None: all of
            them, as domain A). Fewer sources make B far less varied than A: the uneven
            dataset of the optimizer study (`UNEVEN_B_SOURCES`).
        task: What tells B from A (:data:`TASKS`): `rings` (one object per crop, plain in A,
            ringed in B) or `grade` (the winter colour grade).

    Returns:
        The number of images written per layout folder.

    Raises:
        ValueError: On unknown/missing keys in `counts`, negative counts, unknown
            `b_sources`, or a `crop_size` too large for the source images.
        FileExistsError: If a layout folder already holds PNG files and `overwrite` is false.
    """
    if set(counts) != set(LAYOUT) or any(n < 0 for n in counts.values()):
        raise ValueError(f"counts needs non-negative values for exactly {LAYOUT}, got {counts}")
    if crop_size < 8:
        raise ValueError(f"crop_size must be >= 8, got {crop_size}")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    out_dir = Path(out_dir)
    for name in (*LAYOUT, *TRUTH_FOLDERS.values()):
        existing = sorted((out_dir / name).glob("*.png"))
        if existing and not overwrite:
            raise FileExistsError(f"{out_dir / name} already holds {len(existing)} PNG file(s)")
        for path in existing:
            path.unlink()

    sources = _skimage_sources()
    names = [name for name, _ in sources]
    unknown = sorted(set(b_sources or ()) - set(names))
    if unknown or (b_sources is not None and not b_sources):
        raise ValueError(f"b_sources must name some of {names}, got {b_sources}")
    images = [np.ascontiguousarray(load()[..., :3]) for _, load in sources]
    by_folder: dict[str, list[_Region]] = {name: [] for name in LAYOUT}
    for index, image in enumerate(images):
        for name, region in _split_regions(index, *image.shape[:2]).items():
            in_domain = name.endswith("A") or b_sources is None or names[index] in b_sources
            if in_domain and min(region.height, region.width) >= crop_size:
                by_folder[name].append(region)
    for name, regions in by_folder.items():
        if counts[name] and not regions:
            raise ValueError(f"crop_size {crop_size} is too large for the {name} regions")

    rng = np.random.default_rng(seed)
    used: set[tuple[int, int, int, int]] = set()
    written = {}
    for name in LAYOUT:
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        truth_folder = out_dir / TRUTH_FOLDERS[name] if name in TRUTH_FOLDERS else None
        if truth_folder is not None:
            truth_folder.mkdir(parents=True, exist_ok=True)
        for number in range(counts[name]):
            crop = _draw_crop(rng, images, by_folder[name], crop_size, used)
            plain, changed = _versions(rng, crop, task)
            image, truth = (changed, plain) if name.endswith("B") else (plain, changed)
            (folder / f"{number:04d}.png").write_bytes(png_bytes(image))
            if truth_folder is not None:
                (truth_folder / f"{number:04d}.png").write_bytes(png_bytes(truth))
        written[name] = counts[name]
        logger.info("wrote %d images to %s", counts[name], folder)
    return written

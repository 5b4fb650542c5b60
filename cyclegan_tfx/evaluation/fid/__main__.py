"""CLI: FID and KID between two image folders, like pytorch-fid's.

Usage: cyclegan-tfx fid DIR_A DIR_B [--params params.yaml] [--image-size N] [--json]

It scores what the gate scores. Every file of each folder (not recursive) with an image
extension is decoded and resized like the preprocessing job does (any mode to 8-bit RGB, EXIF
orientation applied, shorter side resized to `preprocess.image_size` and centre-cropped, with
the same Lanczos filter), so `cyclegan-tfx fid data/testA data/testB` is the FID of doing
nothing that the Evaluator reports (`fid_a2b_identity`): quote that one. `--image-size 0`
scores the files at their own size instead (a different number: FID depends on the
resolution the images had before the backbone's resize to 299).

The backbone is the pipeline's (`evaluate.backbone` of `--params`: the standard network once
`make setup` installed its weights; with `require_standard` a missing file is an error), and
so are the KID subsets and the bootstrap spreads. Unreadable files are skipped and listed on
stderr. The images of both folders are held in memory.

Exit status: 0 on success, 2 on a usage error (missing folder, fewer than 2 readable images,
unusable weights, unreadable params).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cyclegan_tfx.config import ConfigError, EvaluateConfig, load_config
from cyclegan_tfx.data.preprocess.images import ImageRejected, decode_to_rgb, resize_square
from cyclegan_tfx.evaluation.fid.backbone import load_backbone
from cyclegan_tfx.evaluation.fid.distance import fid_from_stats, kernel_inception_distance
from cyclegan_tfx.evaluation.fid.reference import STATS_DIRNAME, reference_stats
from cyclegan_tfx.evaluation.fid.spreads import bootstrap_fid_std, bootstrap_kid_std
from cyclegan_tfx.evaluation.fid.weights import WeightsError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
KID_SEED = 0
BOOTSTRAP_SEED = 0


class UsageError(Exception):
    """A problem with the command line or the folders; exit status 2."""


def load_folder(folder: Path, image_size: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """Decodes (and resizes) the images of a folder.

    Args:
        folder: The folder (its files are read in sorted order, not recursively).
        image_size: Resize and centre-crop to this side as the preprocessing job does; 0 keeps
            each image's own size.

    Returns:
        (uint8 RGB images [H, W, 3], messages about the files that were skipped).

    Raises:
        UsageError: If the folder does not exist or holds fewer than 2 readable images.
    """
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder (it does not exist or is a file)")
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    images, skipped = [], []
    for path in files:
        try:
            image = decode_to_rgb(path.read_bytes(), str(path))
        except ImageRejected as error:
            skipped.append(f"skipped {error}")
            continue
        except OSError as error:
            skipped.append(f"skipped {path}: cannot read: {error}")
            continue
        if image_size:
            image = resize_square(image, image_size)
        images.append(np.asarray(image, dtype=np.uint8))
    if len(images) < 2:
        raise UsageError(
            f"{folder}: {len(images)} readable image(s) ({len(files)} file(s) with an image "
            f"extension {', '.join(IMAGE_EXTENSIONS)}); FID and KID need at least 2"
        )
    return images, skipped


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="cyclegan-tfx fid", description="FID and KID between two image folders."
    )
    parser.add_argument("dir_a", type=Path, help="first image folder")
    parser.add_argument("dir_b", type=Path, help="second image folder (e.g. the real images)")
    parser.add_argument(
        "--params", default="params.yaml", help="backbone, image size, KID settings (%(default)s)"
    )
    parser.add_argument(
        "--image-size",
        type=int,
        help="resize like the preprocessing job (default: preprocess.image_size; 0: as is)",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    parser.add_argument("--backbone-seed", type=int, help="seed of the fallback backbone")
    parser.add_argument("--weights", help="a weights file (.pt or classify_image_graph_def.pb)")
    parser.add_argument("--cache-dir", help="weights cache (default: evaluate.backbone's)")
    parser.add_argument(
        "--download", action="store_true", help="download TTUR's graph if no weights are found"
    )
    parser.add_argument("--kid-max-samples", type=int, help="KID rows per folder")
    parser.add_argument(
        "--cache-stats",
        action="store_true",
        help="cache each image's features under <cache dir>/fid_stats/ and reuse them",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser.parse_args(argv)


def _settings(args: argparse.Namespace) -> tuple[EvaluateConfig, int]:
    """The evaluate section (with the flags' overrides) and the image size."""
    if args.batch_size < 1 or (args.image_size or 0) < 0 or (args.kid_max_samples or 2) < 2:
        raise UsageError("--batch-size must be >= 1, --image-size >= 0, --kid-max-samples >= 2")
    config = load_config(args.params)
    evaluate = config.evaluate
    overrides = {
        "inception_weights": args.weights,
        "cache_dir": args.cache_dir,
        "fallback_seed": args.backbone_seed,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.download:
        overrides["download"] = True
    backbone = dataclasses.replace(evaluate.backbone, **overrides)
    kid_max = evaluate.kid_max_samples if args.kid_max_samples is None else args.kid_max_samples
    evaluate = dataclasses.replace(evaluate, backbone=backbone, kid_max_samples=kid_max)
    size = config.preprocess.image_size if args.image_size is None else args.image_size
    return evaluate, size


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit status."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        evaluate, size = _settings(args)
        loaded = {}
        for label, folder in (("A", args.dir_a), ("B", args.dir_b)):
            images, skipped = load_folder(folder, size)
            for message in skipped:
                print(message, file=sys.stderr)
            loaded[label] = images
        backbone = load_backbone(evaluate.backbone, batch_size=args.batch_size)
    except (UsageError, WeightsError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cache = evaluate.backbone.cache_dir
    cache_dir = Path(cache).expanduser() / STATS_DIRNAME if args.cache_stats else None
    stats = {
        label: reference_stats(
            images, backbone, max_samples=evaluate.kid_max_samples, cache_dir=cache_dir
        )
        for label, images in loaded.items()
    }
    rows = {label: stat.sample.truncated().rows for label, stat in stats.items()}
    samples = evaluate.bootstrap_samples
    kid, _ = kernel_inception_distance(
        rows["A"],
        rows["B"],
        num_subsets=evaluate.kid_num_subsets,
        subset_size=evaluate.kid_subset_size,
        seed=KID_SEED,
    )
    result = {
        "fid": fid_from_stats(stats["A"].stats, stats["B"].stats),
        "fid_std": bootstrap_fid_std(rows["A"], rows["B"], samples, seed=BOOTSTRAP_SEED),
        "kid": kid,
        "kid_std": bootstrap_kid_std(rows["A"], rows["B"], samples, seed=BOOTSTRAP_SEED),
        "num_a": stats["A"].stats.count,
        "num_b": stats["B"].stats.count,
        "image_size": size or None,
        "backbone": backbone.name,
        "standard_backbone": backbone.is_standard,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(_human(result, args))
    return 0


def _spread(value: float | None, digits: int) -> str:
    return "" if value is None else f" ± {value:.{digits}f} (bootstrap over the images)"


def _human(result: dict, args: argparse.Namespace) -> str:
    note = "" if result["standard_backbone"] else " (fallback: NOT comparable with published FIDs)"
    size = result["image_size"]
    scored = f"resized to {size}x{size} as the pipeline does" if size else "at their own size"
    return "\n".join(
        [
            f"FID:      {result['fid']:.4f}{_spread(result['fid_std'], 4)}",
            f"KID:      {result['kid']:.6f}{_spread(result['kid_std'], 6)}",
            f"N:        A {result['num_a']} images ({args.dir_a}), B {result['num_b']} "
            f"({args.dir_b}), {scored}",
            f"backbone: {result['backbone']}{note}",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())

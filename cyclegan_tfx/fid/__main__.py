"""CLI: FID and KID between two image folders, like pytorch-fid's.

Usage: python -m cyclegan_tfx.fid DIR_A DIR_B [--batch-size 16] [--backbone-seed 0]
       [--weights classify_image_graph_def.pb] [--kid-subsets 100] [--kid-subset-size 1000]

Every file of each folder (not recursive) with an image extension is decoded like the
preprocessing job does (any mode to 8-bit RGB, EXIF orientation applied, no resizing: the
backbone resizes to 299x299 itself); unreadable files are skipped and listed on stderr. The
backbone is found like the pipeline's (`--weights`, the env var
CYCLEGAN_TFX_INCEPTION_WEIGHTS, `<cache dir>/classify_image_graph_def.pb`, the download with
`--download`); without the standard weights it is the deterministic fallback, whose FIDs are
NOT comparable with published ones. The images of both folders are held in memory.

Exit status: 0 on success, 2 on a usage error (missing folder, fewer than 2 readable images,
unusable weights).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cyclegan_tfx.config import BackboneConfig
from cyclegan_tfx.fid.backbone import WeightsError, load_backbone
from cyclegan_tfx.fid.distance import fid_from_stats, kernel_inception_distance
from cyclegan_tfx.fid.reference import STATS_DIRNAME, reference_stats
from cyclegan_tfx.preprocess.images import ImageRejected, decode_to_rgb

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
DEFAULT_CACHE_DIR = "~/.cache/cyclegan_tfx"
KID_SEED = 0


class UsageError(Exception):
    """A problem with the command line or the folders; exit status 2."""


def load_folder(folder: Path) -> tuple[list[np.ndarray], list[str]]:
    """Decodes the images of a folder.

    Args:
        folder: The folder (its files are read in sorted order, not recursively).

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
            images.append(np.asarray(decode_to_rgb(path.read_bytes(), str(path)), dtype=np.uint8))
        except ImageRejected as error:
            skipped.append(f"skipped {error}")
        except OSError as error:
            skipped.append(f"skipped {path}: cannot read: {error}")
    if len(images) < 2:
        raise UsageError(
            f"{folder}: {len(images)} readable image(s) ({len(files)} file(s) with an image "
            f"extension {', '.join(IMAGE_EXTENSIONS)}); FID and KID need at least 2"
        )
    return images, skipped


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m cyclegan_tfx.fid",
        description="FID and KID between two image folders.",
    )
    parser.add_argument("dir_a", type=Path, help="first image folder")
    parser.add_argument("dir_b", type=Path, help="second image folder (e.g. the real images)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    parser.add_argument("--backbone-seed", type=int, default=0, help="seed of the fallback")
    parser.add_argument("--weights", default="", help="path of classify_image_graph_def.pb")
    parser.add_argument(
        "--cache-dir", default=DEFAULT_CACHE_DIR, help="weights cache (default: %(default)s)"
    )
    parser.add_argument(
        "--download", action="store_true", help="download the standard weights if missing"
    )
    parser.add_argument("--kid-subsets", type=int, default=100, help="KID subsets")
    parser.add_argument("--kid-subset-size", type=int, default=1000, help="KID subset size")
    parser.add_argument("--kid-max-samples", type=int, default=2000, help="KID rows per folder")
    parser.add_argument(
        "--cache-stats",
        action="store_true",
        help="cache each image's features under <cache dir>/fid_stats/ and reuse them",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.batch_size < 1 or args.kid_subsets < 1 or args.kid_subset_size < 2:
            raise UsageError("--batch-size and --kid-subsets must be >= 1, --kid-subset-size >= 2")
        if args.kid_max_samples < 2:
            raise UsageError("--kid-max-samples must be >= 2")
        folders = {"A": args.dir_a, "B": args.dir_b}
        loaded = {}
        for label, folder in folders.items():
            images, skipped = load_folder(folder)
            for message in skipped:
                print(message, file=sys.stderr)
            loaded[label] = images
        config = BackboneConfig(
            inception_weights=args.weights,
            cache_dir=args.cache_dir,
            fallback_seed=args.backbone_seed,
            download=args.download,
        )
        backbone = load_backbone(config, batch_size=args.batch_size)
    except (UsageError, WeightsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cache_dir = Path(args.cache_dir).expanduser() / STATS_DIRNAME if args.cache_stats else None
    stats = {
        label: reference_stats(
            images, backbone, max_samples=args.kid_max_samples, cache_dir=cache_dir
        )
        for label, images in loaded.items()
    }
    fid = fid_from_stats(stats["A"].stats, stats["B"].stats)
    kid, kid_std = kernel_inception_distance(
        stats["A"].sample.truncated().rows,
        stats["B"].sample.truncated().rows,
        num_subsets=args.kid_subsets,
        subset_size=args.kid_subset_size,
        seed=KID_SEED,
    )
    result = {
        "fid": fid,
        "kid": kid,
        "kid_std": kid_std,
        "num_a": stats["A"].stats.count,
        "num_b": stats["B"].stats.count,
        "backbone": backbone.name,
        "standard_backbone": backbone.is_standard,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    note = "" if backbone.is_standard else " (fallback: NOT comparable with published FIDs)"
    print(f"FID:      {fid:.4f}")
    print(f"KID:      {kid:.6f} ± {kid_std:.6f}")
    print(
        f"N:        A {result['num_a']} images ({args.dir_a}), B {result['num_b']} ({args.dir_b})"
    )
    print(f"backbone: {backbone.name}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

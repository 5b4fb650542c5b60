"""Generates the sample "summer -> winter" dataset (see cyclegan_tfx.sample_data).

Usage: python scripts/make_sample_data.py --out data --seed 42 [--crop-size 80] [--overwrite]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cyclegan_tfx.sample_data import make_sample_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data"), help="dataset root")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--crop-size", type=int, default=80)
    parser.add_argument("--overwrite", action="store_true", help="replace existing PNG files")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    counts = make_sample_dataset(args.out, args.seed, args.crop_size, overwrite=args.overwrite)
    print(f"wrote {sum(counts.values())} images to {args.out}: {counts}")


if __name__ == "__main__":
    main()

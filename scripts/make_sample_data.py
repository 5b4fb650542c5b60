"""Generates the sample datasets (see cyclegan_tfx.data.sample_datasets).

Usage: python scripts/make_sample_data.py --out data --seed 42 [--crop-size 80] [--overwrite]
       python scripts/make_sample_data.py --out data_grade --seed 42 --task grade
       python scripts/make_sample_data.py --out data_uneven --seed 43 --uneven --task grade \
           --counts 120 100 100 100      # the optimizer study's second dataset
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cyclegan_tfx.data.sample_datasets import (
    DEFAULT_COUNTS,
    LAYOUT,
    TASKS,
    UNEVEN_B_SOURCES,
    make_sample_dataset,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data"), help="dataset root")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--crop-size", type=int, default=80)
    parser.add_argument("--overwrite", action="store_true", help="replace existing PNG files")
    parser.add_argument("--task", choices=TASKS, default=TASKS[0], help="what B changes")
    parser.add_argument(
        "--uneven",
        action="store_true",
        help=f"cut domain B from {', '.join(UNEVEN_B_SOURCES)} only (A from every photograph)",
    )
    parser.add_argument(
        "--counts",
        type=int,
        nargs=4,
        default=[DEFAULT_COUNTS[name] for name in LAYOUT],
        metavar=("TRAIN_A", "TRAIN_B", "TEST_A", "TEST_B"),
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    counts = make_sample_dataset(
        args.out,
        args.seed,
        args.crop_size,
        counts=dict(zip(LAYOUT, args.counts, strict=True)),
        overwrite=args.overwrite,
        b_sources=UNEVEN_B_SOURCES if args.uneven else None,
        task=args.task,
    )
    print(f"wrote {sum(counts.values())} images to {args.out}: {counts}")


if __name__ == "__main__":
    main()

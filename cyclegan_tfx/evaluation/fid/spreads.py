"""Spreads over the test images: bootstrap standard deviations of FID, its ratios and KID.

Every reported ± of the Evaluator, the `fid` CLI and the studies is one of these: the test
images are resampled with replacement (seeded, so reports are reproducible) and the statistic
recomputed. Statistics of paired sets (a source image, its translation, its ground truth) draw
the same images for every set of a resample, so the noise they share cancels, as it does in the
gate's comparisons. The statistics themselves are in :mod:`cyclegan_tfx.evaluation.fid.distance`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from cyclegan_tfx.evaluation.fid.distance import fid_from_rows, fid_gap_closed, kid_estimate


def bootstrap_fid_std(
    rows_a: np.ndarray, rows_b: np.ndarray, samples: int, seed: int = 0
) -> float | None:
    """The spread of FID over the test images: std of FID over bootstrap resamples.

    Each resample draws n of the rows of `rows_a` and m of `rows_b` with replacement (the test
    images of both sides resampled independently) and computes :func:`fid_from_rows`.

    Args:
        rows_a: Features [n, D] of one set (all of its images, or a uniform sample of them).
        rows_b: Features [m, D] of the other.
        samples: Number of resamples; 0 disables (returns None).
        seed: Seed of the resampling (reports are reproducible).

    Returns:
        The standard deviation (ddof=1), or None.
    """
    if samples <= 0 or len(rows_a) < 2 or len(rows_b) < 2:
        return None
    rng = np.random.default_rng(seed)
    values = [
        fid_from_rows(
            rows_a[rng.integers(0, len(rows_a), len(rows_a))],
            rows_b[rng.integers(0, len(rows_b), len(rows_b))],
        )
        for _ in range(samples)
    ]
    return float(np.std(values, ddof=1))


def _paired_bootstrap_std(
    statistic: Callable[..., float],
    paired_rows: Sequence[np.ndarray],
    rows_target: np.ndarray,
    samples: int,
    seed: int,
) -> float | None:
    """Std of `statistic(*paired resampled, target resampled)` over bootstrap resamples.

    The sets of `paired_rows` hold one row per source test image, row for row (the source
    image, its translation, its ground truth...): each resample draws the same images for all
    of them, and the target images independently.
    """
    count = len(paired_rows[0])
    if any(len(rows) != count for rows in paired_rows):
        raise ValueError(f"paired row sets of unequal sizes {[len(r) for r in paired_rows]}")
    if samples <= 0 or count < 2 or len(rows_target) < 2:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(samples):
        i = rng.integers(0, count, count)
        j = rng.integers(0, len(rows_target), len(rows_target))
        values.append(statistic(*(rows[i] for rows in paired_rows), rows_target[j]))
    return float(np.std(values, ddof=1))


def bootstrap_fid_ratio_std(
    rows_fake: np.ndarray,
    rows_source: np.ndarray,
    rows_target: np.ndarray,
    samples: int,
    seed: int = 0,
) -> float | None:
    """The spread of FID(translated, target) / FID(source, target) over the test images.

    `rows_fake[i]` must be the translation of the image of `rows_source[i]`: each resample draws
    the same source images for both FIDs (and the same target images), so the noise the two
    FIDs share cancels in the ratio, as it does in the gate's comparison.

    Args:
        rows_fake: Features [n, D] of the translated images.
        rows_source: Features [n, D] of the same images untranslated, row for row.
        rows_target: Features [m, D] of the real target domain.
        samples: Number of resamples; 0 disables (returns None).
        seed: Seed of the resampling.

    Returns:
        The standard deviation (ddof=1) of the ratio, or None.
    """
    if len(rows_fake) != len(rows_source):
        raise ValueError(f"{len(rows_fake)} translated rows for {len(rows_source)} source rows")

    def ratio(fake: np.ndarray, source: np.ndarray, target: np.ndarray) -> float:
        return fid_from_rows(fake, target) / fid_from_rows(source, target)

    return _paired_bootstrap_std(ratio, [rows_fake, rows_source], rows_target, samples, seed)


def bootstrap_fid_gap_closed_std(
    rows_fake: np.ndarray,
    rows_source: np.ndarray,
    rows_truth: np.ndarray,
    rows_target: np.ndarray,
    samples: int,
    seed: int = 0,
) -> float | None:
    """The spread of :func:`fid_gap_closed` over the test images (row i: the same source image).

    Args:
        rows_fake: Features [n, D] of the translations.
        rows_source: Features [n, D] of the source images, row for row.
        rows_truth: Features [n, D] of their true translations, row for row.
        rows_target: Features [m, D] of the real target domain.
        samples: Number of resamples; 0 disables (returns None).
        seed: Seed of the resampling.

    Returns:
        The standard deviation (ddof=1), or None.
    """

    def closed(fake: np.ndarray, source: np.ndarray, truth: np.ndarray, target: np.ndarray):
        return fid_gap_closed(
            fid_from_rows(fake, target), fid_from_rows(source, target), fid_from_rows(truth, target)
        )

    rows = [rows_fake, rows_source, rows_truth]
    return _paired_bootstrap_std(closed, rows, rows_target, samples, seed)


def bootstrap_kid_std(
    rows_a: np.ndarray, rows_b: np.ndarray, samples: int, seed: int = 0
) -> float | None:
    """The spread of KID over the test images, as :func:`bootstrap_fid_std` is FID's.

    KID's own std over subsets measures the subsets' variation and is 0 by construction when
    every subset is the whole set (N <= subset size); this resamples the images instead. Each
    resample draws min(n, m) rows of each set with replacement and computes the estimate on
    them (a row drawn twice counts as two images).

    Args:
        rows_a: Features [n, D].
        rows_b: Features [m, D].
        samples: Number of resamples; 0 disables (returns None).
        seed: Seed of the resampling.

    Returns:
        The standard deviation (ddof=1), or None.
    """
    if samples <= 0 or len(rows_a) < 2 or len(rows_b) < 2:
        return None
    rng = np.random.default_rng(seed)
    size = min(len(rows_a), len(rows_b))
    values = [
        kid_estimate(
            rows_a[rng.integers(0, len(rows_a), size)], rows_b[rng.integers(0, len(rows_b), size)]
        )
        for _ in range(samples)
    ]
    return float(np.std(values, ddof=1))

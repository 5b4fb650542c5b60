"""Bootstrap spreads over the test images (cyclegan_tfx.evaluation.fid.spreads)."""

import numpy as np
import pytest

from cyclegan_tfx.evaluation.fid.distance import fid_from_rows, kernel_inception_distance
from cyclegan_tfx.evaluation.fid.spreads import (
    bootstrap_fid_gap_closed_std,
    bootstrap_fid_ratio_std,
    bootstrap_fid_std,
    bootstrap_kid_std,
)


def test_bootstrap_fid_spread_is_reproducible_and_shrinks_with_n():
    rng = np.random.default_rng(5)
    small = [rng.standard_normal((20, 32)), rng.standard_normal((20, 32)) + 0.3]
    large = [rng.standard_normal((200, 32)), rng.standard_normal((200, 32)) + 0.3]
    spread_small = bootstrap_fid_std(*small, samples=50, seed=1)
    assert spread_small == bootstrap_fid_std(*small, samples=50, seed=1)
    assert bootstrap_fid_std(*large, samples=50, seed=1) < spread_small
    assert bootstrap_fid_std(*small, samples=0) is None
    with pytest.raises(ValueError, match="at least 2 rows"):
        fid_from_rows(small[0][:1], small[1])


def test_ratio_spread_resamples_both_fids_on_the_same_images():
    rng = np.random.default_rng(8)
    source, target = rng.standard_normal((40, 16)), rng.standard_normal((30, 16)) + 0.5
    # A "translation" that changes nothing: the ratio is exactly 1 on every resample.
    assert bootstrap_fid_ratio_std(source, source, target, samples=30) == pytest.approx(0.0)
    shifted = source + 0.2
    spread = bootstrap_fid_ratio_std(shifted, source, target, samples=30, seed=2)
    assert spread == bootstrap_fid_ratio_std(shifted, source, target, samples=30, seed=2) > 0
    with pytest.raises(ValueError, match="translated rows"):
        bootstrap_fid_ratio_std(source[:5], source, target, samples=3)


def test_gap_closed_spread_resamples_the_same_images_in_every_set():
    rng = np.random.default_rng(3)
    source, target = rng.standard_normal((40, 16)), rng.standard_normal((30, 16)) + 0.8
    truth = source + 0.5
    # A perfect translation closes the whole gap on every resample: no spread at all.
    assert bootstrap_fid_gap_closed_std(truth, source, truth, target, 30) == pytest.approx(0.0)
    halfway = source + 0.25
    spread = bootstrap_fid_gap_closed_std(halfway, source, truth, target, 30, seed=1)
    assert spread == bootstrap_fid_gap_closed_std(halfway, source, truth, target, 30, seed=1)
    assert spread > 0
    assert bootstrap_fid_gap_closed_std(halfway, source, truth, target, 0) is None
    with pytest.raises(ValueError, match="unequal sizes"):
        bootstrap_fid_gap_closed_std(halfway, source, truth[:3], target, 3)


def test_kid_spread_is_a_bootstrap_not_zero_by_construction():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((50, 16)), rng.standard_normal((50, 16)) + 0.3
    # KID's std over subsets is 0 when every subset is the whole set ...
    assert kernel_inception_distance(a, b, num_subsets=10, subset_size=1000)[1] == 0.0
    # ... the bootstrap over the images is not, and it shrinks with N.
    spread = bootstrap_kid_std(a, b, samples=40, seed=2)
    assert spread == bootstrap_kid_std(a, b, samples=40, seed=2) > 0
    big_a, big_b = rng.standard_normal((400, 16)), rng.standard_normal((400, 16)) + 0.3
    assert bootstrap_kid_std(big_a, big_b, samples=40, seed=2) < spread
    assert bootstrap_kid_std(a, b, samples=0) is None
    assert fid_from_rows(a, a) == pytest.approx(0.0, abs=1e-8)

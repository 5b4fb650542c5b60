"""Confidence intervals over seeds, checked against closed forms."""

import math

import pytest

from cyclegan_tfx.experiments.intervals import mean_interval, paired_difference


def test_t_interval_closed_form():
    # n = 3, values 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653, half-width 4.302653 / sqrt(3).
    interval = mean_interval([1.0, 2.0, 3.0])
    assert interval.mean == 2.0
    assert interval.half_width == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert not interval.excludes_zero()
    assert mean_interval([10.0, 11.0, 12.0]).excludes_zero()


def test_pairing_removes_the_shared_seed_variation():
    control = [1.0, 5.0, 9.0]  # large seed-to-seed spread
    treatment = [1.5, 5.4, 9.6]  # always about 0.5 higher
    unpaired = mean_interval(treatment).half_width + mean_interval(control).half_width
    paired = paired_difference(treatment, control)
    assert paired.mean == pytest.approx(0.5)
    assert paired.half_width < 0.5 < unpaired
    assert paired.excludes_zero()


def test_one_value_has_no_interval_and_bad_input_is_refused():
    single = mean_interval([4.0])
    assert single.n == 1 and math.isnan(single.half_width) and not single.excludes_zero()
    assert single.format() == "4"
    with pytest.raises(ValueError, match="no values"):
        mean_interval([])
    with pytest.raises(ValueError, match="finite"):
        mean_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="control values"):
        paired_difference([1.0], [1.0, 2.0])

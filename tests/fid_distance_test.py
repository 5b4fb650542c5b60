import json
import logging

import apache_beam as beam
import numpy as np
import pytest
import scipy.linalg
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import BeamAssertException, assert_that

from cyclegan_tfx.evaluation.fid.beam import FeatureStatsCombineFn
from cyclegan_tfx.evaluation.fid.distance import (
    fid_from_rows,
    fid_from_stats,
    fid_gap_closed,
    frechet_distance,
    kernel_inception_distance,
)
from cyclegan_tfx.evaluation.fid.stats import FeatureStats


def _random_spd(rng: np.random.Generator, dim: int) -> np.ndarray:
    a = rng.standard_normal((dim, 2 * dim))
    return a @ a.T / (2 * dim) + 0.1 * np.eye(dim)


@pytest.fixture(scope="module")
def features() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((300, 16)) * rng.uniform(0.5, 2.0, 16) + rng.uniform(-1, 1, 16)


# --- FeatureStats ---------------------------------------------------------------------------


def test_stats_match_numpy(features):
    stats = FeatureStats.from_features(features)
    assert stats.count == 300
    np.testing.assert_allclose(stats.mean(), features.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance(), np.cov(features, rowvar=False), atol=1e-12)


def test_split_then_merge_equals_one_pass(features):
    one_pass = FeatureStats.from_features(features)
    parts = [FeatureStats.from_features(chunk) for chunk in np.array_split(features, 7)]
    merged = FeatureStats.empty(16).merge(*parts)
    incremental = FeatureStats.empty(16)
    for chunk in np.array_split(features, 5):
        incremental.add(chunk)
    for stats in (merged, incremental):
        assert stats.count == one_pass.count
        np.testing.assert_allclose(stats.mean(), one_pass.mean(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(
            stats.covariance(), one_pass.covariance(), rtol=1e-10, atol=1e-10
        )


def test_add_and_merge_are_in_place_and_leave_others_unchanged(features):
    stats = FeatureStats.empty(16)
    assert stats.add(features[:10]) is stats
    other = FeatureStats.from_features(features[10:20])
    before = other.copy()
    assert stats.merge(other) is stats
    assert stats.count == 20
    np.testing.assert_array_equal(other.outer_sum, before.outer_sum)
    assert other.count == before.count


def test_stats_serialisation_round_trips(features, tmp_path):
    stats = FeatureStats.from_features(features)
    restored = FeatureStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    np.testing.assert_array_equal(restored.outer_sum, stats.outer_sum)
    np.testing.assert_array_equal(restored.feature_sum, stats.feature_sum)
    assert restored.count == stats.count
    stats.save(tmp_path / "stats.npz")
    loaded = FeatureStats.load(tmp_path / "stats.npz")
    np.testing.assert_array_equal(loaded.outer_sum, stats.outer_sum)
    assert loaded.count == stats.count


def test_stats_errors():
    stats = FeatureStats.empty(4)
    with pytest.raises(ValueError, match="count == 0"):
        stats.mean()
    stats.add(np.ones((1, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        stats.covariance()
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        stats.add(np.ones((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        stats.add(np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="merge"):
        stats.merge(FeatureStats.empty(3))
    with pytest.raises(ValueError, match=">= 1"):
        FeatureStats.empty(0)


# --- Fréchet distance -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_identical_gaussians_give_zero(method):
    rng = np.random.default_rng(1)
    mu, sigma = rng.standard_normal(32), _random_spd(rng, 32)
    assert frechet_distance(mu, sigma, mu, sigma, method=method) == pytest.approx(0.0, abs=1e-8)


def test_equal_covariances_give_squared_mean_distance():
    rng = np.random.default_rng(2)
    sigma = _random_spd(rng, 24)
    mu1, mu2 = rng.standard_normal(24), rng.standard_normal(24)
    expected = float(np.sum((mu1 - mu2) ** 2))
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(expected, rel=1e-9)


def test_diagonal_covariances_closed_form():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.1, 3, 20), rng.uniform(0.1, 3, 20)
    mu1, mu2 = rng.standard_normal(20), rng.standard_normal(20)
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2) + np.sum((mu1 - mu2) ** 2)
    for method in ("eigh", "sqrtm"):
        value = frechet_distance(mu1, np.diag(a), mu2, np.diag(b), method=method)
        assert value == pytest.approx(expected, rel=1e-9)


def test_eigh_and_sqrtm_agree_on_random_spd():
    rng = np.random.default_rng(4)
    mu1, mu2 = rng.standard_normal(64), rng.standard_normal(64)
    s1, s2 = _random_spd(rng, 64), _random_spd(rng, 64)
    eigh = frechet_distance(mu1, s1, mu2, s2, method="eigh")
    sqrtm = frechet_distance(mu1, s1, mu2, s2, method="sqrtm")
    assert eigh == pytest.approx(sqrtm, rel=1e-6)


def test_near_singular_covariances_no_nan_and_methods_agree():
    # N < D: both covariances are singular (rank N - 1).
    rng = np.random.default_rng(5)
    a = rng.standard_normal((40, 64))
    b = rng.standard_normal((40, 64)) * 1.3 + 0.2
    stats_a, stats_b = FeatureStats.from_features(a), FeatureStats.from_features(b)
    eigh = fid_from_stats(stats_a, stats_b)
    sqrtm = fid_from_stats(stats_a, stats_b, method="sqrtm")
    assert np.isfinite(eigh) and eigh > 0
    assert eigh == pytest.approx(sqrtm, rel=1e-6)


def test_rank_one_covariances_are_finite():
    v = np.arange(1.0, 9.0)
    sigma = np.outer(v, v)
    value = frechet_distance(np.zeros(8), sigma, np.ones(8), sigma * 4)
    # sqrt of rank-one PSD matrices: tr(S1) + tr(S2) - 2 tr sqrt(S1 S2) = |v|^2 (1 + 4 - 2 * 2).
    assert value == pytest.approx(8 + v @ v, rel=1e-9)


def test_frechet_shape_validation():
    with pytest.raises(ValueError, match="sigma1"):
        frechet_distance(np.zeros(3), np.eye(4), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="mismatch"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="mu1 must be 1-D"):
        frechet_distance(np.zeros((3, 1)), np.eye(3), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full(3, np.nan), np.eye(3), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="unknown method"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3), method="svd")


def _pytorch_fid_reference(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """pytorch-fid's calculate_frechet_distance (TTUR's formula), verbatim in substance."""
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def _feature_sets(n, dim, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, dim)) * rng.uniform(0.5, 2.0, dim)
    b = rng.standard_normal((n, dim)) * 1.2 + 0.1
    return a, b


def _eigenvalue_reference(mu1, sigma1, mu2, sigma2):
    """tr(sqrt(S1 S2)) as the sum of square roots of the eigenvalues of S1 S2.

    S1 S2 is similar to S1^1/2 S2 S1^1/2, so its eigenvalues are real and >= 0; a general
    (non-symmetric) eigensolver finds them, round-off aside, also for singular covariances.
    A different route from the library's symmetric eigendecompositions.
    """
    diff = mu1 - mu2
    eigenvalues = np.linalg.eigvals(sigma1 @ sigma2).real.clip(min=0.0)
    return diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.sqrt(eigenvalues).sum()


# For N < D pytorch-fid's own route (scipy's sqrtm of the non-symmetric product S1 S2) is
# ill-conditioned: whether it returns a usable result or one with a large imaginary part
# depends on the draw and on the BLAS kernels of the machine (see the next test), so those
# cases are checked against the eigenvalue route instead.
@pytest.mark.parametrize(
    ("n", "dim", "seed", "reference"),
    [
        (1000, 256, 0, _pytorch_fid_reference),  # N > D
        (200, 256, 0, _eigenvalue_reference),  # N < D: singular covariances
        pytest.param(  # Inception's D, N < 2048 (~20 s)
            2000, 2048, 1, _eigenvalue_reference, marks=pytest.mark.slow
        ),
    ],
)
def test_matches_the_reference_formula_on_fixed_features(n, dim, seed, reference):
    a, b = _feature_sets(n, dim, seed)
    ours = fid_from_stats(FeatureStats.from_features(a), FeatureStats.from_features(b))
    expected = reference(
        a.mean(axis=0), np.cov(a, rowvar=False), b.mean(axis=0), np.cov(b, rowvar=False)
    )
    assert ours == pytest.approx(expected, rel=1e-6)


def test_both_references_agree_where_sqrtm_is_well_conditioned():
    a, b = _feature_sets(1000, 256, seed=2)
    stats = (a.mean(axis=0), np.cov(a, rowvar=False), b.mean(axis=0), np.cov(b, rowvar=False))
    assert _eigenvalue_reference(*stats) == pytest.approx(_pytorch_fid_reference(*stats), 1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_eigh_stays_exact_where_the_sqrtm_reference_may_break_down(seed):
    # N < D: pytorch-fid's sqrtm route either raises on a large imaginary part or is right,
    # depending on the draw and the machine's BLAS; the eigh route is right on every draw.
    a, b = _feature_sets(200, 256, seed=seed)
    mu1, sigma1 = a.mean(axis=0), np.cov(a, rowvar=False)
    mu2, sigma2 = b.mean(axis=0), np.cov(b, rowvar=False)
    ours = frechet_distance(mu1, sigma1, mu2, sigma2)
    assert np.isfinite(ours) and ours > 0
    assert ours == pytest.approx(_eigenvalue_reference(mu1, sigma1, mu2, sigma2), rel=1e-6)
    try:
        reference = _pytorch_fid_reference(mu1, sigma1, mu2, sigma2)
    except ValueError as error:
        assert "Imaginary component" in str(error)
    else:
        assert ours == pytest.approx(reference, rel=1e-4)
    # Continuity: a tiny ridge makes both covariances regular; the value barely moves.
    ridge = 1e-9 * np.eye(256)
    assert frechet_distance(mu1, sigma1 + ridge, mu2, sigma2 + ridge) == pytest.approx(
        ours, rel=1e-6
    )


def test_fid_from_stats_warns_at_small_n(caplog):
    rng = np.random.default_rng(6)
    stats = FeatureStats.from_features(rng.standard_normal((10, 16)))
    with caplog.at_level(logging.WARNING, logger="cyclegan_tfx.evaluation.fid.distance"):
        fid_from_stats(stats, stats)
    assert "biased" in caplog.text
    with pytest.raises(ValueError, match="dimension mismatch"):
        fid_from_stats(stats, FeatureStats.from_features(rng.standard_normal((10, 8))))


# --- KID ------------------------------------------------------------------------------------


def test_kid_same_distribution_near_zero_and_shift_positive(caplog):
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((200, 32)), rng.standard_normal((200, 32))
    mean, std = kernel_inception_distance(x, y, num_subsets=20, subset_size=100)
    assert abs(mean) < 0.05
    assert std >= 0
    shifted_mean, _ = kernel_inception_distance(x, y + 1.0, num_subsets=20, subset_size=100)
    assert shifted_mean > 1.0
    assert shifted_mean > 20 * abs(mean)
    with caplog.at_level(logging.INFO, logger="cyclegan_tfx.evaluation.fid.distance"):
        clipped = kernel_inception_distance(x[:50], y, num_subsets=3, subset_size=1000)
    assert "subset_size" in caplog.text
    assert np.isfinite(clipped).all()


def test_kid_is_deterministic_and_validates():
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((60, 8)), rng.standard_normal((70, 8))
    first = kernel_inception_distance(x, y, num_subsets=5, subset_size=30, seed=3)
    assert first == kernel_inception_distance(x, y, num_subsets=5, subset_size=30, seed=3)
    with pytest.raises(ValueError, match="N1, D"):
        kernel_inception_distance(x, y[:, :4])
    with pytest.raises(ValueError, match="at least 2"):
        kernel_inception_distance(x[:1], y)


# --- Beam -----------------------------------------------------------------------------------


def _keyed_batches(features: np.ndarray, parts: int) -> list[tuple[list[str], np.ndarray]]:
    keys = [f"{i:04d}" for i in np.random.default_rng(1).permutation(len(features))]
    return [
        (keys[chunk[0] : chunk[-1] + 1], features[chunk])
        for chunk in np.array_split(np.arange(len(features)), parts)
    ]


def test_combine_fn_merge_accumulators(features):
    fn = FeatureStatsCombineFn(16, kid_max_samples=50)
    batches = _keyed_batches(features, 4)
    accumulators = [fn.add_input(fn.create_accumulator(), b) for b in batches]
    merged = fn.extract_output(fn.merge_accumulators(accumulators))
    np.testing.assert_allclose(
        merged.stats.covariance(), np.cov(features, rowvar=False), rtol=1e-10, atol=1e-12
    )
    keys = np.concatenate([b[0] for b in batches])
    smallest = np.argsort(keys)[:50]
    np.testing.assert_array_equal(merged.sample.keys, keys[smallest])
    np.testing.assert_array_equal(merged.sample.rows, features[smallest])
    assert fn.merge_accumulators([]).stats.count == 0
    with pytest.raises(ValueError, match="feature_dim"):
        FeatureStatsCombineFn(0, kid_max_samples=50)
    with pytest.raises(ValueError, match="kid_max_samples"):
        FeatureStatsCombineFn(16, kid_max_samples=0)


def test_combine_fn_in_pipeline_equals_single_pass(features):
    expected = FeatureStats.from_features(features)

    def check(outputs):
        ((stats, sample),) = outputs
        if stats.count != expected.count or not (
            np.allclose(stats.mean(), expected.mean(), rtol=1e-10, atol=1e-10)
            and np.allclose(stats.covariance(), expected.covariance(), rtol=1e-10, atol=1e-10)
        ):
            raise BeamAssertException(f"stats differ: count {stats.count}")
        if len(sample) != 40 or list(sample.keys) != sorted(sample.keys):
            raise BeamAssertException(f"sample of {len(sample)} rows, keys {sample.keys[:3]}")

    with test_pipeline.TestPipeline() as pipeline:
        stats = (
            pipeline
            | beam.Create(_keyed_batches(features, 12), reshuffle=True)
            | beam.CombineGlobally(FeatureStatsCombineFn(16, kid_max_samples=40))
        )
        assert_that(stats, check)


@pytest.mark.parametrize(("n", "m", "dim"), [(30, 40, 256), (300, 200, 64)])
def test_sample_space_fid_equals_the_covariance_route(n, m, dim):
    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, dim)) * rng.uniform(0.5, 2.0, dim)
    b = rng.standard_normal((m, dim)) * 1.3 + 0.2
    expected = fid_from_stats(FeatureStats.from_features(a), FeatureStats.from_features(b))
    assert fid_from_rows(a, b) == pytest.approx(expected, rel=1e-8)
    assert fid_from_rows(a, a) == pytest.approx(0.0, abs=1e-8)


def test_gap_closed_is_one_for_the_truth_and_zero_for_doing_nothing():
    assert fid_gap_closed(fid=174.0, fid_identity=203.0, fid_truth=174.0) == 1.0
    assert fid_gap_closed(fid=203.0, fid_identity=203.0, fid_truth=174.0) == 0.0
    assert fid_gap_closed(fid=188.5, fid_identity=203.0, fid_truth=174.0) == pytest.approx(0.5)
    assert fid_gap_closed(fid=261.0, fid_identity=203.0, fid_truth=174.0) == pytest.approx(-2.0)
    # Doing nothing already at the truth's FID: only as good as the truth counts.
    assert fid_gap_closed(fid=150.0, fid_identity=150.0, fid_truth=160.0) == 1.0
    assert fid_gap_closed(fid=170.0, fid_identity=150.0, fid_truth=160.0) == 0.0

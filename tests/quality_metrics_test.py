"""The quality TFMA metric: FID/KID, identity mapping, ground truth, bounds (fake backbone)."""

import dataclasses
import json

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import BeamAssertException, assert_that
from conftest import REPO_ROOT, stored_eval_config, tfma_validate
from fid_fakes import CountingBackbone, random_images
from tensorflow_model_analysis.evaluators.metrics_plots_and_validations_evaluator import (
    _filter_and_separate_computations,
)
from tensorflow_model_analysis.metrics import metric_specs, metric_types

from components import quality_metrics
from components.quality_metrics import TranslationQuality, _quality_computations, emitted_keys
from cyclegan_tfx.config import BackboneBounds, OptionalDirectionBounds, load_config
from cyclegan_tfx.evaluation import paired_metrics
from cyclegan_tfx.evaluation.fid.distance import (
    fid_from_rows,
    fid_gap_closed,
    kernel_inception_distance,
)
from cyclegan_tfx.evaluation.fid.reference import image_digest
from cyclegan_tfx.evaluation.fid.spreads import bootstrap_kid_std
from cyclegan_tfx.evaluation.metric_keys import KEYS
from cyclegan_tfx.image_grid import png_bytes
from pipeline.eval_config import build_eval_config, gate_thresholds

NUM_A, NUM_B = 10, 12


@pytest.fixture()
def backbone(monkeypatch):
    fake = CountingBackbone()
    monkeypatch.setattr(quality_metrics, "load_backbone", lambda config, batch_size=16: fake)
    return fake


def _combiner(tmp_path, cache=True, max_samples=50, ground_truth=True, **settings):
    (computation,) = _quality_computations(
        backbone={"cache_dir": str(tmp_path / "cache")},
        batch_size=4,
        kid_num_subsets=5,
        kid_subset_size=6,
        kid_max_samples=max_samples,
        cache_reference_stats=cache,
        bootstrap_samples=20,
        ground_truth=ground_truth,
        **settings,
    )
    return computation.combiner


def _data():
    real_a, real_b = random_images(NUM_A, 16, seed=0), random_images(NUM_B, 16, seed=1, shift=40)
    fake_b, fake_a = random_images(NUM_A, 16, seed=2, shift=30), random_images(NUM_B, 16, seed=3)
    truth_b = np.clip(real_a.astype(int) + 25, 0, 255).astype(np.uint8)  # "true" A->B
    truth_a = np.clip(real_b.astype(int) - 25, 0, 255).astype(np.uint8)
    return real_a, real_b, fake_b, fake_a, truth_b, truth_a


def _colour(images):
    """A stand-in for the colour-transfer baseline's images (a brightness shift)."""
    return np.clip(images.astype(int) + 12, 0, 255).astype(np.uint8)


def _elements(batch_size=3, with_truth=True, data=None, partial_truth=False, colour=True):
    """StandardMetricInputs as TFMA yields them: mixed domains per batch, truth and the
    colour-transfer baseline as features."""
    real_a, real_b, fake_b, fake_a, truth_b, truth_a = _data() if data is None else data
    real = np.concatenate([real_a, real_b])
    translated = np.concatenate([fake_b, fake_a])
    truth = np.array([png_bytes(t) for t in np.concatenate([truth_b, truth_a])], dtype=object)
    colours = np.array([png_bytes(c) for c in _colour(real)], dtype=object)
    if partial_truth:
        truth[1] = b""  # one A image without ground truth
    is_a = np.array([True] * NUM_A + [False] * NUM_B)
    order = np.random.default_rng(9).permutation(len(is_a))
    real, translated, is_a, truth = real[order], translated[order], is_a[order], truth[order]
    colours = colours[order]
    elements = []
    for start in range(0, len(is_a) - 1, batch_size):
        part = slice(start, min(start + batch_size, len(is_a) - 1))
        predictions = {
            "real": real[part],
            "translated": translated[part],
            "is_domain_a": is_a[part],
        }
        features = {"truth": truth[part]} if with_truth else {}
        if colour:
            features["colour_transfer"] = colours[part]
        elements.append(
            metric_types.StandardMetricInputs(predictions=predictions, features=features)
        )
    # The last example unbatched, as TFMA may pass a single example.
    last = {"real": real[-1], "translated": translated[-1], "is_domain_a": is_a[-1]}
    features = {"truth": truth[-1:]} if with_truth else {}
    if colour:
        features["colour_transfer"] = colours[-1:]
    elements.append(metric_types.StandardMetricInputs(predictions=last, features=features))
    return elements


def _run(combiner, elements, splits=1):
    combiner.setup()
    accumulators = []
    for chunk in np.array_split(np.arange(len(elements)), splits):
        accumulator = combiner.create_accumulator()
        for index in chunk:
            accumulator = combiner.add_input(accumulator, elements[index])
        accumulators.append(combiner.compact(accumulator))
    return combiner.extract_output(combiner.merge_accumulators(accumulators))


def _by_name(output):
    return {key.name: value for key, value in output.items()}


def _rows(backbone, images, keyed_by=None):
    """Features in the sample's order: by the digest of the image (or of its source image)."""
    keys = images if keyed_by is None else keyed_by
    order = np.argsort([image_digest(i) for i in keys], kind="stable")
    return backbone(images)[order]


def test_emits_every_key_of_both_directions(backbone, tmp_path):
    result = _by_name(_run(_combiner(tmp_path), _elements()))
    assert set(result) == set(emitted_keys(ground_truth=True))
    unpaired = _by_name(_run(_combiner(tmp_path, ground_truth=False), _elements()))
    assert set(unpaired) == set(emitted_keys(ground_truth=False))
    assert not {k for k in unpaired if k.startswith(("mae", "psnr", "ssim", "paired"))}


def test_fid_and_the_identity_mapping(backbone, tmp_path):
    result = _by_name(_run(_combiner(tmp_path), _elements()))
    real_a, real_b, fake_b, fake_a, _, _ = _data()
    a2b, b2a = KEYS["a2b"], KEYS["b2a"]
    assert result[a2b.fid] == pytest.approx(fid_from_rows(backbone(fake_b), backbone(real_b)))
    assert result[b2a.fid] == pytest.approx(fid_from_rows(backbone(fake_a), backbone(real_a)))
    # Doing nothing: the source images as they are, against the target domain.
    identity = fid_from_rows(backbone(real_a), backbone(real_b))
    assert result[a2b.fid_identity] == pytest.approx(identity)
    assert result[b2a.fid_identity] == pytest.approx(identity)
    assert result[a2b.fid_vs_identity] == pytest.approx(result[a2b.fid] / identity)
    assert result[a2b.num_fake] == NUM_A and result[a2b.num_real] == NUM_B
    assert result[a2b.backbone] == backbone.name
    assert result[a2b.fid_std] > 0 and result[a2b.fid_identity_std] > 0
    assert result[a2b.fid_vs_identity_std] > 0


def test_kid_matches_the_pure_function(backbone, tmp_path):
    result = _by_name(_run(_combiner(tmp_path, cache=False), _elements()))
    real_a, real_b, fake_b, _, _, _ = _data()
    fakes = _rows(backbone, fake_b, keyed_by=real_a)  # a translation is keyed by its source
    reals = _rows(backbone, real_b)
    expected, _ = kernel_inception_distance(fakes, reals, num_subsets=5, subset_size=6, seed=0)
    assert result["kid_a2b"] == pytest.approx(expected, rel=1e-9)
    # The spread is the bootstrap over the test images, as FID's (not 0 when N <= subset size).
    assert result["kid_a2b_std"] == pytest.approx(bootstrap_kid_std(fakes, reals, 20), rel=1e-9)
    assert result["kid_a2b_std"] > 0


def test_paired_scores_against_the_ground_truth(backbone, tmp_path):
    result = _by_name(_run(_combiner(tmp_path), _elements()))
    real_a, _, fake_b, fake_a, truth_b, truth_a = _data()
    keep = np.arange(NUM_A) >= 0
    a2b, b2a = KEYS["a2b"], KEYS["b2a"]
    assert result[a2b.paired_num] == NUM_A and result[b2a.paired_num] == NUM_B
    for metric in ("mae", "psnr", "ssim"):
        function = getattr(paired_metrics, metric)
        translated = np.mean(
            [function(x, t) for x, t in zip(fake_b[keep], truth_b[keep], strict=True)]
        )
        as_is = np.mean([function(x, t) for x, t in zip(real_a[keep], truth_b[keep], strict=True)])
        assert result[a2b.paired(metric)] == pytest.approx(translated)
        assert result[a2b.paired(metric, "_identity")] == pytest.approx(as_is)
        assert result[a2b.paired(metric, "_std")] > 0
        expected_b2a = np.mean([function(x, t) for x, t in zip(fake_a, truth_a, strict=True)])
        assert result[b2a.paired(metric)] == pytest.approx(expected_b2a)
    ratio = result[a2b.paired("mae")] / result[a2b.paired("mae", "_identity")]
    assert result[a2b.mae_vs_identity] == pytest.approx(ratio)


def test_fid_of_the_truth_is_the_floor_of_the_gap_closed(backbone, tmp_path):
    result = _by_name(_run(_combiner(tmp_path), _elements()))
    _, real_b, _, _, truth_b, _ = _data()
    a2b = KEYS["a2b"]
    truth_fid = fid_from_rows(backbone(truth_b), backbone(real_b))
    assert result[a2b.fid_truth] == pytest.approx(truth_fid)
    closed = fid_gap_closed(result[a2b.fid], result[a2b.fid_identity], truth_fid)
    assert result[a2b.fid_gap_closed] == pytest.approx(closed)
    assert result[a2b.fid_gap_closed_std] > 0


def test_a_perfect_translation_closes_the_gap_and_doing_nothing_does_not(backbone, tmp_path):
    real_a, real_b, _, _, truth_b, truth_a = _data()
    perfect = (real_a, real_b, truth_b, truth_a, truth_b, truth_a)
    nothing = (real_a, real_b, real_a, real_b, truth_b, truth_a)
    for data, closed in ((perfect, 1.0), (nothing, 0.0)):
        result = _by_name(_run(_combiner(tmp_path, cache=False), _elements(data=data)))
        for direction in ("a2b", "b2a"):
            assert result[KEYS[direction].fid_gap_closed] == pytest.approx(closed, abs=1e-9)


def test_the_colour_transfer_baseline_is_scored_like_a_model(backbone, tmp_path):
    result = _by_name(_run(_combiner(tmp_path), _elements()))
    real_a, real_b, _, _, truth_b, _ = _data()
    a2b = KEYS["a2b"]
    colour_b = _colour(real_a)
    expected = fid_from_rows(backbone(colour_b), backbone(real_b))
    assert result[a2b.fid_colour_transfer] == pytest.approx(expected)
    assert result[a2b.fid_vs_colour_transfer] == pytest.approx(result[a2b.fid] / expected)
    assert result[a2b.fid_colour_transfer_std] > 0 and result[a2b.fid_vs_colour_transfer_std] > 0
    mae = np.mean([paired_metrics.mae(c, t) for c, t in zip(colour_b, truth_b, strict=True)])
    assert result[a2b.paired("mae", "_colour_transfer")] == pytest.approx(mae)
    assert result[a2b.paired("mae", "_colour_transfer_std")] > 0
    assert result[a2b.mae_vs_colour_transfer] == pytest.approx(result[a2b.paired("mae")] / mae)
    without = _by_name(_run(_combiner(tmp_path), _elements(colour=False)))
    assert a2b.fid_colour_transfer not in without and a2b.mae_vs_colour_transfer not in without


def test_partial_ground_truth_is_a_clear_error(backbone, tmp_path):
    with pytest.raises(ValueError, match="ground truth for 9 of 10 test images"):
        _run(_combiner(tmp_path), _elements(partial_truth=True))


def test_paired_data_without_truth_emits_no_paired_keys(backbone, tmp_path):
    result = _by_name(_run(_combiner(tmp_path), _elements(with_truth=False)))
    assert KEYS["a2b"].paired_num not in result and "mae_a2b" not in result


def test_a_bound_applies_only_with_its_backbone(backbone, tmp_path):
    mine = {"backbone": backbone.name, "a2b": 4.0, "b2a": None}
    other = {"backbone": "inception-2015-12-05", "a2b": 4.0, "b2a": None}
    result = _by_name(_run(_combiner(tmp_path, fid_bound=mine, kid_bound=other), _elements()))
    a2b, b2a = KEYS["a2b"], KEYS["b2a"]
    assert result[a2b.fid_bound_applied] == 1
    assert result[a2b.fid_vs_bound] == pytest.approx(result[a2b.fid] / 4.0)
    assert result[b2a.fid_bound_applied] == 0 and result[b2a.fid_vs_bound] == 0.0
    assert result[a2b.kid_bound_applied] == 0 and result[a2b.kid_vs_bound] == 0.0


def test_sharded_evaluation_equals_single_pass(backbone, tmp_path):
    single = _by_name(_run(_combiner(tmp_path / "one", cache=False), _elements(NUM_A + NUM_B)))
    for cache in (False, True):
        sharded = _by_name(_run(_combiner(tmp_path / str(cache), cache=cache), _elements(), 4))
        assert sharded.keys() == single.keys()
        for key, value in single.items():
            if isinstance(value, str):
                assert sharded[key] == value
            else:
                assert sharded[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_kid_sample_is_capped_deterministically(backbone, tmp_path):
    capped = _by_name(_run(_combiner(tmp_path, cache=False, max_samples=4), _elements(), 3))
    again = _by_name(_run(_combiner(tmp_path, cache=False, max_samples=4), _elements(5), 2))
    assert capped["kid_a2b"] == again["kid_a2b"]
    assert capped["fid_a2b"] == pytest.approx(again["fid_a2b"])
    assert capped["fid_a2b_num_real"] == NUM_B  # FID still uses every image


def test_second_evaluation_reuses_the_reference_cache(backbone, tmp_path):
    first = _by_name(_run(_combiner(tmp_path), _elements()))
    # Real, ground truth, colour-transfer and translated images of both domains.
    assert backbone.images_seen == 4 * (NUM_A + NUM_B)
    rows = list((tmp_path / "cache" / "fid_stats").rglob("*.npy"))
    assert len(rows) == 3 * (NUM_A + NUM_B)  # a feature row per real, truth, colour image
    second = _by_name(_run(_combiner(tmp_path), _elements()))
    assert backbone.images_seen == 5 * (NUM_A + NUM_B), "real images must come from the cache"
    assert second == first  # identical, bit for bit


def test_without_cache_nothing_is_written(backbone, tmp_path):
    _run(_combiner(tmp_path, cache=False), _elements())
    assert not (tmp_path / "cache").exists()


def test_too_few_images_is_a_clear_error(backbone, tmp_path):
    element = _elements(batch_size=NUM_A + NUM_B)[0]
    predictions = element.get_predictions("")
    only_a = {k: v[predictions["is_domain_a"]] for k, v in predictions.items()}
    with pytest.raises(ValueError, match="at least 2 test images of domain B"):
        _run(_combiner(tmp_path), [metric_types.StandardMetricInputs(predictions=only_a)])


def test_combiner_in_a_beam_pipeline(backbone, tmp_path):
    expected = _by_name(_run(_combiner(tmp_path / "ref", cache=False), _elements()))
    combiner = _combiner(tmp_path / "beam", cache=False)

    def check(outputs):
        (output,) = outputs
        result = _by_name(output)
        for key in ("fid_a2b", "fid_b2a_identity", "mae_b2a"):
            if not np.isclose(result[key], expected[key], rtol=1e-9):
                raise BeamAssertException(f"{key} {result[key]} != {expected[key]}")

    with test_pipeline.TestPipeline() as pipeline:
        output = (
            pipeline
            | beam.Create(_elements(), reshuffle=True)
            | beam.CombineGlobally(combiner).without_defaults()
        )
        assert_that(output, check)


# --- the metric class and the EvalConfig -------------------------------------------------------


def test_metric_names_and_validation():
    assert TranslationQuality("mae_b2a", ground_truth=True).name == "mae_b2a"
    with pytest.raises(ValueError, match="name must be one of the emitted keys"):
        TranslationQuality("mae_b2a", ground_truth=False)
    with pytest.raises(ValueError, match="name must be one of the emitted keys"):
        TranslationQuality("fid")


def _evaluate(**changes):
    return dataclasses.replace(load_config(REPO_ROOT / "params.yaml").evaluate, **changes)


def _threshold_names(eval_config):
    thresholds = metric_specs.metric_thresholds_from_metrics_specs(
        eval_config.metrics_specs, eval_config
    )
    return sorted({(key.name, key.is_diff) for key in thresholds})


def test_the_default_gate():
    evaluate = _evaluate(
        fid_upper_bound=BackboneBounds(),
        kid_upper_bound=BackboneBounds(),
        mae_upper_bound=OptionalDirectionBounds(),
        psnr_lower_bound=OptionalDirectionBounds(),
        ssim_lower_bound=OptionalDirectionBounds(),
    )
    paired_names = _threshold_names(build_eval_config(evaluate, ground_truth=True))
    # With ground truth the baseline comparison is on MAE, not FID (docs/gate.md).
    assert paired_names == sorted(
        [(f"mae_{d}", True) for d in ("a2b", "b2a")]
        + [(f"mae_{d}_vs_identity", False) for d in ("a2b", "b2a")]
        + [(f"mae_{d}_vs_colour_transfer", False) for d in ("a2b", "b2a")]
        + [(f"fid_{d}_gap_closed", False) for d in ("a2b", "b2a")]
    )
    unpaired_names = _threshold_names(build_eval_config(evaluate, ground_truth=False))
    assert unpaired_names == sorted(
        [(f"fid_{d}", True) for d in ("a2b", "b2a")]
        + [(f"fid_{d}_vs_identity", False) for d in ("a2b", "b2a")]
        + [(f"fid_{d}_vs_colour_transfer", False) for d in ("a2b", "b2a")]
    )


def test_all_metric_configs_share_one_computation():
    evaluate = _evaluate(
        fid_upper_bound=BackboneBounds(backbone="x", a2b=40.0),
        psnr_lower_bound=OptionalDirectionBounds(b2a=20.0),
    )
    eval_config = build_eval_config(evaluate, ground_truth=True)
    assert len(eval_config.metrics_specs[0].metrics) > 5
    computations = metric_specs.to_computations(eval_config.metrics_specs, eval_config)
    combiners = [
        c.combiner
        for c in _filter_and_separate_computations(computations)[0]
        if isinstance(c, metric_types.MetricComputation)
        and isinstance(c.combiner, quality_metrics._QualityCombiner)
    ]
    assert len(combiners) == 1


def _validate(eval_config, candidate, baseline=None):
    stored = stored_eval_config(eval_config, has_baseline=baseline is not None)
    ok, failures = tfma_validate(stored, candidate, baseline)
    return ok, sorted(failures)


GOOD = {
    f"{metric}_{d}{suffix}": value
    for d in ("a2b", "b2a")
    for metric, suffix, value in (
        ("fid", "", 20.0),
        ("fid", "_vs_identity", 0.25),
        ("fid", "_gap_closed", 0.8),
        ("fid", "_vs_colour_transfer", 0.5),
        ("mae", "", 8.0),
        ("mae", "_vs_colour_transfer", 0.5),
        ("mae", "_vs_identity", 0.25),
        ("fid", "_vs_bound", 0.5),
        ("kid", "_vs_bound", 0.0),
        ("psnr", "", 25.0),
        ("ssim", "", 0.9),
    )
}


def test_a_model_that_does_not_beat_doing_nothing_fails():
    eval_config = build_eval_config(_evaluate(), ground_truth=True)
    assert _validate(eval_config, GOOD) == (True, [])
    wrong_direction = {**GOOD, "mae_a2b_vs_identity": 1.4}  # FID alone would let it pass
    assert _validate(eval_config, wrong_direction) == (False, [("mae_a2b_vs_identity", False)])
    no_better = {**GOOD, "fid_b2a_gap_closed": 0.15}
    assert _validate(eval_config, no_better) == (False, [("fid_b2a_gap_closed", False)])
    unpaired = build_eval_config(_evaluate(), ground_truth=False)
    no_better = {**GOOD, "fid_b2a_vs_identity": 0.95}
    assert _validate(unpaired, no_better) == (False, [("fid_b2a_vs_identity", False)])


def test_baseline_checks_need_a_baseline():
    worse = {**GOOD, "fid_b2a": 20.0 * 1.3, "mae_a2b": 8.0 + 1.5}
    paired = build_eval_config(_evaluate(), ground_truth=True)
    assert _validate(paired, worse) == (True, [])  # first run: no baseline checks
    assert _validate(paired, worse, baseline=GOOD) == (False, [("mae_a2b", True)])
    assert _validate(paired, GOOD, baseline=worse) == (True, [])
    assert _validate(paired, GOOD, baseline=GOOD) == (True, [])  # the same model again
    unpaired_keys = {k: v for k, v in GOOD.items() if not k.startswith(("mae", "psnr", "ssim"))}
    unpaired = build_eval_config(_evaluate(), ground_truth=False)
    worse_fid = {**unpaired_keys, "fid_b2a": 20.0 * 1.3}  # 30 % worse, limit 25 %
    assert _validate(unpaired, worse_fid, baseline=unpaired_keys) == (False, [("fid_b2a", True)])


def test_optional_bounds_are_enforced_by_tfma():
    evaluate = _evaluate(
        fid_upper_bound=BackboneBounds(backbone="fake", a2b=40.0),
        psnr_lower_bound=OptionalDirectionBounds(b2a=30.0),
    )
    eval_config = build_eval_config(evaluate, ground_truth=True)
    failed = _validate(eval_config, {**GOOD, "fid_a2b_vs_bound": 1.2})[1]
    assert ("fid_a2b_vs_bound", False) in failed and ("psnr_b2a", False) in failed
    assert "kid_a2b_vs_bound" not in {key for key in gate_thresholds(evaluate, True)}


def test_metric_config_carries_the_bounds_and_the_code_fingerprint():
    evaluate = _evaluate(fid_upper_bound=BackboneBounds(backbone="fake", a2b=40.0))
    config = json.loads(build_eval_config(evaluate, True).metrics_specs[0].metrics[0].config)
    assert config["fid_bound"] == {"backbone": "fake", "a2b": 40.0, "b2a": None}
    assert config["code_fingerprint"].startswith("sha256:") and config["ground_truth"] is True

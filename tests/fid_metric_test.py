"""The FID/KID TFMA metric: combiner, reference-stats cache, thresholds (with a fake backbone)."""

import dataclasses
import json

import apache_beam as beam
import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import BeamAssertException, assert_that
from conftest import REPO_ROOT
from fid_fakes import CountingBackbone, random_images
from tensorflow_model_analysis.evaluators import metrics_validator
from tensorflow_model_analysis.evaluators.metrics_plots_and_validations_evaluator import (
    _filter_and_separate_computations,
)
from tensorflow_model_analysis.metrics import metric_specs, metric_types

from components import fid_metric
from components.fid_metric import (
    FrechetInceptionDistance,
    KernelInceptionDistance,
    _fid_computations,
    metric_key_names,
)
from cyclegan_tfx.config import OptionalDirectionBounds, load_config
from cyclegan_tfx.fid.distance import FeatureStats, fid_from_stats, kernel_inception_distance
from pipeline.eval_config import build_eval_config

NUM_A, NUM_B = 10, 12


@pytest.fixture()
def backbone(monkeypatch):
    fake = CountingBackbone()
    monkeypatch.setattr(fid_metric, "load_backbone", lambda config, batch_size=16: fake)
    return fake


def _combiner(tmp_path, direction="a2b", cache=True, max_samples=50):
    (computation,) = _fid_computations(
        direction=direction,
        backbone={"cache_dir": str(tmp_path / "cache")},
        batch_size=4,
        kid_num_subsets=5,
        kid_subset_size=6,
        kid_max_samples=max_samples,
        cache_reference_stats=cache,
    )
    return computation.combiner, {k.name: k for k in computation.keys}


def _data():
    real_a, real_b = random_images(NUM_A, 8, seed=0), random_images(NUM_B, 8, seed=1, shift=40)
    fake_b, fake_a = random_images(NUM_A, 8, seed=2, shift=30), random_images(NUM_B, 8, seed=3)
    return real_a, real_b, fake_b, fake_a


def _elements(batch_size=3):
    """StandardMetricInputs as the fid_eval signature yields them: mixed domains per batch."""
    real_a, real_b, fake_b, fake_a = _data()
    real = np.concatenate([real_a, real_b])
    translated = np.concatenate([fake_b, fake_a])
    is_a = np.array([True] * NUM_A + [False] * NUM_B)
    order = np.random.default_rng(9).permutation(len(is_a))
    real, translated, is_a = real[order], translated[order], is_a[order]
    elements = []
    for start in range(0, len(is_a) - 1, batch_size):
        part = slice(start, min(start + batch_size, len(is_a) - 1))
        predictions = {
            "real": real[part],
            "translated": translated[part],
            "is_domain_a": is_a[part],
        }
        elements.append(metric_types.StandardMetricInputs(predictions=predictions))
    # The last example unbatched, as TFMA may pass a single example.
    last = {"real": real[-1], "translated": translated[-1], "is_domain_a": is_a[-1]}
    elements.append(metric_types.StandardMetricInputs(predictions=last))
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


def test_emits_fid_kid_n_and_backbone(backbone, tmp_path):
    combiner, _ = _combiner(tmp_path)
    result = _by_name(_run(combiner, _elements()))
    assert set(result) == set(metric_key_names("a2b").values())
    _, real_b, fake_b, _ = _data()
    expected = fid_from_stats(
        FeatureStats.from_features(backbone(fake_b)), FeatureStats.from_features(backbone(real_b))
    )
    assert result["fid_a2b"] == pytest.approx(expected, rel=1e-9)
    assert result["fid_a2b_num_fake"] == NUM_A and result["fid_a2b_num_real"] == NUM_B
    assert result["fid_a2b_backbone"] == backbone.name
    assert result["kid_a2b"] > 0 and result["kid_a2b_std"] >= 0


def test_sharded_evaluation_equals_single_pass(backbone, tmp_path):
    combiner = _combiner(tmp_path / "one", cache=False)[0]
    single = _by_name(_run(combiner, _elements(batch_size=NUM_A + NUM_B)))
    for cache in (False, True):
        sharded = _by_name(_run(_combiner(tmp_path / str(cache), cache=cache)[0], _elements(), 4))
        assert sharded["fid_a2b"] == pytest.approx(single["fid_a2b"], rel=1e-9, abs=1e-12)
        assert sharded["kid_a2b"] == pytest.approx(single["kid_a2b"], rel=1e-9, abs=1e-12)
        assert sharded["kid_a2b_std"] == pytest.approx(single["kid_a2b_std"], rel=1e-9, abs=1e-12)


def test_kid_sample_is_capped_deterministically(backbone, tmp_path):
    capped = _by_name(_run(_combiner(tmp_path, cache=False, max_samples=4)[0], _elements(), 3))
    again = _by_name(_run(_combiner(tmp_path, cache=False, max_samples=4)[0], _elements(5), 2))
    assert capped["kid_a2b"] == again["kid_a2b"]
    assert capped["fid_a2b_num_real"] == NUM_B  # FID still uses every image


def test_second_evaluation_reuses_the_reference_cache(backbone, tmp_path):
    first = _by_name(_run(_combiner(tmp_path)[0], _elements()))
    assert backbone.images_seen == NUM_A + NUM_B
    assert len(list((tmp_path / "cache" / "fid_stats").glob("*.npz"))) == 1
    second = _by_name(_run(_combiner(tmp_path)[0], _elements()))
    assert backbone.images_seen == NUM_A + NUM_B + NUM_A, "real images must come from the cache"
    assert second == first  # identical, bit for bit
    # b2a's real images are the A images: a different entry.
    _run(_combiner(tmp_path, direction="b2a")[0], _elements())
    assert len(list((tmp_path / "cache" / "fid_stats").glob("*.npz"))) == 2


def test_without_cache_nothing_is_written(backbone, tmp_path):
    _run(_combiner(tmp_path, cache=False)[0], _elements())
    assert not (tmp_path / "cache").exists()


def test_too_few_images_is_a_clear_error(backbone, tmp_path):
    combiner, _ = _combiner(tmp_path)
    element = _elements(batch_size=NUM_A + NUM_B)[0]
    predictions = element.get_predictions("")
    only_a = {k: v[predictions["is_domain_a"]] for k, v in predictions.items()}
    with pytest.raises(ValueError, match="at least 2 real and 2 translated"):
        _run(combiner, [metric_types.StandardMetricInputs(predictions=only_a)])


def test_combiner_in_a_beam_pipeline(backbone, tmp_path):
    expected = _by_name(_run(_combiner(tmp_path / "ref", cache=False)[0], _elements()))
    combiner, _ = _combiner(tmp_path / "beam", cache=False)

    def check(outputs):
        (output,) = outputs
        result = _by_name(output)
        if not np.isclose(result["fid_a2b"], expected["fid_a2b"], rtol=1e-9):
            raise BeamAssertException(f"FID {result['fid_a2b']} != {expected['fid_a2b']}")

    with test_pipeline.TestPipeline() as pipeline:
        output = (
            pipeline
            | beam.Create(_elements(), reshuffle=True)
            | beam.CombineGlobally(combiner).without_defaults()
        )
        assert_that(output, check)


# --- metric classes and the EvalConfig ------------------------------------------------------


def test_metric_names_and_validation():
    assert FrechetInceptionDistance("b2a").name == "fid_b2a"
    assert KernelInceptionDistance("b2a").name == "kid_b2a"
    with pytest.raises(ValueError, match="direction must be one of"):
        FrechetInceptionDistance("a2c")
    with pytest.raises(ValueError, match="name must be one of the emitted keys"):
        KernelInceptionDistance("a2b", name="kid")


def _evaluate(kid_bound=None):
    evaluate = load_config(REPO_ROOT / "params.yaml").evaluate
    bounds = OptionalDirectionBounds(a2b=kid_bound, b2a=None)
    return dataclasses.replace(evaluate, kid_upper_bound=bounds)


def test_kid_threshold_only_when_set():
    def names(eval_config):
        thresholds = metric_specs.metric_thresholds_from_metrics_specs(
            eval_config.metrics_specs, eval_config
        )
        return sorted(key.name for key in thresholds if not key.is_diff)

    assert names(build_eval_config(_evaluate())) == ["fid_a2b", "fid_b2a"]
    assert names(build_eval_config(_evaluate(0.05))) == ["fid_a2b", "fid_b2a", "kid_a2b"]
    configs = build_eval_config(_evaluate(0.05)).metrics_specs[0].metrics
    assert json.loads(configs[0].config) == json.loads(configs[1].config)  # FID and KID a2b


def test_fid_and_kid_share_one_computation():
    eval_config = build_eval_config(_evaluate(0.05))
    computations = metric_specs.to_computations(eval_config.metrics_specs, eval_config)
    combiners = [
        c.combiner
        for c in _filter_and_separate_computations(computations)[0]
        if isinstance(c, metric_types.MetricComputation)
        and isinstance(c.combiner, fid_metric._FIDCombiner)
    ]
    assert len(combiners) == 2  # one per direction, not one per metric


def _validate(eval_config, candidate, baseline=None):
    """Runs TFMA's validation as the TFX Evaluator does (rubber stamp without a baseline)."""
    eval_config = tfma.utils.update_eval_config_with_defaults(
        eval_config, has_baseline=baseline is not None, rubber_stamp=True
    )
    if baseline is None:
        metrics = {metric_types.MetricKey(name=n, model_name=""): v for n, v in candidate.items()}
    else:
        metrics = {}
        for name, value in candidate.items():
            key = metric_types.MetricKey(name=name, model_name="candidate")
            metrics[key] = value
            metrics[metric_types.MetricKey(name=name, model_name="baseline")] = baseline[name]
            metrics[key.make_diff_key()] = value - baseline[name]
    result = metrics_validator.validate_metrics(((), metrics), eval_config)
    failed = sorted(
        (f.metric_key.name, f.metric_key.is_diff)
        for s in result.metric_validations_per_slice
        for f in s.failures
    )
    return result.validation_ok, failed


GOOD = {"fid_a2b": 10.0, "fid_b2a": 10.0, "kid_a2b": 0.01, "kid_b2a": 5.0}  # no KID bound b2a


def test_kid_bound_is_enforced_by_tfma():
    eval_config = build_eval_config(_evaluate(0.05))
    assert _validate(eval_config, GOOD) == (True, [])
    assert _validate(eval_config, {**GOOD, "kid_a2b": 0.2}) == (False, [("kid_a2b", False)])
    assert _validate(build_eval_config(_evaluate()), {**GOOD, "kid_a2b": 0.2}) == (True, [])


def test_relative_fid_check_needs_a_baseline():
    eval_config = build_eval_config(_evaluate())
    worse = {**GOOD, "fid_b2a": 10.0 * 1.2}  # 20% worse than the baseline, limit 10%
    assert _validate(eval_config, worse) == (True, [])  # first run: absolute bounds only
    assert _validate(eval_config, worse, baseline=GOOD) == (False, [("fid_b2a", True)])
    assert _validate(eval_config, GOOD, baseline=worse) == (True, [])


def test_kid_matches_the_pure_function(backbone, tmp_path):
    result = _by_name(_run(_combiner(tmp_path, cache=False)[0], _elements()))
    _, real_b, fake_b, _ = _data()
    from cyclegan_tfx.fid.reference import image_digest

    def sorted_rows(images):
        order = np.argsort([image_digest(i) for i in images], kind="stable")
        return backbone(images)[order]

    expected = kernel_inception_distance(
        sorted_rows(fake_b), sorted_rows(real_b), num_subsets=5, subset_size=6, seed=0
    )
    assert (result["kid_a2b"], result["kid_a2b_std"]) == pytest.approx(expected, rel=1e-9)

"""Training and scoring outside the pipeline (`make compare`, the bf16 and study benchmarks)."""

import dataclasses

import numpy as np
import pytest
from conftest import synthetic_pairs, tiny_config, write_examples
from fid_fakes import CountingBackbone

from cyclegan_tfx.evaluation.fid.reference import feature_cache
from cyclegan_tfx.evaluation.quality import QualitySettings
from cyclegan_tfx.evaluation.scorer import TestSetScorer, preprocessed_files
from cyclegan_tfx.experiments.compare import train_and_score


@pytest.fixture
def config(tmp_path):
    config = tiny_config(tmp_path, epochs=2.0)
    root = tmp_path / "build" / "preprocessed"
    write_examples(
        root / "train" / "data.tfrecord",
        {"A": synthetic_pairs(8, 16, "A", 0)[0], "B": synthetic_pairs(8, 16, "B", 1)[0]},
    )
    test_a, truth_a = synthetic_pairs(6, 16, "A", 2)
    test_b, truth_b = synthetic_pairs(6, 16, "B", 3)
    write_examples(
        root / "test" / "data.tfrecord",
        {"A": test_a, "B": test_b},
        split="test",
        truths={"A": truth_a, "B": truth_b},
    )
    paths = dataclasses.replace(config.paths, preprocessed=str(root))
    return config.replace(paths=paths)


def test_train_and_score_scores_the_curve_and_the_final_model(config):
    _, test_files = preprocessed_files(config)
    test_set = TestSetScorer(test_files, CountingBackbone(), QualitySettings(kid_num_subsets=2))
    result = train_and_score(config, test_set, eval_every_steps=4)
    assert result["steps"] == 8
    assert [point["step"] for point in result["curve"]] == [4, 8]
    final = result["final"]
    assert final["step"] == 8
    for key in ("fid_a2b", "fid_b2a", "kid_a2b", "mae_a2b", "psnr_b2a", "ssim_b2a"):
        assert np.isfinite(final[key]), key
    # The same seed gives the same model and the same scores.
    again = train_and_score(config, test_set)
    assert again["final"]["mae_a2b"] == final["mae_a2b"]


def test_a_paired_only_curve_has_the_same_fields_at_every_point(config):
    _, test_files = preprocessed_files(config)
    test_set = TestSetScorer(test_files, CountingBackbone(), QualitySettings(kid_num_subsets=2))
    result = train_and_score(config, test_set, eval_every_steps=4, curve_distances=False)
    fields = [set(point) for point in result["curve"]]
    assert [point["step"] for point in result["curve"]] == [4, 8]
    assert fields[0] == fields[1] and "mae_a2b" in fields[0] and "fid_a2b" not in fields[0]
    # FID/KID of the last step are in `final`, with the paired scores of the curve's last point.
    final = result["final"]
    assert np.isfinite(final["fid_a2b"]) and np.isfinite(final["kid_b2a"])
    assert final["mae_a2b"] == result["curve"][-1]["mae_a2b"]


def test_bfloat16_runs_are_scored_on_the_float32_export(config):
    mixed = config.replace(train=dataclasses.replace(config.train, mixed_precision=True))
    _, test_files = preprocessed_files(config)
    result = train_and_score(
        mixed, TestSetScorer(test_files, CountingBackbone(), QualitySettings(kid_num_subsets=2))
    )
    assert np.isfinite(result["final"]["mae_a2b"])


def test_a_scorer_with_the_disk_cache_runs_the_backbone_on_the_translations_only(config, tmp_path):
    # As the study's runs (one process each) share the Evaluator's feature cache.
    _, test_files = preprocessed_files(config)

    def identity(images, training):
        return images

    generators = {"a2b": identity, "b2a": identity}
    scores, seen = [], []
    for _ in range(2):
        backbone = CountingBackbone()
        cache = feature_cache(tmp_path / "cache", backbone)
        scorer = TestSetScorer(test_files, backbone, QualitySettings(kid_num_subsets=2), cache)
        scores.append(scorer.scores(generators))
        seen.append(backbone.images_seen)
    translations = 6 + 6
    fixed = 6 + 6 + 6 + 6  # real A and B, and their ground truths
    assert seen == [translations + fixed, translations]
    assert scores[1] == scores[0]

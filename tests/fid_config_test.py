"""The `evaluate` section of params.yaml: defaults, bounds and clear errors."""

import pytest
import yaml
from conftest import REPO_ROOT

from cyclegan_tfx.config import ConfigError, config_from_dict


def _params():
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def test_repo_defaults():
    evaluate = config_from_dict(_params()).evaluate
    assert evaluate.backbone.download is False
    assert evaluate.kid_upper_bound.for_direction("a2b") is None
    assert evaluate.kid_upper_bound.for_direction("b2a") is None
    assert evaluate.cache_reference_stats is True
    assert evaluate.kid_max_samples >= evaluate.kid_subset_size


def test_repo_gate_needs_no_calibration():
    evaluate = config_from_dict(_params()).evaluate
    assert evaluate.ground_truth == "auto"
    assert evaluate.gate.fid_vs_identity_max < 1 and evaluate.gate.mae_vs_identity_max < 1
    for bounds in (evaluate.fid_upper_bound, evaluate.kid_upper_bound):
        assert bounds.a2b is None and bounds.b2a is None  # backbone-specific: none shipped


def test_kid_bound_may_be_set_per_direction_with_its_backbone():
    params = _params()
    params["evaluate"]["kid_upper_bound"] = {"backbone": "inception-2015-12-05", "a2b": 0.05}
    evaluate = config_from_dict(params).evaluate
    assert evaluate.kid_upper_bound.a2b == 0.05 and evaluate.kid_upper_bound.b2a is None
    assert evaluate.kid_upper_bound.backbone == "inception-2015-12-05"


def test_a_bound_without_its_backbone_is_refused():
    params = _params()
    params["evaluate"]["fid_upper_bound"] = {"a2b": 40.0}
    with pytest.raises(ConfigError, match="needs `backbone`"):
        config_from_dict(params)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("kid_num_subsets", 0, r"evaluate.kid_num_subsets must be >= 1"),
        ("kid_subset_size", 1, r"evaluate.kid_subset_size must be >= 2"),
        ("kid_max_samples", 1, r"evaluate.kid_max_samples must be >= 2"),
        ("kid_max_samples", 2.5, r"evaluate.kid_max_samples: expected an integer"),
        ("kid_upper_bound", {"a2b": "low"}, r"evaluate.kid_upper_bound.a2b: expected a number"),
        ("kid_upper_bound", {"a2c": 1.0}, r"evaluate.kid_upper_bound: unknown key\(s\) \['a2c'\]"),
        ("cache_reference_stats", "yes", r"evaluate.cache_reference_stats: expected true/false"),
        ("ground_truth", "yes", r"evaluate.ground_truth: 'yes' is not one of"),
        ("bootstrap_samples", -1, r"evaluate.bootstrap_samples must be >= 0"),
        ("gate", {"mae_vs_identity_max": 0}, r"evaluate.gate.mae_vs_identity_max must be > 0"),
    ],
)
def test_invalid_evaluate_values_name_the_key(key, value, message):
    params = _params()
    params["evaluate"][key] = value
    with pytest.raises(ConfigError, match=message):
        config_from_dict(params)


def test_invalid_download_flag_names_the_key():
    params = _params()
    params["evaluate"]["backbone"]["download"] = "sometimes"
    with pytest.raises(ConfigError, match=r"evaluate.backbone.download: expected true/false"):
        config_from_dict(params)

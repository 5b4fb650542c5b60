"""The gate explanation (pipeline.explain_gate, pipeline.reports gate helpers), on synthetic
EvalConfigs and TFMA ValidationResults; the end-to-end test covers a real run."""

import dataclasses

import pytest
import tensorflow_model_analysis as tfma
from conftest import REPO_ROOT
from tensorflow_model_analysis.evaluators import metrics_validator
from tensorflow_model_analysis.metrics import metric_types

from cyclegan_tfx.config import DirectionBounds, OptionalDirectionBounds, load_config
from pipeline import explain_gate
from pipeline.eval_config import build_eval_config
from pipeline.reports import (
    GateReport,
    MixedBackbonesError,
    check_single_backbone,
    format_gate_table,
    gate_checks,
)

GOOD = {"fid_a2b": 50.0, "fid_b2a": 60.0, "kid_a2b": 0.01, "kid_b2a": 0.02}


def _eval_config(has_baseline, kid_a2b=None):
    evaluate = dataclasses.replace(
        load_config(REPO_ROOT / "params.yaml").evaluate,
        fid_upper_bound=DirectionBounds(a2b=100.0, b2a=100.0),
        max_relative_increase=0.1,
        kid_upper_bound=OptionalDirectionBounds(a2b=kid_a2b),
    )
    # As the TFX Evaluator stores it: change thresholds dropped without a baseline.
    return tfma.utils.update_eval_config_with_defaults(
        build_eval_config(evaluate), has_baseline=has_baseline, rubber_stamp=True
    )


def _validate(eval_config, candidate, baseline=None):
    """Metrics dict as reports.evaluation_metrics returns it, and TFMA's failures."""
    if baseline is None:
        keys = {metric_types.MetricKey(name=n, model_name=""): v for n, v in candidate.items()}
    else:
        keys = {}
        for name, value in candidate.items():
            key = metric_types.MetricKey(name=name, model_name="candidate")
            keys[key] = value
            base = baseline.get(name, value)
            keys[metric_types.MetricKey(name=name, model_name="baseline")] = base
            keys[key.make_diff_key()] = value - base
    result = metrics_validator.validate_metrics(((), keys), eval_config)
    failures = {
        (f.metric_key.name, f.metric_key.is_diff)
        for s in result.metric_validations_per_slice
        for f in s.failures
    }
    metrics = {"candidate": dict(candidate)}
    if baseline is not None:
        metrics["baseline"] = dict(baseline)
    return metrics, failures, result.validation_ok


def _rows(checks):
    return {(c.metric, c.check): c for c in checks}


def test_first_run_is_judged_on_absolute_bounds_only():
    eval_config = _eval_config(has_baseline=False)
    metrics, failures, ok = _validate(eval_config, {**GOOD, "fid_b2a": 120.0})
    assert not ok
    rows = _rows(gate_checks(eval_config, metrics, failures))
    assert list(rows) == [
        ("fid_a2b", "absolute"),
        ("fid_a2b", "relative"),
        ("kid_a2b", "report"),
        ("fid_b2a", "absolute"),
        ("fid_b2a", "relative"),
        ("kid_b2a", "report"),
    ]
    assert rows["fid_a2b", "absolute"].passed is True
    assert rows["fid_b2a", "absolute"].passed is False
    assert rows["fid_b2a", "absolute"].threshold == "<= 100"
    assert rows["fid_b2a", "absolute"].candidate == 120.0
    relative = rows["fid_a2b", "relative"]
    assert relative.passed is None and "no blessed baseline" in relative.threshold
    assert rows["kid_a2b", "report"].passed is None
    assert rows["kid_a2b", "report"].threshold == "no bound"


def test_relative_check_against_the_baseline():
    eval_config = _eval_config(has_baseline=True)
    candidate = {**GOOD, "fid_a2b": 56.0}  # 12% worse than 50: over the 10% limit
    metrics, failures, ok = _validate(eval_config, candidate, baseline=GOOD)
    assert not ok and failures == {("fid_a2b", True)}
    checks = gate_checks(eval_config, metrics, failures)
    rows = _rows(checks)
    relative = rows["fid_a2b", "relative"]
    assert relative.passed is False
    assert relative.baseline == 50.0
    assert relative.bound == pytest.approx(55.0)
    assert relative.threshold == "<= baseline x 1.1 = 55"
    assert rows["fid_a2b", "absolute"].passed is True
    assert rows["fid_b2a", "relative"].passed is True
    # Recomputed without TFMA's verdict, the numbers give the same answers.
    assert [c.passed for c in gate_checks(eval_config, metrics)] == [c.passed for c in checks]


def test_kid_bound_row_and_std():
    eval_config = _eval_config(has_baseline=False, kid_a2b=0.005)
    candidate = {**GOOD, "kid_a2b_std": 0.001}
    metrics, failures, _ = _validate(eval_config, candidate)
    rows = _rows(gate_checks(eval_config, metrics, failures))
    kid = rows["kid_a2b", "absolute"]
    assert kid.passed is False and kid.threshold == "<= 0.005" and kid.std == 0.001
    assert ("kid_a2b", "report") not in rows
    assert rows["kid_b2a", "report"].passed is None


def test_tfma_verdict_wins_and_unknown_failures_are_listed():
    eval_config = _eval_config(has_baseline=False)
    metrics, _, _ = _validate(eval_config, GOOD)
    failures = {("fid_a2b", False), ("something_else", False)}
    rows = _rows(gate_checks(eval_config, metrics, failures))
    assert rows["fid_a2b", "absolute"].passed is False  # TFMA said so
    assert rows["something_else", "absolute"].passed is False


def test_table_and_json_forms():
    eval_config = _eval_config(has_baseline=True)
    candidate = {**GOOD, "kid_a2b_std": 0.002}
    metrics, failures, _ = _validate(eval_config, candidate, baseline=GOOD)
    checks = gate_checks(eval_config, metrics, failures)
    table = format_gate_table(checks)
    lines = table.splitlines()
    assert lines[0].split() == ["metric", "check", "candidate", "baseline", "threshold", "result"]
    assert any(line.startswith("kid_a2b") and "0.01 ± 0.002" in line for line in lines)
    assert sum("pass" in line.split() for line in lines) == 4
    report = _report(checks, blessed=True)
    gate = report.gate_dict()
    assert gate["fid_a2b"]["relative"]["result"] == "pass"
    assert gate["kid_b2a"]["report"]["threshold"] == "no bound"


def _report(checks, blessed, baseline="/models/1"):
    return GateReport(
        blessed=blessed,
        pushed_version="17" if blessed else None,
        backbone="fallback-inceptionv3-random-seed0",
        model_uri="/models/2",
        baseline_model_uri=baseline,
        evaluation_uri="/evaluations/3",
        num_test={"a2b": {"fake": 24.0, "real": 30.0}, "b2a": {"fake": 30.0, "real": 24.0}},
        checks=checks,
        validation_ok=blessed,
    )


def test_explanation_names_backbone_n_and_decision():
    eval_config = _eval_config(has_baseline=False)
    metrics, failures, _ = _validate(eval_config, {**GOOD, "fid_b2a": 120.0})
    text = explain_gate.explain(_report(gate_checks(eval_config, metrics, failures), False, None))
    assert "fallback-inceptionv3-random-seed0 (NOT the standard FID network" in text
    assert "a2b 24 translated vs 30 real" in text
    assert "no blessed model yet" in text
    assert text.splitlines()[-1] == "decision: NOT BLESSED, not pushed (failed: fid_b2a absolute)"
    metrics, failures, _ = _validate(eval_config, GOOD)
    text = explain_gate.explain(_report(gate_checks(eval_config, metrics, failures), True))
    assert text.splitlines()[-1] == "decision: BLESSED (every check passed), pushed as version 17"


def test_mixed_backbones_are_refused():
    same = {"candidate": {"fid_a2b_backbone": "x"}, "baseline": {"fid_a2b_backbone": "x"}}
    assert check_single_backbone(same) == "x"
    assert check_single_backbone({}) is None
    mixed = {"candidate": {"fid_a2b_backbone": "x"}, "baseline": {"fid_a2b_backbone": "y"}}
    with pytest.raises(MixedBackbonesError, match="not comparable"):
        check_single_backbone(mixed)


def test_cli_without_a_run_is_a_clear_error(tmp_path, capsys):
    params = (REPO_ROOT / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(params)
    assert explain_gate.main(["--params", str(tmp_path / "params.yaml")]) == 1
    err = capsys.readouterr().err
    assert "no ML Metadata" in err and "run the pipeline first" in err
    assert explain_gate.main(["--params", str(tmp_path / "missing.yaml")]) == 1
    assert "params file not found" in capsys.readouterr().err

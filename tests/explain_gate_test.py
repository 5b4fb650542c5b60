"""The gate's rows and explanation (cyclegan_tfx.evaluation.gate, pipeline.explain_gate), on
synthetic EvalConfigs and TFMA ValidationResults; the end-to-end tests cover real runs."""

import dataclasses

import pytest
from conftest import REPO_ROOT, stored_eval_config, tfma_validate

from cyclegan_tfx.config import BackboneBounds, OptionalDirectionBounds, load_config
from cyclegan_tfx.evaluation.gate import (
    MixedBackbonesError,
    check_single_backbone,
    format_gate_table,
    gate_checks,
)
from cyclegan_tfx.evaluation.gate_report import GateReport
from pipeline import explain_gate
from pipeline.eval_config import build_eval_config

BACKBONE = "fallback-inceptionv3-random-seed0"
GOOD = {
    f"{name}_{d}{suffix}": value
    for d in ("a2b", "b2a")
    for name, suffix, value in (
        ("fid", "", 20.0),
        ("fid", "_std", 1.5),
        ("fid", "_identity", 80.0),
        ("fid", "_vs_identity", 0.25),
        ("fid", "_truth", 10.0),
        ("fid", "_gap_closed", 60.0 / 70.0),  # (80 - 20) / (80 - 10)
        ("fid", "_gap_closed_std", 0.02),
        ("fid", "_colour_transfer", 40.0),
        ("fid", "_vs_colour_transfer", 0.5),
        ("fid", "_vs_bound", 0.0),
        ("fid", "_bound_applied", 0),
        ("fid", "_backbone", BACKBONE),
        ("kid", "", 0.01),
        ("kid", "_std", 0.001),
        ("kid", "_vs_bound", 0.0),
        ("kid", "_bound_applied", 0),
        ("mae", "", 8.0),
        ("mae", "_std", 0.3),
        ("mae", "_identity", 32.0),
        ("mae", "_vs_identity", 0.25),
        ("mae", "_colour_transfer", 12.0),
        ("mae", "_vs_colour_transfer", 8.0 / 12.0),
        ("psnr", "", 25.0),
        ("ssim", "", 0.9),
    )
}


def _eval_config(has_baseline, ground_truth=True, **evaluate_changes):
    evaluate = dataclasses.replace(
        load_config(REPO_ROOT / "params.yaml").evaluate, **evaluate_changes
    )
    return stored_eval_config(build_eval_config(evaluate, ground_truth), has_baseline)


def _validate(eval_config, candidate, baseline=None):
    """Metrics dict as gate_report.evaluation_metrics returns it, TFMA's failures and verdict."""
    ok, failures = tfma_validate(eval_config, candidate, baseline)
    metrics = {"candidate": dict(candidate)}
    if baseline is not None:
        metrics["baseline"] = dict(baseline)
    return metrics, failures, ok


def _rows(checks):
    return {(c.metric, c.check): c for c in checks}


def test_first_run_rows():
    eval_config = _eval_config(has_baseline=False)
    metrics, failures, ok = _validate(eval_config, GOOD)
    assert ok
    rows = _rows(gate_checks(eval_config, metrics, failures))
    assert [key for key in rows if key[0].endswith("a2b")] == [
        ("fid_a2b", "vs identity"),
        ("mae_a2b", "vs identity"),
        ("mae_a2b", "vs colour transfer"),
        ("fid_a2b", "vs baseline"),
        ("mae_a2b", "vs baseline"),
        ("fid_a2b", "report"),
        ("kid_a2b", "report"),
        ("psnr_a2b", "report"),
        ("ssim_a2b", "report"),
    ]
    fid = rows["fid_a2b", "vs identity"]
    assert (fid.candidate, fid.std, fid.reference, fid.passed) == (20.0, 1.5, 80.0, True)
    # With ground truth: a fifth of the gap from doing nothing (80) to the truth (10) closed.
    assert fid.threshold == (
        "closes >= 0.2 of the gap identity -> truth 10: <= 66 (closed 0.857 ± 0.02)"
    )
    assert fid.bound == pytest.approx(66.0)
    assert rows["mae_b2a", "vs identity"].threshold == "<= 0.8 x identity = 25.6"
    colour = rows["mae_a2b", "vs colour transfer"]
    assert (colour.reference, colour.passed) == (12.0, True)
    assert colour.threshold == "<= 0.95 x colour transfer = 11.4"
    baseline = rows["fid_a2b", "vs baseline"]
    assert baseline.passed is None and "no blessed baseline" in baseline.threshold


def test_a_model_no_better_than_doing_nothing_fails_on_the_paired_error():
    eval_config = _eval_config(has_baseline=False)
    swapped = {**GOOD, "mae_a2b": 40.0, "mae_a2b_vs_identity": 1.25}
    metrics, failures, ok = _validate(eval_config, swapped)
    assert not ok and failures == {("mae_a2b_vs_identity", False)}
    rows = _rows(gate_checks(eval_config, metrics, failures))
    assert rows["mae_a2b", "vs identity"].passed is False
    assert rows["fid_a2b", "vs identity"].passed is True  # FID alone would have let it through


def test_a_model_no_better_than_colour_transfer_fails():
    """Colour alone is not a translation: with ground truth on MAE, without on FID."""
    eval_config = _eval_config(has_baseline=False)
    colour_only = {**GOOD, "mae_b2a": 12.0, "mae_b2a_vs_colour_transfer": 1.0}
    metrics, failures, ok = _validate(eval_config, colour_only)
    assert not ok and failures == {("mae_b2a_vs_colour_transfer", False)}
    row = _rows(gate_checks(eval_config, metrics, failures))["mae_b2a", "vs colour transfer"]
    assert row.passed is False and "colour transfer 12" in format_gate_table([row])
    unpaired = _eval_config(has_baseline=False, ground_truth=False)
    candidate = {k: v for k, v in colour_only.items() if not k.startswith(("mae", "psnr", "ssim"))}
    candidate["fid_a2b_vs_colour_transfer"] = 0.99
    metrics, failures, ok = _validate(unpaired, candidate)
    assert not ok and failures == {("fid_a2b_vs_colour_transfer", False)}


def test_unpaired_data_has_no_paired_rows():
    eval_config = _eval_config(has_baseline=True, ground_truth=False)
    candidate = {k: v for k, v in GOOD.items() if not k.startswith(("mae", "psnr", "ssim"))}
    metrics, failures, ok = _validate(eval_config, candidate, baseline=candidate)
    assert ok
    assert ok
    rows = _rows(gate_checks(eval_config, metrics, failures))
    assert not [m for m, _ in rows if m.startswith(("mae", "psnr", "ssim"))]
    assert rows["fid_a2b", "vs baseline"].passed is True
    # Without ground truth FID's check is the ratio to doing nothing.
    assert rows["fid_a2b", "vs identity"].threshold.startswith("<= 0.9 x identity = 72")


def test_checks_against_the_baseline_with_ground_truth():
    eval_config = _eval_config(has_baseline=True)
    candidate = {**GOOD, "fid_a2b": 26.0, "mae_b2a": 9.5}  # FID +30 %, MAE +1.5 (limit 1)
    metrics, failures, ok = _validate(eval_config, candidate, baseline=GOOD)
    assert not ok and failures == {("mae_b2a", True)}
    checks = gate_checks(eval_config, metrics, failures)
    rows = _rows(checks)
    mae = rows["mae_b2a", "vs baseline"]
    assert mae.passed is False and mae.threshold == "<= baseline + 1 = 9"
    assert rows["mae_a2b", "vs baseline"].passed is True
    fid = rows["fid_a2b", "vs baseline"]  # with ground truth the paired error decides
    assert fid.passed is None and fid.reference == 20.0
    assert fid.threshold.startswith("not applied: with ground truth")
    # Recomputed without TFMA's verdict, the numbers give the same answers.
    assert [c.passed for c in gate_checks(eval_config, metrics)] == [c.passed for c in checks]


def test_fid_against_the_baseline_without_ground_truth():
    eval_config = _eval_config(has_baseline=True, ground_truth=False)
    unpaired = {k: v for k, v in GOOD.items() if not k.startswith(("mae", "psnr", "ssim"))}
    candidate = {**unpaired, "fid_a2b": 26.0}  # 30 % worse than 20: over the 25 % limit
    metrics, failures, ok = _validate(eval_config, candidate, baseline=unpaired)
    assert not ok and failures == {("fid_a2b", True)}
    fid = _rows(gate_checks(eval_config, metrics, failures))["fid_a2b", "vs baseline"]
    assert fid.passed is False and fid.reference == 20.0
    assert fid.threshold == "<= baseline x 1.25 = 25" and fid.bound == pytest.approx(25.0)


def test_a_bound_for_another_backbone_is_not_applied():
    bound = BackboneBounds(backbone="inception-2015-12-05", a2b=30.0)
    eval_config = _eval_config(has_baseline=False, fid_upper_bound=bound)
    metrics, failures, ok = _validate(eval_config, GOOD)  # fid_a2b_bound_applied: 0
    assert ok
    row = _rows(gate_checks(eval_config, metrics, failures))["fid_a2b", "absolute"]
    assert row.passed is None
    assert row.threshold == (
        "not applied: bound 30 is for backbone inception-2015-12-05, "
        f"this evaluation used {BACKBONE}"
    )


def test_a_bound_for_this_backbone_is_applied():
    bound = BackboneBounds(backbone=BACKBONE, a2b=15.0)
    eval_config = _eval_config(has_baseline=False, fid_upper_bound=bound)
    candidate = {**GOOD, "fid_a2b_bound_applied": 1, "fid_a2b_vs_bound": 20.0 / 15.0}
    metrics, failures, ok = _validate(eval_config, candidate)
    assert not ok and failures == {("fid_a2b_vs_bound", False)}
    row = _rows(gate_checks(eval_config, metrics, failures))["fid_a2b", "absolute"]
    assert row.passed is False and row.threshold == "<= 15"


def test_optional_paired_bounds():
    eval_config = _eval_config(
        has_baseline=False, psnr_lower_bound=OptionalDirectionBounds(b2a=30.0)
    )
    metrics, failures, _ = _validate(eval_config, GOOD)
    rows = _rows(gate_checks(eval_config, metrics, failures))
    assert rows["psnr_b2a", "absolute"].passed is False
    assert rows["psnr_b2a", "absolute"].threshold == ">= 30"
    assert rows["psnr_a2b", "report"].passed is None


def test_missing_ground_truth_fails_with_a_reason():
    eval_config = _eval_config(has_baseline=False)
    candidate = {k: v for k, v in GOOD.items() if not k.startswith(("mae", "psnr", "ssim"))}
    metrics, failures, ok = _validate(eval_config, candidate)
    assert not ok
    row = _rows(gate_checks(eval_config, metrics, failures))["mae_a2b", "vs identity"]
    assert row.passed is False and "no ground truth" in row.threshold


def test_unknown_failures_are_listed():
    eval_config = _eval_config(has_baseline=False)
    metrics, _, _ = _validate(eval_config, GOOD)
    rows = _rows(gate_checks(eval_config, metrics, {("something_else", False)}))
    assert rows["something_else", "absolute"].passed is False


def _report(checks, blessed, baseline="/models/1"):
    return GateReport(
        blessed=blessed,
        pushed_version="17" if blessed else None,
        backbone=BACKBONE,
        model_uri="/models/2",
        baseline_model_uri=baseline,
        evaluation_uri="/evaluations/3",
        num_test={
            "a2b": {"fake": 100.0, "real": 100.0, "paired": 100.0},
            "b2a": {"fake": 100.0, "real": 100.0, "paired": None},
        },
        checks=checks,
        validation_ok=blessed,
    )


def test_table_and_json_forms():
    eval_config = _eval_config(has_baseline=True)
    metrics, failures, _ = _validate(eval_config, GOOD, baseline=GOOD)
    checks = gate_checks(eval_config, metrics, failures)
    lines = format_gate_table(checks).splitlines()
    assert lines[0].split() == [
        "metric",
        "check",
        "candidate",
        "compared",
        "with",
        "threshold",
        "result",
    ]
    assert any(
        line.startswith("fid_a2b") and "20 ± 1.5" in line and "identity 80" in line
        for line in lines
    )
    gate = _report(checks, blessed=True).gate_dict()
    assert gate["mae_a2b"]["vs baseline"]["result"] == "pass"
    assert gate["fid_a2b"]["vs baseline"]["result"] == "-"
    assert gate["kid_b2a"]["report"]["threshold"] == "no bound"


def test_explanation_names_backbone_n_and_decision():
    eval_config = _eval_config(has_baseline=False)
    bad = {**GOOD, "fid_b2a_gap_closed": 4.0 / 70.0, "fid_b2a": 76.0}
    metrics, failures, _ = _validate(eval_config, bad)
    text = explain_gate.explain(_report(gate_checks(eval_config, metrics, failures), False, None))
    assert f"{BACKBONE} (NOT the standard FID network" in text
    standard = dataclasses.replace(_report([], False, None), backbone="inception-2015-12-05")
    assert "inception-2015-12-05 (the standard FID network" in explain_gate.explain(standard)
    assert "a2b 100 translated vs 100 real, 100 with ground truth" in text
    assert "no blessed model yet" in text
    assert (
        text.splitlines()[-1] == "decision: NOT BLESSED, not pushed (failed: fid_b2a vs identity)"
    )
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

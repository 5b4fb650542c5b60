"""The shipped gate blocks bad models: the real TFX pipeline (LocalDagRunner) with the gate of
the repository's params.yaml (`evaluate.gate`, untouched), on paired synthetic data.

Runs, sharing one ML Metadata store:
1. untrained generators (`train.epochs: 0`): NOT blessed;
2. a model whose two generators are swapped at export (A->B answered by the B->A generator;
   FID on fallback features cannot tell the directions apart well, the paired error can): NOT
   blessed;
3. a trained model: blessed and pushed (the baseline from then on);
4. a clearly worse candidate (trained far less): NOT blessed, nothing pushed;
and `explain-gate` names the failed checks.
"""

from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT, e2e_config, write_e2e_dataset

from cyclegan_tfx.config import load_config
from cyclegan_tfx.gate import gate_report
from cyclegan_tfx.mlmd import latest_run_artifacts, latest_run_executions
from cyclegan_tfx.model import train as train_module
from pipeline.explain_gate import explain
from pipeline.explain_gate import main as explain_gate_main
from pipeline.local_runner import run, run_and_report

pytestmark = pytest.mark.slow

TRAINED_EPOCHS = 40.0


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    write_e2e_dataset(root)
    return root


def _config(root, epochs):
    config = e2e_config(root, epochs)
    assert config.evaluate.gate == load_config(REPO_ROOT / "params.yaml").evaluate.gate
    return config


def _report(config):
    artifacts = latest_run_artifacts(config.paths.metadata_path, config.pipeline.name)
    executions = latest_run_executions(config.paths.metadata_path, config.pipeline.name)
    return gate_report(artifacts), executions


def _failed(report):
    return {(check.metric, check.check) for check in report.checks if check.passed is False}


@pytest.fixture(scope="module")
def untrained(workspace):
    config = _config(workspace, 0.0)
    run(config)
    return _report(config)


@pytest.fixture(scope="module")
def swapped(workspace, untrained):
    # A different epoch count than the trained run: its own Trainer cache key.
    config = _config(workspace, TRAINED_EPOCHS - 1)
    real_export = train_module.export_generators

    def export_swapped(generator_ab, generator_ba, image_size, export_dir):
        real_export(generator_ba, generator_ab, image_size, export_dir)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "export_generators", export_swapped)
        run(config)
    return _report(config)


@pytest.fixture(scope="module")
def trained(workspace, swapped):
    config = _config(workspace, TRAINED_EPOCHS)
    outcome = run_and_report(config)
    return config, outcome


@pytest.fixture(scope="module")
def worse(workspace, trained):
    config = _config(workspace, 5.0)
    run(config)
    return _report(config)


def test_untrained_generators_are_not_blessed(untrained):
    report, executions = untrained
    assert not report.blessed and "Pusher" not in executions
    assert {("mae_a2b", "vs identity"), ("mae_b2a", "vs identity")} <= _failed(report)
    last = explain(report).splitlines()[-1]
    assert last.startswith("decision: NOT BLESSED") and "mae_a2b vs identity" in last


def test_swapped_generators_are_not_blessed(swapped):
    report, executions = swapped
    assert not report.blessed and "Pusher" not in executions
    assert {("mae_a2b", "vs identity"), ("mae_b2a", "vs identity")} <= _failed(report)


def test_a_trained_model_is_blessed(trained):
    _, outcome = trained
    assert outcome.report.blessed, explain(outcome.report)
    assert outcome.push is not None and not outcome.push.already_pushed
    summary = outcome.summary
    for direction in ("a2b", "b2a"):
        assert summary[f"mae_{direction}"] < summary[f"mae_{direction}_identity"]


def test_a_clearly_worse_candidate_is_not_blessed(worse, trained):
    report, executions = worse
    assert not report.blessed and "Pusher" not in executions
    assert report.baseline_model_uri is not None
    failed = _failed(report)
    assert {("mae_a2b", "vs baseline"), ("mae_b2a", "vs baseline")} & failed, failed


def test_explain_gate_names_the_failed_checks(worse, trained, capsys):
    config = trained[0]
    params = Path(config.paths.root) / "params.yaml"  # paths resolve against its folder
    params.write_text(yaml.safe_dump(config.to_dict()))
    assert explain_gate_main(["--params", str(params)]) == 0
    text = capsys.readouterr().out
    decision = text.strip().splitlines()[-1]
    assert decision.startswith("decision: NOT BLESSED, not pushed (failed: ")
    for metric, check in _failed(worse[0]):
        assert f"{metric} {check}" in decision
    assert "vs baseline" in text and "vs identity" in text

"""The shipped gate blesses a translation and refuses what is not one: the real TFX pipeline
(LocalDagRunner) with the repository's params.yaml (`model`, `train`, `evaluate.gate`
untouched), on the sample's rings task (generated here like `data/`, with fewer test images:
60 per domain; preprocessed by the real Beam job, which fits the colour-transfer baseline).

Runs, sharing one ML Metadata store:
1. untrained generators (`train.epochs: 0`): NOT blessed;
2. doing nothing (the source image as it is): NOT blessed;
3. the colour-transfer baseline as a model (what a colour filter achieves): NOT blessed;
4. a collapsed generator (one constant image, the target domain's mean): NOT blessed;
5. the params.yaml model, trained: blessed and pushed (the baseline from then on);
6. its two generators swapped at export (A->B answered by the B->A generator): NOT blessed;
7. a clearly worse candidate (trained far less): NOT blessed, nothing pushed;
and `explain-gate` names the failed checks. Models 2-4 and 6 are exported in place of the
trained generators (the Trainer runs with 0 epochs, each with its own seed so it re-executes);
everything after the Trainer is the real pipeline.
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, installed_fid_weights, write_params
from gate_models import colour_transfer_generator, constant_generator, identity_generator

from cyclegan_tfx.config import load_config
from cyclegan_tfx.data.preprocess.beam_pipeline import run_preprocessing
from cyclegan_tfx.data.sample_datasets import make_sample_dataset
from cyclegan_tfx.evaluation.colour_transfer import fit
from cyclegan_tfx.evaluation.gate_report import gate_report
from cyclegan_tfx.evaluation.scorer import preprocessed_files
from cyclegan_tfx.mlmd import run_artifacts, run_executions
from cyclegan_tfx.model import data
from cyclegan_tfx.model import train as train_module
from pipeline.explain_gate import explain
from pipeline.explain_gate import main as explain_gate_main
from pipeline.local_runner import run, run_and_report

pytestmark = pytest.mark.slow

COUNTS = {"trainA": 120, "trainB": 100, "testA": 60, "testB": 60}
SAMPLE_SEED = 42
WORSE_EPOCHS = 5.0


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    shipped = load_config(REPO_ROOT / "params.yaml")
    make_sample_dataset(root / "data", seed=SAMPLE_SEED, counts=COUNTS)
    run_preprocessing(str(root / "data"), str(root / "build"), shipped.preprocess)
    return root


def _config(root: Path, **train):
    """params.yaml as shipped, with paths (and the FID feature cache) under `root`."""
    shipped = load_config(REPO_ROOT / "params.yaml")
    paths = dataclasses.replace(shipped.paths, root=str(root), preprocessed="build/preprocessed")
    backbone = dataclasses.replace(
        shipped.evaluate.backbone,
        cache_dir=str(root / "fid-cache"),
        inception_weights=str(installed_fid_weights(shipped)),
    )
    evaluate = dataclasses.replace(shipped.evaluate, backbone=backbone, ground_truth="paired")
    seed = train.pop("seed", shipped.seed)
    # bfloat16, as `make run` trains on CPUs with avx512_bf16 (params.yaml: auto). bfloat16
    # weights repeat on one kind of CPU (two AMD EPYC machines gave the same), not across kinds
    # (an Intel Xeon with AMX gives others): README "Why 120 epochs".
    train.setdefault("mixed_precision", True)
    config = shipped.replace(
        seed=seed,
        paths=paths,
        evaluate=evaluate,
        train=dataclasses.replace(shipped.train, **train),
    )
    assert config.evaluate.gate == shipped.evaluate.gate and config.model == shipped.model
    return config


def _report(config):
    artifacts = run_artifacts(config.paths.metadata_path, config.pipeline.name)
    executions = run_executions(config.paths.metadata_path, config.pipeline.name)
    return gate_report(artifacts), executions


def _failed(report):
    return {(check.metric, check.check) for check in report.checks if check.passed is False}


def _run_exporting(config, make_generators):
    """Runs the pipeline with the Trainer exporting `make_generators(size)` (A->B, B->A)."""
    real_export = train_module.export_generators

    def export(generator_ab, generator_ba, image_size, export_dir):
        real_export(*make_generators(image_size), image_size, export_dir)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "export_generators", export)
        run(config)
    return _report(config)


def _train_images(config, domain):
    train_files, _ = preprocessed_files(config)
    images = data.domain_images(train_files, domain, config.preprocess.image_size)
    return np.stack([image.numpy() for image in images])


@pytest.fixture(scope="module")
def untrained(workspace):
    config = _config(workspace, epochs=0.0)
    run(config)
    return _report(config)


@pytest.fixture(scope="module")
def doing_nothing(workspace, untrained):
    def generators(size):
        return identity_generator("generator_ab", size), identity_generator("generator_ba", size)

    return _run_exporting(_config(workspace, epochs=0.0, seed=1), generators)


@pytest.fixture(scope="module")
def colour_filter(workspace, doing_nothing):
    config = _config(workspace, epochs=0.0, seed=2)
    stats = {d: fit(_train_images(config, d)) for d in "AB"}

    def generators(size):
        return (
            colour_transfer_generator(stats["A"], stats["B"], "generator_ab", size),
            colour_transfer_generator(stats["B"], stats["A"], "generator_ba", size),
        )

    return _run_exporting(config, generators)


@pytest.fixture(scope="module")
def collapsed(workspace, colour_filter):
    config = _config(workspace, epochs=0.0, seed=3)
    means = {d: _train_images(config, d).mean(axis=0).round().astype(np.uint8) for d in "AB"}

    def generators(size):
        return constant_generator(means["B"], "generator_ab"), constant_generator(
            means["A"], "generator_ba"
        )

    return _run_exporting(config, generators)


@pytest.fixture(scope="module")
def trained(workspace, collapsed):
    config = _config(workspace)
    exported = {}
    real_export = train_module.export_generators

    def keep(generator_ab, generator_ba, image_size, export_dir):
        exported.update(ab=generator_ab, ba=generator_ba)
        real_export(generator_ab, generator_ba, image_size, export_dir)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "export_generators", keep)
        outcome = run_and_report(config)
    return config, outcome, exported


@pytest.fixture(scope="module")
def swapped(workspace, trained):
    generators = trained[2]
    return _run_exporting(
        _config(workspace, epochs=0.0, seed=4), lambda size: (generators["ba"], generators["ab"])
    )


@pytest.fixture(scope="module")
def worse(workspace, swapped):
    config = _config(workspace, epochs=WORSE_EPOCHS)
    run(config)
    return _report(config)


def _refused(report, executions):
    assert not report.blessed and "Pusher" not in executions
    last = explain(report).splitlines()[-1]
    assert last.startswith("decision: NOT BLESSED")
    return _failed(report)


def test_untrained_generators_are_not_blessed(untrained):
    failed = _refused(*untrained)
    assert {("mae_a2b", "vs identity"), ("mae_b2a", "vs identity")} <= failed


def test_doing_nothing_is_not_blessed(doing_nothing):
    failed = _refused(*doing_nothing)
    # Both FID (no gap closed) and the paired error (ratio 1) refuse it, in both directions.
    for direction in ("a2b", "b2a"):
        assert {(f"fid_{direction}", "vs identity"), (f"mae_{direction}", "vs identity")} <= failed


def test_a_colour_filter_is_not_blessed(colour_filter):
    report, _ = colour_filter
    failed = _refused(*colour_filter)
    assert {("mae_a2b", "vs colour transfer"), ("mae_b2a", "vs colour transfer")} <= failed
    rows = {(c.metric, c.check): c for c in report.checks}
    # It scores what the Evaluator's own baseline scores (the same transfer, same images).
    row = rows["mae_a2b", "vs colour transfer"]
    assert row.candidate == pytest.approx(row.reference, abs=0.05)


def test_a_collapsed_generator_is_not_blessed(collapsed):
    failed = _refused(*collapsed)
    assert {("mae_a2b", "vs identity"), ("mae_b2a", "vs identity")} <= failed


def test_the_trained_model_is_blessed(trained):
    _, outcome, _ = trained
    assert outcome.report.blessed, explain(outcome.report)
    assert outcome.push is not None and not outcome.push.already_pushed
    summary = outcome.summary
    for direction in ("a2b", "b2a"):
        mae = summary[f"mae_{direction}"]
        assert mae < summary[f"mae_{direction}_identity"]
        assert mae < summary[f"mae_{direction}_colour_transfer"]
        assert summary[f"fid_{direction}_gap_closed"] > 0


def test_swapped_generators_are_not_blessed(swapped):
    failed = _refused(*swapped)
    assert {("mae_a2b", "vs identity"), ("mae_b2a", "vs identity")} <= failed


def test_a_clearly_worse_candidate_is_not_blessed(worse, trained):
    report, _ = worse
    failed = _refused(*worse)
    assert report.baseline_model_uri is not None
    assert {("mae_a2b", "vs baseline"), ("mae_b2a", "vs baseline")} & failed, failed


def test_explain_gate_names_the_failed_checks(worse, trained, capsys):
    config = trained[0]
    params = write_params(config, Path(config.paths.root) / "params.yaml")
    assert explain_gate_main(["--params", str(params)]) == 0
    text = capsys.readouterr().out
    decision = text.strip().splitlines()[-1]
    assert decision.startswith("decision: NOT BLESSED, not pushed (failed: ")
    for metric, check in _failed(worse[0]):
        assert f"{metric} {check}" in decision
    assert "vs baseline" in text and "vs identity" in text and "vs colour transfer" in text

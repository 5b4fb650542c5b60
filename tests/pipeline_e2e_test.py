"""End-to-end: the real TFX pipeline under LocalDagRunner on tiny data.

The runs share one pipeline root and ML Metadata store:
1. an untrained candidate (train.epochs = 0): every component runs, the paired error is far
   above the bound, the model is NOT blessed and NOT pushed;
2. a trained candidate: blessed and pushed into serving/<name>/<version>/, which loads back,
   translates and runs in `saved_model_cli run` (the loader TF Serving uses);
3. the same run again: every component is a cache hit. The baseline is the newest blessed model
   other than the candidate (components/baseline_resolver.py), so the Evaluator does not run
   again to compare the pushed model with itself; nothing new is pushed or registered;
4. the TFRecords written again with the same bytes (`dvc repro -f`): every component is a cache
   hit;
5. from a copy of the project with a changed line of training code (`_INIT_STDDEV`), run as a
   user runs it (`python -m pipeline.local_runner`): the Trainer executes again, the new model
   is what the Evaluator scores, and it is pushed and registered with its own code fingerprint;
6. from the same copy with a changed line of metric code: the Trainer is a cache hit and the
   Evaluator executes again.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml
from conftest import (
    E2E_SIZE,
    MECHANICS_GATE,
    REPO_ROOT,
    push_lane_config,
    saved_model_cli_run,
    synthetic_images,
    write_e2e_dataset,
    write_examples,
    write_params,
)
from ml_metadata.proto import metadata_store_pb2
from PIL import Image
from tfx import v1 as tfx
from tfx.orchestration import metadata

from components.gate_reporter import GateReport
from cyclegan_tfx import translate
from cyclegan_tfx.config import DIRECTIONS
from cyclegan_tfx.evaluation.gate_report import gate_report
from cyclegan_tfx.mlmd import open_store, run_artifacts, run_executions, run_name
from cyclegan_tfx.model.export import SIGNATURE_A2B, SIGNATURE_B2A
from cyclegan_tfx.registry import cli as models
from cyclegan_tfx.registry.store import resolve_model_path
from pipeline.explain_gate import explain
from pipeline.explain_gate import main as explain_gate_main
from pipeline.local_runner import run, run_and_report
from pipeline.pipeline import RESOLVER_ID
from pipeline.reports import write_reports

pytestmark = pytest.mark.slow

SIZE = E2E_SIZE
TRAINED_EPOCHS = 40.0
UPSTREAM = ("ImportExampleGen", "Trainer", RESOLVER_ID, "Evaluator", "GateReporter")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    write_e2e_dataset(root)
    shutil.copy(REPO_ROOT / "data.dvc", root / "data.dvc")  # the data version the registry records
    return root


def _config(root, epochs):
    return push_lane_config(root, epochs)


def _pushed_versions(config):
    base = config.serving_dir()
    if not tf.io.gfile.exists(base):
        return []
    names = (name.rstrip("/") for name in tf.io.gfile.listdir(base))
    return sorted(name for name in names if name.isdigit())  # not registry.json, production, ...


@pytest.fixture(scope="module")
def untrained_run(workspace):
    config = _config(workspace, epochs=0.0)
    run(config)
    return config, run_executions(config.paths.metadata_path, config.pipeline.name)


@pytest.fixture(scope="module")
def trained_run(workspace, untrained_run):
    config = _config(workspace, epochs=TRAINED_EPOCHS)
    summary = run_and_report(config).summary
    return config, run_executions(config.paths.metadata_path, config.pipeline.name), summary


@pytest.fixture(scope="module")
def rerun(workspace, trained_run):
    config = _config(workspace, epochs=TRAINED_EPOCHS)
    outcome = run_and_report(config)
    executions = run_executions(config.paths.metadata_path, config.pipeline.name)
    return config, executions, outcome.summary, outcome


def _rewrite_identically(folder: Path) -> None:
    """Writes every TFRecord again with the same bytes and a later mtime (`dvc repro -f`)."""
    for path in sorted(folder.rglob("*.tfrecord")):
        content = path.read_bytes()
        path.unlink()
        path.write_bytes(content)
        later = path.stat().st_mtime + 3600
        os.utime(path, (later, later))


@pytest.fixture(scope="module")
def rewritten_rerun(workspace, rerun):
    config = _config(workspace, epochs=TRAINED_EPOCHS)
    _rewrite_identically(config.paths.resolve("preprocessed"))
    outcome = run_and_report(config)
    return run_executions(config.paths.metadata_path, config.pipeline.name), outcome


def _store(config):
    return metadata.Metadata(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(config.paths.metadata_path)
        )
    )


def _node_executions(config, node):
    """Every execution of a pipeline node, oldest first: (id, state name, input/output ids)."""
    with _store(config) as m:
        store = m.store
        (context,) = [
            c
            for c in store.get_contexts_by_type("node")
            if c.name == f"{config.pipeline.name}.{node}"
        ]
        executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
        events = store.get_events_by_execution_ids([e.id for e in executions])
        result = []
        for execution in executions:
            mine = [e for e in events if e.execution_id == execution.id]
            keyed = {}
            for event in mine:
                key = next(step.key for step in event.path.steps if step.key)
                kind = "in" if event.type == metadata_store_pb2.Event.INPUT else "out"
                keyed.setdefault((kind, key), event.artifact_id)
            state = metadata_store_pb2.Execution.State.Name(execution.last_known_state)
            result.append((execution.id, state, keyed))
        return result


@pytest.fixture(scope="module")
def project_copy(workspace, rewritten_rerun, tmp_path_factory):
    """The project's code copied, and params.yaml of the e2e config in the workspace."""
    code = tmp_path_factory.mktemp("code")
    for package in ("cyclegan_tfx", "components", "pipeline"):
        shutil.copytree(
            REPO_ROOT / package, code / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    params = workspace / "params.yaml"
    params.write_text(yaml.safe_dump(_config(workspace, TRAINED_EPOCHS).to_dict()))
    return code, params


def _run_copy(code, params):
    """Runs the pipeline as a user does, from the (edited) copy of the project's code."""
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.local_runner", "--params", str(params)],
        cwd=code,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise AssertionError(f"local_runner failed:\n{result.stdout}\n{result.stderr[-5000:]}")
    return result


@pytest.fixture(scope="module")
def trainer_code_change(workspace, project_copy):
    code, params = project_copy
    config = _config(workspace, TRAINED_EPOCHS)
    trainers_before = {e[0] for e in _node_executions(config, "Trainer")}
    networks = code / "cyclegan_tfx" / "model" / "networks.py"
    text = networks.read_text()
    assert "_INIT_STDDEV = 0.02" in text
    # A small change: other weights, a model about as good.
    networks.write_text(text.replace("_INIT_STDDEV = 0.02", "_INIT_STDDEV = 0.025"))
    result = _run_copy(code, params)
    summary = json.loads((config.paths.resolve("metrics") / "evaluation.json").read_text())
    return config, trainers_before, result, summary


@pytest.fixture(scope="module")
def metric_code_change(workspace, project_copy, trainer_code_change):
    code, params = project_copy
    config = _config(workspace, TRAINED_EPOCHS)
    evaluators_before = {e[0] for e in _node_executions(config, "Evaluator")}
    # A line of the scoring module the metric imports (its code closure, not only its file).
    metric = code / "cyclegan_tfx" / "evaluation" / "quality.py"
    text = metric.read_text()
    assert "KID_SEED = 0\n" in text
    metric.write_text(text.replace("KID_SEED = 0\n", "KID_SEED = 0  # seed\n"))
    result = _run_copy(code, params)
    return config, evaluators_before, result


def test_untrained_candidate_is_evaluated_but_not_pushed(untrained_run):
    config, states = untrained_run
    for node in UPSTREAM:
        assert states[node] == "COMPLETE", states
    assert "Pusher" not in states, "the Pusher must be skipped by the blessing condition"
    assert "PushRecorder" not in states  # (under the same condition)
    assert _pushed_versions(config) == []
    summary, _ = write_reports(config)
    assert summary["blessed"] is False
    assert summary["pushed_version"] is None
    # Not a translation: the paired error is far from the gate's share of doing nothing's.
    gate = config.evaluate.gate
    assert summary["mae_a2b"] > gate.mae_vs_identity_max * summary["mae_a2b_identity"]
    assert summary["backbone"] == "inception-2015-12-05"


def test_trained_candidate_is_blessed_and_pushed(trained_run):
    config, states, summary = trained_run
    assert states["Trainer"] == "COMPLETE"
    assert states["Pusher"] == states["PushRecorder"] == "COMPLETE"
    assert summary["blessed"] is True
    for direction in ("a2b", "b2a"):
        assert summary[f"mae_{direction}"] < 0.8 * summary[f"mae_{direction}_identity"]
        gap_closed = summary[f"fid_{direction}_gap_closed"]
        assert gap_closed >= MECHANICS_GATE["fid_gap_closed_min"]  # the same weights every run
        assert summary[f"fid_{direction}_std"] > 0 and summary[f"paired_{direction}_num"] == 24
    assert summary["baseline"] is None  # no blessed model existed before
    assert _pushed_versions(config) == [summary["pushed_version"]]


def test_pushed_model_loads_and_translates(trained_run):
    config, _, summary = trained_run
    model_dir = f"{config.serving_dir()}/{summary['pushed_version']}"
    model = tf.saved_model.load(model_dir)
    assert {SIGNATURE_A2B, SIGNATURE_B2A, "serving_default"} <= set(model.signatures)
    images = synthetic_images(3, SIZE, "A", 7)
    out = model.signatures[SIGNATURE_A2B](images=tf.constant(images))["translated"].numpy()
    assert out.shape == images.shape and out.dtype == np.uint8
    assert not np.array_equal(out, images)


@pytest.mark.parametrize("signature", [SIGNATURE_A2B, SIGNATURE_B2A, "serving_default"])
def test_pushed_model_runs_in_saved_model_cli(trained_run, signature, tmp_path):
    # saved_model_cli run loads with the session-based loader of TF Serving and KServe; its
    # output must equal the object-based loader's on the same input.
    config, _, summary = trained_run
    model_dir = f"{config.serving_dir()}/{summary['pushed_version']}"
    images = synthetic_images(2, SIZE, "B", 9)
    served = saved_model_cli_run(model_dir, signature, images, tmp_path)
    loaded = tf.saved_model.load(model_dir).signatures[signature]
    expected = loaded(images=tf.constant(images))["translated"].numpy()
    assert served.dtype == np.uint8 and served.shape == images.shape
    np.testing.assert_array_equal(served, expected)


def test_reports_are_written(trained_run):
    config, _, summary = trained_run
    metrics = json.loads((config.paths.resolve("metrics") / "evaluation.json").read_text())
    assert metrics == json.loads(json.dumps(summary))
    plots = config.paths.resolve("plots")
    curves = config.paths.resolve("dvclive") / "plots" / "metrics"
    for network in ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b"):
        for group in ("loss", "lr"):
            rows = (curves / group / f"{network}.tsv").read_text().splitlines()
            assert rows[0] == f"step\t{network}" and len(rows) > 2
    for name in ("translations_a2b.png", "translations_b2a.png", "training_samples.png"):
        assert (plots / name).read_bytes().startswith(b"\x89PNG")
    # 8 test images per direction, each: input | translation | ground truth (2 px padding)
    grid = np.asarray(Image.open(plots / "translations_a2b.png"))
    assert grid.shape[:2] == (8 * (SIZE + 2) + 2, 3 * (SIZE + 2) + 2)
    bars = json.loads((plots / "fid.json").read_text())
    assert [b["bar"] for b in bars] == [
        "a2b candidate",
        "a2b identity",
        "b2a candidate",
        "b2a identity",
    ]


def _components(states):
    # The Resolver is not a cacheable component: it looks up the baseline on every run.
    return {node: state for node, state in states.items() if node != RESOLVER_ID}


def test_rerun_after_a_push_is_all_cache_hits(rerun, trained_run):
    """The pushed model is not its own baseline: nothing re-executes to compare it with itself."""
    _, states, summary, _ = rerun
    components = _components(states)
    assert set(components) == {
        "ImportExampleGen",
        "Trainer",
        "Evaluator",
        "GateReporter",
        "Pusher",
        "PushRecorder",
    }
    assert set(components.values()) == {"CACHED"}, states
    assert summary["baseline"] == trained_run[2]["baseline"]  # the one it was blessed against
    assert summary["fid_a2b"] == pytest.approx(trained_run[2]["fid_a2b"])
    assert summary["mae_b2a"] == pytest.approx(trained_run[2]["mae_b2a"])
    assert summary["blessed"] is True


def test_rerun_pushes_and_registers_nothing_new(rerun, trained_run):
    config, _, summary, outcome = rerun
    first = trained_run[2]["pushed_version"]
    assert outcome.push.version == first and outcome.push.already_pushed
    assert summary["pushed_version"] == first
    assert _pushed_versions(config) == [first]
    registry = json.loads((Path(config.serving_dir()) / "registry.json").read_text())
    assert list(registry["versions"]) == [first]
    # Recorded in the pipeline (PushRecorder) by the run that pushed it, with that run's id.
    assert registry["versions"][first]["pipeline_run"] == trained_run[2]["pipeline_run_id"]


def test_every_run_writes_its_gate_report_as_an_artifact(untrained_run, trained_run):
    """Blessed or not, the GateReporter writes what explain-gate shows (Kubeflow users read it)."""
    config = trained_run[0]
    store = open_store(config.paths.metadata_path)
    reports = sorted(store.get_artifacts_by_type(GateReport.TYPE_NAME), key=lambda a: a.id)
    assert len(reports) >= 2
    for artifact, blessed in zip(reports[:2], (False, True), strict=True):
        document = json.loads((Path(artifact.uri) / "gate.json").read_text())
        run_id = document["pipeline_run_id"]
        artifacts = run_artifacts(config.paths.metadata_path, config.pipeline.name, run_id)
        expected = gate_report(artifacts, run_id)
        assert document["blessed"] is blessed is expected.blessed
        assert document["gate"] == json.loads(json.dumps(expected.gate_dict()))
        text = (Path(artifact.uri) / "gate.txt").read_text().strip().splitlines()
        assert text[0] == explain(expected).splitlines()[0]  # the run's own id and evaluation
        assert text[-1].startswith("decision: BLESSED" if blessed else "decision: NOT BLESSED")


def test_identical_data_written_again_is_all_cache_hits(rewritten_rerun, trained_run):
    """The cache follows the TFRecords' content, not their mtimes (`dvc repro -f`)."""
    states, outcome = rewritten_rerun
    assert set(_components(states).values()) == {"CACHED"}, states
    assert outcome.push.version == trained_run[2]["pushed_version"]
    assert outcome.push.already_pushed


def test_changed_data_retrains(tmp_path):
    """One more training image: a new fingerprint, so ExampleGen and the Trainer run again."""
    write_e2e_dataset(tmp_path)
    config = _config(tmp_path, epochs=0.0)
    run(config)
    train = config.paths.resolve("preprocessed") / "train"
    (shard,) = sorted(train.glob("*.tfrecord"))
    write_examples(train / "extra.tfrecord", {"A": synthetic_images(1, E2E_SIZE, "A", 99)})
    run(config)
    states = run_executions(config.paths.metadata_path, config.pipeline.name)
    assert states["ImportExampleGen"] == "COMPLETE" and states["Trainer"] == "COMPLETE"
    assert shard.exists()


def test_changed_training_code_retrains_and_the_new_model_is_evaluated(
    trainer_code_change, trained_run
):
    config, trainers_before, result, summary = trainer_code_change
    assert summary["fid_a2b"] != pytest.approx(trained_run[2]["fid_a2b"])
    trainer_id, trainer_state, trainer_io = _node_executions(config, "Trainer")[-1]
    assert trainer_id not in trainers_before and trainer_state == "COMPLETE"
    _, evaluator_state, evaluator_io = _node_executions(config, "Evaluator")[-1]
    assert evaluator_state == "COMPLETE"
    assert evaluator_io["in", "model"] == trainer_io["out", "model"]
    assert "registered version" in result.stdout


def test_the_retrained_version_records_the_code_that_trained_it(trainer_code_change, trained_run):
    config, _, _, summary = trainer_code_change
    first, second = trained_run[2]["pushed_version"], summary["pushed_version"]
    assert second != first and _pushed_versions(config) == [first, second]
    entries = json.loads((Path(config.serving_dir()) / "registry.json").read_text())["versions"]
    code_first, code_second = (entries[v]["training_code"] for v in (first, second))
    assert code_first["fingerprint"].startswith("sha256:")
    assert code_second["fingerprint"] != code_first["fingerprint"]
    assert "cyclegan_tfx/model/networks.py" in code_second["files"]
    assert entries[second]["weights_fingerprint"] != entries[first]["weights_fingerprint"]
    # The entry names the run's artifacts (the PushRecorder has no ML Metadata connection);
    # the model is the output of the Trainer execution that retrained it.
    _, state, keyed = _node_executions(config, "Trainer")[-1]
    assert state == "COMPLETE"
    assert entries[second]["lineage"]["model"]["id"] == keyed["out", "model"]
    assert entries[second]["pipeline_run"] == summary["pipeline_run_id"]


def test_changed_metric_code_re_evaluates_without_retraining(metric_code_change):
    config, evaluators_before, _ = metric_code_change
    _, trainer_state, _ = _node_executions(config, "Trainer")[-1]
    assert trainer_state == "CACHED"
    evaluator_id, evaluator_state, _ = _node_executions(config, "Evaluator")[-1]
    assert evaluator_id not in evaluators_before and evaluator_state == "COMPLETE"


# Model registry and inference on the models the two trained runs pushed -----------------------


@pytest.fixture(scope="module")
def registry_project(project_copy, metric_code_change, trainer_code_change, trained_run):
    """params.yaml of the e2e config (so the CLIs see the same serving folder), both versions."""
    _, params = project_copy
    return params, trained_run[2]["pushed_version"], trainer_code_change[3]["pushed_version"]


def _models_cli(params, *args):
    return models.main([args[0], "--params", str(params), *args[1:]])


def test_models_list_shows_both_pushed_versions(
    registry_project, trained_run, trainer_code_change, capsys
):
    params, first, second = registry_project
    assert first != second
    assert _models_cli(params, "list", "--json") == 0
    rows = {row["version"]: row for row in json.loads(capsys.readouterr().out)}
    assert list(rows) == [first, second]
    md5 = yaml.safe_load((REPO_ROOT / "data.dvc").read_text())["outs"][0]["md5"]
    summaries = (trained_run[2], trainer_code_change[3])
    for row, summary in zip(rows.values(), summaries, strict=True):
        assert row["registered"] and row["on_disk"]
        assert row["metrics"]["fid_a2b"] == pytest.approx(summary["fid_a2b"])
        assert row["metrics"]["fid_b2a"] == pytest.approx(summary["fid_b2a"])
        assert set(row["metrics"]) >= {"kid_a2b", "kid_b2a", "backbone"}
        assert row["data"]["md5"] == md5
        assert row["params_hash"].startswith("sha256:")
        assert isinstance(row["optimizer_strategy"], str)
        assert row["pushed_at"].endswith("Z")
    assert rows[first]["semver"] == "v0.0.1" and rows[second]["semver"] == "v0.0.2"
    assert rows[first]["baseline"] is None
    baseline = rows[second]["baseline"]
    assert baseline["version"] == first  # the retrained model was compared with the first push
    assert baseline["fid_a2b"] == pytest.approx(trained_run[2]["fid_a2b"])
    assert rows[first]["params_hash"] == rows[second]["params_hash"]
    listing = subprocess.run(
        [sys.executable, "-m", "cyclegan_tfx.registry", "list", "--params", str(params)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert first in listing and second in listing and "v0.0.2" in listing


def test_promote_and_rollback_move_production_atomically(registry_project, rerun):
    params, first, second = registry_project
    base = rerun[0].paths.resolve("serving") / rerun[0].pipeline.name
    production = str(base / "production")
    assert _models_cli(params, "promote", first, "--to", "production") == 0
    assert resolve_model_path(production) == f"{base}/{first}"
    assert _models_cli(params, "promote", second, "--to", "production") == 0
    assert resolve_model_path(production) == f"{base}/{second}"
    assert f"value: {second}" in (base / "models.config").read_text()
    assert _models_cli(params, "rollback") == 0
    assert resolve_model_path(production) == f"{base}/{first}"
    assert f"value: {first}" in (base / "models.config").read_text()
    loaded = tf.saved_model.load(resolve_model_path(production))
    assert loaded.signatures[SIGNATURE_A2B] is not None
    assert _models_cli(params, "promote", "v0.0.2", "--to", "production") == 0
    assert resolve_model_path(production) == f"{base}/{second}"
    assert not (base / "production").exists()  # no symlink: the registry is the pointer


def test_show_prints_the_lineage(registry_project, capsys):
    params, first, second = registry_project
    assert _models_cli(params, "show", second, "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    lineage = shown["lineage"]
    assert shown["lineage_source"].startswith("ML Metadata")
    assert lineage["trainer"]["node"] == "Trainer" and lineage["trainer"]["state"] == "COMPLETE"
    # Reused once: by the run whose metric code changed.
    assert [e["state"] for e in lineage["trainer_reused_by"]] == ["CACHED"]
    assert lineage["evaluator"]["node"] == "Evaluator"
    assert lineage["blessing"]["properties"]["blessed"] == 1
    assert lineage["pusher"]["node"] == "Pusher"
    assert _models_cli(params, "show", first, "--json") == 0
    first_lineage = json.loads(capsys.readouterr().out)["lineage"]
    assert lineage["baseline_model"]["id"] == first_lineage["model"]["id"]
    assert first_lineage["trainer"]["id"] != lineage["trainer"]["id"]
    # The first model was reused by the two unchanged reruns (the second on rewritten
    # identical data), and pushed once.
    assert [e["state"] for e in first_lineage["trainer_reused_by"]] == ["CACHED"] * 2
    assert first_lineage["pushed_model"]["properties"].get("already_pushed") in (None, 0)
    assert _models_cli(params, "show", second) == 0
    text = capsys.readouterr().out
    assert "training code    sha256:" in text
    assert f"Trainer execution #{lineage['trainer']['id']} (COMPLETE" in text
    assert f"Evaluator execution #{lineage['evaluator']['id']}" in text
    assert "blessed=1" in text and f"baseline beaten  {first}" in text
    md5 = yaml.safe_load((REPO_ROOT / "data.dvc").read_text())["outs"][0]["md5"]
    assert f"data.dvc md5 {md5}" in text


def test_translate_a_folder_with_the_pushed_model(registry_project, rerun, tmp_path, capsys):
    params, _, second = registry_project
    assert _models_cli(params, "promote", second, "--to", "production") == 0
    config = rerun[0]
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    images = synthetic_images(2, 40, "A", 11)
    Image.fromarray(images[0]).save(in_dir / "one.png")
    Image.fromarray(images[1][:25]).save(in_dir / "two.jpg")
    Image.fromarray(synthetic_images(1, SIZE, "A", 12)[0]).save(in_dir / "three.png")
    (in_dir / "corrupt.png").write_bytes(b"definitely not a png")
    model = config.paths.resolve("serving") / config.pipeline.name / "production"
    status = translate.main(
        ["--model", str(model), "--direction", "a2b", str(in_dir), str(tmp_path / "out")]
    )
    assert status == 0
    out_dir = tmp_path / "out"
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        ["one.png", "two.jpg", "three.png", translate.REJECTS_FILE]
    )
    for name in ("one.png", "two.jpg", "three.png"):
        assert Image.open(out_dir / name).size == Image.open(in_dir / name).size
    assert "corrupt.png,not_an_image" in (out_dir / translate.REJECTS_FILE).read_text()
    assert "translated 3 of 4 files" in capsys.readouterr().out


def test_explain_gate_after_the_last_run(registry_project, rerun, trained_run, capsys):
    config = rerun[0]
    summary = json.loads((config.paths.resolve("metrics") / "evaluation.json").read_text())
    run_id = run_name(config.paths.metadata_path, config.pipeline.name)  # the newest
    report = gate_report(run_artifacts(config.paths.metadata_path, config.pipeline.name), run_id)
    assert summary["pipeline_run_id"] == run_id
    rows = {(check.metric, check.check): check for check in report.checks}
    for direction in ("a2b", "b2a"):
        for metric in ("fid", "mae"):
            identity = rows[f"{metric}_{direction}", "vs identity"]
            assert identity.passed is True and identity.candidate < identity.reference
            # The last run re-evaluated the second model against the first (not itself).
            baseline = rows[f"{metric}_{direction}", "vs baseline"]
            first = trained_run[2][f"{metric}_{direction}"]
            assert baseline.reference == pytest.approx(first, rel=1e-6)
            assert baseline.candidate != pytest.approx(first, rel=1e-6)
        # With ground truth the baseline comparison is on the paired error.
        assert rows[f"mae_{direction}", "vs baseline"].passed is True
        assert rows[f"fid_{direction}", "vs baseline"].passed is None
        kid = rows[f"kid_{direction}", "report"]  # no KID bound in params.yaml
        assert kid.passed is None and np.isfinite(kid.candidate)
        # 24 vs 24 images < subset size: every subset is all of them, and the spread is the
        # bootstrap's over the test images (as FID's).
        assert kid.std > 0
        assert summary[f"kid_{direction}"] == pytest.approx(kid.candidate)
    assert report.backbone == "inception-2015-12-05"
    gate_file = config.paths.resolve("reports") / "gate.json"
    assert json.loads(gate_file.read_text()) == json.loads(json.dumps(report.to_dict()))
    assert "gate" not in summary  # the DVC metrics file holds the numbers only
    text = explain(report)
    assert "metric" in text and "threshold" in text
    assert text.splitlines()[-1].startswith("decision: BLESSED")
    # The CLI (make explain-gate) reads the same run through a params file.
    params = write_params(config, Path(config.paths.root) / "explain_gate_params.yaml")
    capsys.readouterr()
    assert explain_gate_main(["--params", str(params)]) == 0
    assert capsys.readouterr().out.strip() == text
    assert explain_gate_main(["--params", str(params), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(gate_file.read_text())
    # The feature rows of the real test images and of their ground truths (images that depend
    # on the data only) were cached once per image and reused by all runs.
    stats_cache = Path(config.evaluate.backbone.cache_dir) / "fid_stats"
    fixed_images = sum(
        summary[f"fid_{d}_num_real"] + summary[f"paired_{d}_num"] for d in DIRECTIONS
    )
    assert len(list(stats_cache.rglob("*.npy"))) == fixed_images


def test_backfill_registers_a_version_again_from_ml_metadata(registry_project, rerun, capsys):
    params, _, second = registry_project
    path = rerun[0].paths.resolve("serving") / rerun[0].pipeline.name / "registry.json"
    data = json.loads(path.read_text())
    saved = data["versions"][second]
    data["versions"][second] = {k: saved[k] for k in ("version", "semver", "registered_at")}
    path.write_text(json.dumps(data))  # an entry recorded incompletely
    assert _models_cli(params, "register") == 0
    assert f"registered {second}" in capsys.readouterr().out
    entry = json.loads(path.read_text())["versions"][second]
    assert entry["semver"] == saved["semver"]
    assert entry["metrics"]["fid_a2b"] == pytest.approx(saved["metrics"]["fid_a2b"])
    assert entry["baseline"] == saved["baseline"]
    # From ML Metadata: the same artifacts as recorded at push time, and the executions too.
    for key in ("pushed_model", "model", "blessing", "evaluation", "examples"):
        assert entry["lineage"][key]["id"] == saved["lineage"][key]["id"], key
    assert saved["lineage"]["evaluator"] is None
    assert entry["lineage"]["evaluator"]["node"] == "Evaluator"
    assert entry["lineage"]["evaluator"]["state"] == "COMPLETE"
    assert entry["git"] is None and entry["params_hash"] is None and entry["backfilled_at"]
    assert _models_cli(params, "register", "424242") == 2
    assert "no push of version 424242" in capsys.readouterr().err

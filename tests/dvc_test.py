"""Real DVC commands in temporary git + DVC repositories.

- the versioned sample dataset is obtained offline from the remote bundled with the repo;
- the sample-data generator reproduces exactly the version recorded in data.dvc;
- `dvc repro` runs both stages, a second `dvc repro` does no work, and `dvc metrics show`
  / `dvc plots show` read the outputs, and a queued experiment is gated against the
  workspace's blessed model (slow).
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT

from cyclegan_tfx.data.sample_datasets import DEFAULT_COUNTS, UNEVEN_B_SOURCES, make_sample_dataset
from cyclegan_tfx.experiments.study.experiments import existing

BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc")
SAMPLE_SEED = 42  # the seed data.dvc's dataset was generated with (see README)
UNEVEN_SEED = 43  # data_uneven.dvc's (scripts/make_sample_data.py --uneven, docs/own-data.md)


def _run(args, cwd, check=True):
    # The stages call `python`: the project's virtualenv must come first on PATH.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def _git_dvc_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    _run(["git", "init", "-q"], path)
    _run(["git", "config", "user.email", "test@example.com"], path)
    _run(["git", "config", "user.name", "test"], path)
    _run([DVC, "init", "-q"], path)
    return path


def _data_md5(dvc_file: Path) -> str:
    return yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"]


def test_sample_dataset_is_pulled_offline_from_the_bundled_remote(tmp_path):
    repo = _git_dvc_repo(tmp_path / "clone")
    shutil.copy(REPO_ROOT / "data.dvc", repo / "data.dvc")
    shutil.copy(REPO_ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    shutil.copytree(REPO_ROOT / "dvc-storage", repo / "dvc-storage")
    _run([DVC, "pull", "-q", "data.dvc"], repo)
    test_images = DEFAULT_COUNTS["testA"] + DEFAULT_COUNTS["testB"]  # each with its ground truth
    assert len(list((repo / "data").rglob("*.png"))) == sum(DEFAULT_COUNTS.values()) + test_images
    assert "up to date" in _run([DVC, "status"], repo).stdout


def test_generator_reproduces_the_versioned_dataset(tmp_path):
    repo = _git_dvc_repo(tmp_path / "regen")
    make_sample_dataset(repo / "data", seed=SAMPLE_SEED)
    _run([DVC, "add", "-q", "data"], repo)
    assert _data_md5(repo / "data.dvc") == _data_md5(REPO_ROOT / "data.dvc")


def test_generator_reproduces_the_versioned_grade_dataset(tmp_path):
    # The style case: the colour-grade dataset (make run's default before the rings task).
    repo = _git_dvc_repo(tmp_path / "regen-grade")
    make_sample_dataset(repo / "data_grade", seed=SAMPLE_SEED, task="grade")
    _run([DVC, "add", "-q", "data_grade"], repo)
    assert _data_md5(repo / "data_grade.dvc") == _data_md5(REPO_ROOT / "data_grade.dvc")


def test_generator_reproduces_the_versioned_uneven_dataset(tmp_path):
    # The optimizer study's second dataset (README "Do separate optimizers help?").
    repo = _git_dvc_repo(tmp_path / "regen-uneven")
    make_sample_dataset(
        repo / "data_uneven",
        seed=UNEVEN_SEED,
        counts={"trainA": 120, "trainB": 100, "testA": 100, "testB": 100},
        b_sources=UNEVEN_B_SOURCES,
        task="grade",
    )
    _run([DVC, "add", "-q", "data_uneven"], repo)
    assert _data_md5(repo / "data_uneven.dvc") == _data_md5(REPO_ROOT / "data_uneven.dvc")


def test_lock_check_fails_when_code_or_params_change_after_the_run(tmp_path):
    repo = _git_dvc_repo(tmp_path / "lock")
    (repo / "src").mkdir()
    (repo / "src" / "step.py").write_text("print('v1')\n")
    (repo / "params.yaml").write_text("step:\n  size: 1\n")
    stage = "python src/step.py > out.txt"
    _run(
        [
            DVC,
            "stage",
            "add",
            "-q",
            "-n",
            "step",
            "-d",
            "src",
            "-p",
            "step",
            "-o",
            "out.txt",
            stage,
        ],
        repo,
    )
    _run([DVC, "repro", "-q"], repo)
    # A stage that has never run here (like the optimizer study's, run only as experiments)
    # produced none of the committed outputs: not stale.
    (repo / "study").mkdir()
    (repo / "study" / "dvc.yaml").write_text(
        "stages:\n  later:\n    wdir: ..\n    cmd: python src/step.py > later.txt\n"
        "    deps: [src]\n    params: [step]\n    outs: [later.txt]\n"
    )
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-qm", "run"], repo)
    check = [sys.executable, str(REPO_ROOT / "scripts" / "check_dvc_lock.py")]
    assert _run(check, repo).returncode == 0
    (repo / "src" / "step.py").write_text("print('v2')\n")
    stale = _run(check, repo, check=False)
    assert stale.returncode == 1
    assert "step: code dependency src modified" in stale.stderr and "make run" in stale.stderr
    (repo / "src" / "step.py").write_text("print('v1')\n")
    (repo / "params.yaml").write_text("step:\n  size: 2\n")
    stale = _run(check, repo, check=False)
    assert stale.returncode == 1 and "param step (params.yaml) modified" in stale.stderr
    assert "later" not in stale.stderr
    # Once it has run, it is checked like any other.
    _run([DVC, "repro", "-q", "dvc.yaml", "study/dvc.yaml:later"], repo)
    (repo / "params.yaml").write_text("step:\n  size: 3\n")
    stale = _run(check, repo, check=False)
    assert "study/dvc.yaml:later: param step (params.yaml) modified" in stale.stderr


def test_committed_lock_matches_the_committed_code():
    # The same check `make lint` runs, on this repository.
    result = _run(
        [sys.executable, str(REPO_ROOT / "scripts" / "check_dvc_lock.py")], REPO_ROOT, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "dvcfile, stage",
    [
        ("dvc.yaml", "preprocess"),
        ("dvc.yaml", "pipeline"),
        ("study/dvc.yaml", "preprocess_uneven"),
        ("study/dvc.yaml", "preprocess_grade"),
        ("study/dvc.yaml", "study_run"),
    ],
)
def test_stage_deps_cover_the_code_the_stage_runs(dvcfile, stage):
    # DVC reruns a stage only when a listed dependency changes: every project file the
    # stage's command imports (transitively) must be under one of its deps.
    from cyclegan_tfx.cli import COMMANDS
    from cyclegan_tfx.code_fingerprint import module_closure

    definition = yaml.safe_load((REPO_ROOT / dvcfile).read_text())["stages"][stage]
    # `cyclegan-tfx X` or `python -m cyclegan_tfx.cli X`: the entry point imports lazily.
    command = definition["cmd"].replace("python -m cyclegan_tfx.cli ", "cyclegan-tfx ")
    command = command.split("cyclegan-tfx ", 1)[1].split()[0]
    modules = ["cyclegan_tfx.cli", COMMANDS[command][0]]
    deps = [str(d) for d in definition["deps"] if "${" not in str(d)]
    closure = {path for module in modules for path in module_closure(module)}
    files = sorted(p.relative_to(REPO_ROOT).as_posix() for p in closure)
    uncovered = [f for f in files if not any(f == d or f.startswith(d + "/") for d in deps)]
    assert uncovered == [], f"add to the {stage} stage's deps in dvc.yaml: {uncovered}"


def _check_bar_plots(plots_json: str) -> None:
    """Candidate, baseline and doing nothing are separate bars, not stacked in one.

    `dvc plots show --json` gives, per plot, the Vega-Lite spec and its data. Each bar of the
    FID and MAE plots must have a y value (`bar`) of its own; bars sharing a y value would be
    stacked by Vega-Lite (the bug this replaced: y = direction).
    """
    shown = json.loads(plots_json)
    assert not [
        e for e in shown["errors"] if e["name"] != "FID over training per optimizer strategy"
    ]
    plots = shown["data"]
    for title, metric in (
        ("FID per direction (candidate, baseline, doing nothing)", "fid"),
        ("Ground-truth MAE per direction (candidate, baseline, doing nothing)", "mae"),
    ):
        (entry,) = plots[title]
        spec = entry["content"]  # Vega-Lite, with the data inline
        assert spec["encoding"]["y"]["field"] == "bar"
        values = spec["data"]["values"]
        labels = [row["bar"] for row in values]
        assert len(labels) == len(set(labels)) >= 4, labels  # a2b/b2a x candidate/identity
        assert {row["model"] for row in values} >= {"candidate", "identity"}
        assert all(isinstance(row[metric], float | int) for row in values)


def _tiny_params(params: dict) -> dict:
    params["preprocess"].update(image_size=32, num_shards=1)
    params["model"].update(
        generator_filters=4, generator_blocks=1, discriminator_filters=4, unet_downsamplings=5
    )
    params["train"].update(batch_size=2, epochs=1)
    # This test is about DVC mechanics: a gate no model fails, so the run always pushes.
    params["evaluate"]["gate"].update(
        fid_gap_closed_min=-1.0e9,
        fid_vs_identity_max=1.0e9,
        mae_vs_identity_max=1.0e9,
        mae_vs_colour_transfer_max=1.0e9,
        fid_vs_colour_transfer_max=1.0e9,
    )
    return params


@pytest.mark.slow
def test_dvc_repro_runs_the_pipeline_and_a_second_repro_does_nothing(tmp_path):
    repo = _git_dvc_repo(tmp_path / "project")
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO_ROOT / name, repo / name)
    for package in ("cyclegan_tfx", "components", "pipeline"):
        shutil.copytree(
            REPO_ROOT / package, repo / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    params = _tiny_params(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    make_sample_dataset(
        repo / "data",
        seed=0,
        crop_size=40,
        counts={"trainA": 6, "trainB": 5, "testA": 4, "testB": 4},
    )
    _run([DVC, "add", "-q", "data"], repo)

    first = _run([DVC, "repro"], repo)
    assert "Running stage 'preprocess'" in first.stdout
    assert "Running stage 'pipeline'" in first.stdout
    serving = repo / "serving" / params["pipeline"]["name"]
    assert any((version / "saved_model.pb").is_file() for version in serving.iterdir())

    second = _run([DVC, "repro"], repo)
    assert "Running stage" not in second.stdout
    assert "didn't change, skipping" in second.stdout
    assert "up to date" in _run([DVC, "status"], repo).stdout

    metrics = _run([DVC, "metrics", "show", "--json"], repo).stdout
    assert "fid_a2b" in metrics and "mae_a2b" in metrics and "examples_total" in metrics
    _run([DVC, "plots", "show", "-o", str(tmp_path / "plots")], repo)
    assert (tmp_path / "plots" / "index.html").is_file()
    _check_bar_plots(_run([DVC, "plots", "show", "--json"], repo).stdout)

    # The model is a DVC artifact: pushed to a remote and fetched back with `dvc artifacts get`.
    _run([DVC, "remote", "add", "-d", "store", str(tmp_path / "remote")], repo)
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-qm", "pipeline run"], repo)
    _run([DVC, "push", "-q"], repo)
    # `dvc artifacts get` finds versions by their GTO tags: promoting with --tag creates them.
    (version,) = [p.name for p in serving.iterdir() if (p / "saved_model.pb").is_file()]
    promote = ["models", "promote", version, "--to", "production", "--tag"]
    _run([str(BIN / "cyclegan-tfx"), *promote], repo)
    fetched = tmp_path / "fetched"
    _run(
        [DVC, "artifacts", "get", str(repo), "cyclegan", "--stage", "prod", "-o", str(fetched)],
        tmp_path,
    )
    assert (fetched / "saved_model.pb").is_file()
    assert (fetched / "assets.extra" / "cyclegan_tfx.json").is_file()

    # An experiment with another optimizer strategy, queued: DVC runs it in a copy without
    # build/tfx (an untracked output), where it re-runs only the pipeline stage. It is gated
    # against the workspace's blessed model, read from a snapshot of the workspace's ML
    # Metadata (pipeline/experiment_copy.py), and its gate report says so.
    store = repo / params["paths"]["pipeline_root"] / "metadata.sqlite"
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    queue = [DVC, "exp", "run", "--queue", "-n", "queued", "-S", "train.optimizer.strategy=joint"]
    _run(queue, repo)
    _run([DVC, "queue", "start"], repo)
    status = _wait_for_queue(repo, "queued")
    log = _run([DVC, "queue", "logs", "queued"], repo).stdout
    assert "Success" in status, status + log
    assert "Running stage 'pipeline'" in log and "Running stage 'preprocess'" not in log, log
    shown = _run([DVC, "exp", "show", "--json"], repo).stdout
    assert '"joint"' in shown
    revision = existing(DVC, repo)["queued"]

    def committed(path: str) -> dict:  # a file of the experiment's commit
        return json.loads(_run(["git", "show", f"{revision}:{path}"], repo).stdout)

    summary = committed(f"{params['paths']['metrics']}/evaluation.json")
    assert summary["baseline_applied"] is True and summary["baseline"] is not None
    gate = committed("reports/gate.json")
    baseline = Path(gate["baseline_model_uri"]).resolve()
    assert gate["baseline_applied"] and baseline.is_relative_to(store.parent.resolve()), gate
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before  # the workspace's: read only


def _wait_for_queue(repo: Path, name: str, timeout: float = 900) -> str:
    """`dvc queue status` once the task `name` has finished (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        status = _run([DVC, "queue", "status"], repo).stdout
        line = next((row for row in status.splitlines() if f" {name} " in f" {row} "), "")
        if any(word in line for word in ("Success", "Failed")) or time.monotonic() > deadline:
            return status
        time.sleep(5)

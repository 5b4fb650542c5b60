"""The DVCLive training curves: one row per step, resumable, linear in the number of steps."""

import subprocess
import sys
from pathlib import Path

from cyclegan_tfx.model.training_log import TrainingLog, curve_files

NETWORKS = ("generator_ab", "discriminator_a")


def _log(live, steps):
    for step in steps:
        live.log(step, {n: step * 0.1 for n in NETWORKS}, {n: 1e-4 for n in NETWORKS})


def _steps(path):
    return [int(row.split("\t")[0]) for row in path.read_text().splitlines()[1:]]


def test_a_resumed_log_keeps_each_step_once(tmp_path):
    live = TrainingLog(tmp_path / "live", resume_step=None)
    _log(live, range(1, 8))  # a crash after step 7; the last checkpoint was at step 5
    resumed = TrainingLog(tmp_path / "live", resume_step=5)
    _log(resumed, range(6, 11))
    resumed.close(copy_to=tmp_path / "run" / "dvclive")
    files = curve_files(tmp_path / "run" / "dvclive")
    assert {f.parent.name for f in files} == {"loss", "lr"} and len(files) == 4
    for path in files:
        assert _steps(path) == list(range(1, 11))
    loss = (tmp_path / "run/dvclive/plots/metrics/loss/generator_ab.tsv").read_text()
    assert loss.splitlines()[0] == "step\tgenerator_ab" and loss.splitlines()[-1] == "10\t1.0"


def test_a_fresh_run_starts_new_curves(tmp_path):
    _log(TrainingLog(tmp_path / "live", resume_step=None), range(1, 4))
    _log(TrainingLog(tmp_path / "live", resume_step=None), range(1, 3))
    for path in curve_files(tmp_path / "live"):
        assert _steps(path) == [1, 2]


def test_logs_in_a_git_repository_without_commits(tmp_path, monkeypatch):
    # `git init`, `dvc init`, `dvc repro` before the first commit: DVCLive alone fails there
    # ("Empty git repo"); the curves must still be written.
    bin_dir = Path(sys.executable).parent
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([str(bin_dir / "dvc"), "init", "-q"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    log = TrainingLog(tmp_path / "live", resume_step=None)
    log.log(1, {"generator_ab": 1.0}, {"generator_ab": 0.1})
    log.close()
    (curve,) = [p for p in curve_files(tmp_path / "live") if p.match("loss/generator_ab.tsv")]
    assert curve.read_text().splitlines() == ["step\tgenerator_ab", "1\t1.0"]

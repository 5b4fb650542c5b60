"""One local run per pipeline root: a second one is refused at once, naming the holder.

Holders are real processes (a second Python process holding the lock, or a real run of the
pipeline), since `flock` is per open file and a lock taken in this process would not show it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import CLI, QUIET_ENV, REPO_ROOT, e2e_config, run_cli, write_e2e_dataset, write_params

from cyclegan_tfx.mlmd import find_run, open_store, run_executions
from pipeline.run_lock import LOCK_FILE, PipelineRootBusyError, hold_pipeline_root

HOLDER = (
    "import sys, time; from pathlib import Path; from pipeline.run_lock import hold_pipeline_root\n"
    "with hold_pipeline_root(Path(sys.argv[1])):\n"
    "    print('held', flush=True); time.sleep(120)\n"
)


@pytest.fixture
def holder(tmp_path):
    """A second process holding the lock of tmp_path/tfx; yields (process, pipeline root)."""
    root = tmp_path / "tfx"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "held"
    yield process, root
    process.kill()
    process.wait()


def test_a_second_run_of_the_same_pipeline_root_is_refused_naming_the_holder(holder):
    process, root = holder
    with pytest.raises(PipelineRootBusyError) as refused, hold_pipeline_root(root):
        pytest.fail("the lock was taken twice")
    message = str(refused.value)
    assert f"process {process.pid} " in message and "-c" in message  # who holds it
    assert "dvc exp run --temp" in message and "pipeline_root" in message  # what to do instead


def test_another_pipeline_root_is_not_blocked(holder, tmp_path):
    with hold_pipeline_root(tmp_path / "other"):
        pass


def test_the_lock_goes_with_its_holder_even_when_killed(holder):
    process, root = holder
    process.send_signal(signal.SIGKILL)
    process.wait()
    with hold_pipeline_root(root):
        holder_file = json.loads((root / LOCK_FILE).read_text())
        assert holder_file["pid"] == os.getpid()
    assert (root / LOCK_FILE).read_text() == ""  # released: no holder named


def test_the_cli_refuses_at_once_with_a_clear_message(holder, tmp_path):
    process, root = holder
    config = e2e_config(tmp_path, epochs=0.0)
    config = config.replace(paths=dataclasses.replace(config.paths, pipeline_root=str(root)))
    params = write_params(config, tmp_path / "params.yaml")
    refused = run_cli("run", "--params", str(params), timeout=300)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    # The user's command, as dvc.yaml runs it: one line, what and why.
    assert refused.stderr.strip().startswith("error: the pipeline root"), refused.stderr
    assert f"process {process.pid} " in refused.stderr
    assert not (root / "metadata.sqlite").exists()  # refused before anything ran


@pytest.mark.slow
def test_two_runs_started_together_one_runs_and_reports_itself(tmp_path):
    write_e2e_dataset(tmp_path)
    config = e2e_config(tmp_path, epochs=1.0)
    params = write_params(config, tmp_path / "params.yaml")
    command = [*CLI, "run", "--params", str(params)]
    runs = [
        subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=QUIET_ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=900) for run in runs]
    codes = sorted(run.returncode for run in runs)
    assert codes == [0, 1], outputs
    (_, ran_err), (refused_out, refused_err) = sorted(
        outputs, key=lambda out: "is in use by another run" in out[1]
    )
    assert "Traceback" not in ran_err + refused_err
    assert "is in use by another run" in refused_err and not refused_out
    # The run that ran is the one run in ML Metadata, and every report names it.
    store = open_store(config.paths.metadata_path)
    run = find_run(store, config.pipeline.name)
    assert len(store.get_contexts_by_type("pipeline_run")) == 1
    assert (
        run_executions(config.paths.metadata_path, config.pipeline.name, run.name)["Trainer"]
        == "COMPLETE"
    )
    summary = json.loads((config.paths.resolve("metrics") / "evaluation.json").read_text())
    gate = json.loads((config.paths.resolve("reports") / "gate.json").read_text())
    assert summary["pipeline_run_id"] == gate["pipeline_run_id"] == run.name
    explained = run_cli("explain-gate", "--params", str(params))
    assert explained.returncode == 0 and f"Gate of pipeline run {run.name}" in explained.stdout

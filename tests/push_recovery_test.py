"""A run killed between the Pusher and the registry record is repaired by the next run.

The first run is a real `cyclegan-tfx run` whose process is SIGKILLed when the pipeline reaches
its PushRecorder (the Pusher has pushed and ML Metadata has its output): the version is served
but unknown to the registry. The next, ordinary run is a cache hit all the way through the
Pusher; its PushRecorder, which never completed, runs and registers that version, once;
nothing is pushed twice.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUIET_ENV, REPO_ROOT, e2e_config, run_cli, write_e2e_dataset, write_params

from cyclegan_tfx.mlmd import run_executions
from cyclegan_tfx.registry.record import model_registry

pytestmark = pytest.mark.slow

KILLED_AFTER_PUSH = (
    "import os, signal, sys\n"
    "from components import push_recorder\n"
    "from pipeline import local_runner\n"
    "def die(*args, **kwargs):\n"
    "    os.kill(os.getpid(), signal.SIGKILL)\n"
    "push_recorder.Executor.Do = die\n"
    "local_runner.main(['--params', sys.argv[1]])\n"
)


def test_a_kill_between_push_and_record_is_repaired_by_the_next_run(tmp_path):
    write_e2e_dataset(tmp_path)
    config = e2e_config(tmp_path, epochs=40.0)
    params = write_params(config, tmp_path / "params.yaml")
    registry = model_registry(config)

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_PUSH, str(params)],
        cwd=REPO_ROOT,
        env=QUIET_ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    pushed = registry.versions()
    assert len(pushed) == 1, "the killed run had pushed its model"
    assert registry.entry(pushed[0]) is None, "and died before recording it"

    rerun = run_cli("run", "--params", str(params))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    states = run_executions(config.paths.metadata_path, config.pipeline.name)
    assert states["Trainer"] == states["Evaluator"] == states["Pusher"] == "CACHED", states
    assert states["PushRecorder"] == "COMPLETE", states
    assert registry.versions() == pushed  # nothing pushed twice
    entry = registry.entry(pushed[0])
    assert entry is not None and entry["pipeline_run"]  # registered, with its lineage
    assert f"registered version {pushed[0]}" in rerun.stdout
    registered = json.loads((Path(config.serving_dir()) / "registry.json").read_text())
    assert list(registered["versions"]) == pushed  # once

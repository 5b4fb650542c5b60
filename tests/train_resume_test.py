"""Resumable training (slow lane).

A SIGKILLed run resumes from its last checkpoint and ends with exactly the weights of an
uninterrupted run (tolerance: bit-identical, compared by a SHA-256 of every
weight), and a kill while a checkpoint is being written never damages the last good one.
"""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf
from conftest import REPO_ROOT, synthetic_images, tiny_config, write_examples

from cyclegan_tfx.model.checkpoints import COMMIT_MARKER
from cyclegan_tfx.model.train import RunFolders, train_and_export

pytestmark = pytest.mark.slow

STEPS_PER_EPOCH = 8  # 16 A images, batch 2
EPOCHS = 2.0

# Runs one training in a fresh process; with "kill_after_step" or "kill_at_commit" the process
# SIGKILLs itself at that point (mid-epoch / between writing and committing a checkpoint).
_WORKER = """
import json, logging, os, signal, sys
sys.path.insert(0, {tests!r})
logging.basicConfig(level=logging.INFO)
from pathlib import Path
from conftest import tiny_config
from cyclegan_tfx.model.train import RunFolders, train_and_export
args = json.loads(sys.argv[1])
config = tiny_config(Path(args["root"]), epochs=args["epochs"], checkpoint_every_steps=2)

def on_step(done, model):
    if done == args.get("kill_after_step"):
        os.kill(os.getpid(), signal.SIGKILL)

def before_commit(folder):
    if Path(folder).name == "step-%d" % args.get("kill_at_commit", -1):
        data = next(Path(folder).glob("state.data-*"))
        data.write_bytes(data.read_bytes()[: 10])  # a half-written file
        os.kill(os.getpid(), signal.SIGKILL)

result = train_and_export(
    [args["records"]], config.model, config.train, 16, config.seed,
    RunFolders.choose(args["run_dir"], args["checkpoints"]), args["export_dir"],
    on_step=on_step, before_checkpoint_commit=before_commit,
)
print("FINGERPRINT", result.weights_fingerprint)
"""


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    return write_examples(
        root / "train.tfrecord",
        {"A": synthetic_images(16, 16, "A", 0), "B": synthetic_images(10, 16, "B", 1)},
    )


@pytest.fixture(scope="module")
def uninterrupted(records, tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    config = tiny_config(root, epochs=EPOCHS, checkpoint_every_steps=2)
    result = train_and_export(
        [str(records)],
        config.model,
        config.train,
        16,
        config.seed,
        RunFolders.choose(root / "run"),
        root / "export",
    )
    assert result.steps == EPOCHS * STEPS_PER_EPOCH
    return result.weights_fingerprint


def _worker(root: Path, records: Path, name: str, **extra) -> subprocess.CompletedProcess:
    args = {
        "root": str(root),
        "records": str(records),
        "epochs": EPOCHS,
        "run_dir": str(root / f"run-{name}"),
        "export_dir": str(root / f"export-{name}"),
        "checkpoints": str(root / "checkpoints"),
        **extra,
    }
    script = _WORKER.format(tests=str(REPO_ROOT / "tests"))
    return subprocess.run(
        [sys.executable, "-c", script, json.dumps(args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def _fingerprint(process: subprocess.CompletedProcess) -> str:
    assert process.returncode == 0, process.stderr[-3000:]
    return next(
        line.split()[1] for line in process.stdout.splitlines() if line.startswith("FINGERPRINT")
    )


def test_sigkill_mid_epoch_then_rerun_resumes_to_identical_weights(
    records, uninterrupted, tmp_path
):
    killed = _worker(tmp_path, records, "killed", kill_after_step=5)
    assert killed.returncode == -signal.SIGKILL
    # Two committed checkpoints, and the curves logged so far (DVCLive) beside them.
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["dvclive", "step-2", "step-4"]

    resumed = _worker(tmp_path, records, "resumed")
    assert "resuming at step 4 of 16" in resumed.stderr
    assert _fingerprint(resumed) == uninterrupted
    # The curves (DVCLive) keep the steps before the kill, and the steps logged between the
    # last checkpoint (4) and the kill (5) appear once, from the resumed run.
    curves = tmp_path / "run-resumed" / "dvclive" / "plots" / "metrics"
    for path in (curves / "loss" / "generator_ab.tsv", curves / "lr" / "discriminator_b.tsv"):
        rows = path.read_text().splitlines()
        assert [row.split("\t")[0] for row in rows[1:]] == [str(s) for s in range(1, 17)]
    assert not (tmp_path / "checkpoints").exists()  # removed after a successful export


def test_kill_while_writing_a_checkpoint_keeps_the_last_good_one(records, uninterrupted, tmp_path):
    killed = _worker(tmp_path, records, "killed", kill_at_commit=6)
    assert killed.returncode == -signal.SIGKILL
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["dvclive", "step-2", "step-4", "step-6"]
    # The broken one never committed.
    assert not (tmp_path / "checkpoints" / "step-6" / COMMIT_MARKER).exists()
    assert (tmp_path / "checkpoints" / "step-4" / COMMIT_MARKER).exists()

    resumed = _worker(tmp_path, records, "resumed")
    assert "deleting the uncommitted checkpoint" in resumed.stderr
    assert "resuming at step 4 of 16" in resumed.stderr
    assert _fingerprint(resumed) == uninterrupted


def test_restart_ignores_existing_checkpoints(records, uninterrupted, tmp_path):
    killed = _worker(tmp_path, records, "killed", kill_after_step=3)
    assert killed.returncode == -signal.SIGKILL
    config = tiny_config(tmp_path, epochs=EPOCHS, checkpoint_every_steps=2, restart=True)
    result = train_and_export(
        [str(records)],
        config.model,
        config.train,
        16,
        config.seed,
        RunFolders.choose(tmp_path / "run", tmp_path / "checkpoints"),
        tmp_path / "export",
        on_step=lambda done, model: None,
    )
    assert result.weights_fingerprint == uninterrupted


# --- a non-local filesystem ------------------------------------------------------------------
# TensorFlow's in-memory `ram://` filesystem goes through the same tf.io.gfile layer as gs://,
# s3:// and hdfs:// (no folder rename, no local paths), and works offline. It lives in this
# process, so an interruption here is an exception rather than a SIGKILL (those are above).


class _InterruptedError(Exception):
    pass


def _train_on_ram(records, root, tag, **hooks):
    config = tiny_config(root, epochs=EPOCHS, checkpoint_every_steps=2)
    return train_and_export(
        [str(records)],
        config.model,
        config.train,
        16,
        config.seed,
        RunFolders.choose(f"ram://{tag}/run", f"ram://{tag}/checkpoints"),
        root / "export",
        **hooks,
    )


def _raise_at(step):
    def hook(done, model):
        if done == step:
            raise _InterruptedError

    return hook


def test_resume_from_checkpoints_on_a_remote_filesystem(records, uninterrupted, tmp_path):
    tag = "resume-remote"
    with pytest.raises(_InterruptedError):
        _train_on_ram(records, tmp_path, tag, on_step=_raise_at(5))
    assert sorted(tf.io.gfile.listdir(f"ram://{tag}/checkpoints")) == ["step-2", "step-4"]

    def interrupted_save(folder):
        if folder.endswith("step-6"):
            raise _InterruptedError  # files written, marker not yet

    with pytest.raises(_InterruptedError):
        _train_on_ram(records, tmp_path, tag, before_checkpoint_commit=interrupted_save)
    assert sorted(tf.io.gfile.listdir(f"ram://{tag}/checkpoints")) == ["step-2", "step-4", "step-6"]

    result = _train_on_ram(records, tmp_path, tag)
    assert result.weights_fingerprint == uninterrupted
    # Removed after the export (`exists` is no test: ram:// reports deleted folders as present).
    assert tf.io.gfile.glob(f"ram://{tag}/checkpoints/*/*") == []
    # The run's files are on the remote filesystem, the curves complete: the steps logged
    # before each interruption come from the checkpoint, each step once.
    curve = f"ram://{tag}/run/dvclive/plots/metrics/loss/generator_ab.tsv"
    with tf.io.gfile.GFile(curve) as f:
        rows = f.read().splitlines()
    assert [row.split("\t")[0] for row in rows[1:]] == [str(s) for s in range(1, 17)]
    assert tf.io.gfile.exists(f"ram://{tag}/run/samples.png")

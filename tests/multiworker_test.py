"""Training on several replicas trains like one device at the same global batch (slow).

Two workers (MultiWorkerMirroredStrategy) over a real local cluster: each worker is its
own process with its own `TF_CONFIG`, talking gRPC over 127.0.0.1, as on Kubeflow's TFJob or
Vertex AI worker pools (only the hosts differ).

Tolerance. Two workers with a global batch of 4 must train like one process with that batch.
Only the all-reduce's summation order differs, and Adam's first updates are about
lr * sign(gradient), so the rare near-zero gradient whose sign flips moves its weight by up
to 2 * lr; every other weight agrees to float rounding. Measured after four steps (43,552
weights): mean |difference| 4e-8, 0.07 % of weights off by more than 1e-5. Bounds: mean
< 1e-6 and at most 1 % of weights off by more than 1e-5. Without the gradient averaging each
worker would train on its own half batch: mean 9e-5 and 34 % off; the test runs that
counterfactual too and checks that it fails the same bounds, so the bounds can fail.
The same bounds hold for MirroredStrategy over two devices of one machine (the CPU split in
two logical devices: no machine here has several GPUs).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT, synthetic_images, write_examples

from cyclegan_tfx.model.distribution import (
    ClusterConfigError,
    cluster_of,
    is_chief_task,
    select_distribution,
)

_PROCESS = REPO_ROOT / "tests" / "multiworker_process.py"
MEAN_BOUND = 1e-6
OFF_BY = 1e-5
OFF_FRACTION_BOUND = 0.01


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start(args: dict, tf_config: dict | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen(
        [sys.executable, str(_PROCESS), json.dumps(args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _cluster(args_per_worker: list[dict]) -> list[subprocess.Popen]:
    hosts = [f"127.0.0.1:{port}" for port in _free_ports(len(args_per_worker))]
    return [
        _start(args, {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})
        for index, args in enumerate(args_per_worker)
    ]


def _finish(processes: list[subprocess.Popen], expect: int = 0) -> list[str]:
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == expect, stderr[-4000:]
        outputs.append(stdout)
    return outputs


def _differences(a: Path, b: Path) -> np.ndarray:
    with np.load(a) as left, np.load(b) as right:
        assert sorted(left.files) == sorted(right.files)
        return np.concatenate([np.abs(left[k] - right[k]).ravel() for k in left.files])


def _within_bounds(differences: np.ndarray) -> bool:
    return (
        float(differences.mean()) < MEAN_BOUND
        and float((differences > OFF_BY).mean()) <= OFF_FRACTION_BOUND
    )


@pytest.mark.slow
def test_two_workers_train_like_one_process_at_the_same_global_batch(tmp_path):
    workers = _cluster(
        [{"job": "steps", "out": str(tmp_path / f"worker{i}.npz")} for i in range(2)]
    )
    # The one-process references run beside the cluster (2 cores: about a minute in all).
    single = _start({"job": "steps", "out": str(tmp_path / "single.npz")})
    outputs = _finish(workers)
    alone = _start({"job": "steps", "out": str(tmp_path / "half.npz"), "half_batch": True})
    _finish([single, alone])
    assert all("REPLICAS 2" in out for out in outputs), outputs

    # The workers hold the same weights, bit for bit (mirrored variables, one update).
    assert _differences(tmp_path / "worker0.npz", tmp_path / "worker1.npz").max() == 0.0
    two_workers = _differences(tmp_path / "worker0.npz", tmp_path / "single.npz")
    assert _within_bounds(two_workers), (two_workers.mean(), (two_workers > OFF_BY).mean())
    # The bounds can fail: training without averaging the workers' gradients misses them.
    unaveraged = _differences(tmp_path / "half.npz", tmp_path / "single.npz")
    assert not _within_bounds(unaveraged), (unaveraged.mean(), (unaveraged > OFF_BY).mean())


@pytest.mark.slow
def test_two_devices_train_like_one_process_at_the_same_global_batch(tmp_path):
    mirrored = _start({"job": "steps", "out": str(tmp_path / "mirrored.npz"), "devices": 2})
    single = _start({"job": "steps", "out": str(tmp_path / "single.npz")})
    outputs = _finish([mirrored, single])
    assert "REPLICAS 2" in outputs[0], outputs
    two_devices = _differences(tmp_path / "mirrored.npz", tmp_path / "single.npz")
    assert _within_bounds(two_devices), (two_devices.mean(), (two_devices > OFF_BY).mean())


@pytest.mark.slow
def test_only_the_chief_writes_and_a_resumed_cluster_continues_from_its_checkpoints(tmp_path):
    records = write_examples(
        tmp_path / "train.tfrecord",
        {"A": synthetic_images(8, 16, "A", 0), "B": synthetic_images(6, 16, "B", 1)},
    )

    def run(stop_at=None, expect=0):
        shared = {
            "job": "train",
            "root": str(tmp_path),
            "records": str(records),
            "run_dir": str(tmp_path / "run"),  # TFX gives every worker the same output URIs
            "export_dir": str(tmp_path / "export"),
            "checkpoints": str(tmp_path / "checkpoints"),
        }
        if stop_at is not None:
            shared["stop_at"] = stop_at
        return _finish(_cluster([shared, shared]), expect=expect)

    # Interrupted after step 3 of 8: the chief committed step 2; no export yet.
    run(stop_at=3, expect=3)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if "step" in p.name) == [
        "step-2"
    ]
    assert not (tmp_path / "export").exists()

    outputs = run()
    results = [json.loads(out.split("RESULT ", 1)[1]) for out in outputs]
    assert [r["chief"] for r in results] == [True, False]
    # Both resumed from the chief's checkpoint and stayed in step (same weights).
    assert results[0]["weights"] == results[1]["weights"]
    assert (tmp_path / "export" / "saved_model.pb").exists()
    assert (tmp_path / "run" / "samples.png").exists()
    assert not (tmp_path / "checkpoints").exists() or not any(
        p.name.startswith("step-") for p in (tmp_path / "checkpoints").iterdir()
    )


def test_tf_config_decides_the_strategy():
    worker = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    assert cluster_of({"TF_CONFIG": json.dumps(worker)})["task"] == {"type": "worker", "index": 1}
    one = {"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}
    assert cluster_of({"TF_CONFIG": json.dumps(one)}) is None
    assert cluster_of({}) is None
    with pytest.raises(ClusterConfigError, match="not a TensorFlow cluster description"):
        cluster_of({"TF_CONFIG": "{not json"})
    with pytest.raises(ClusterConfigError, match="not a TensorFlow cluster description"):
        cluster_of({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1", "b:2"]}})})
    # No TF_CONFIG, one CPU: the default strategy.
    assert select_distribution({}) is tf.distribute.get_strategy()


def test_the_chief_is_the_chief_task_or_worker_zero():
    assert is_chief_task("chief", 0, {"chief": ["a:1"], "worker": ["b:1"]})
    assert not is_chief_task("worker", 0, {"chief": ["a:1"], "worker": ["b:1"]})
    assert is_chief_task("worker", 0, {"worker": ["a:1", "b:1"]})
    assert not is_chief_task("worker", 1, {"worker": ["a:1", "b:1"]})
    assert is_chief_task(None, None, {})


def test_joining_a_cluster_after_tensorflow_started_is_a_clear_error():
    # This pytest process has long since run TensorFlow operations, as a Trainer that set
    # TF_CONFIG too late would have.
    hosts = ["127.0.0.1:1", "127.0.0.1:2"]
    worker = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": 0}}
    tf.constant(1.0).numpy()
    with pytest.raises(ClusterConfigError, match="start training in a fresh process"):
        select_distribution({"TF_CONFIG": json.dumps(worker)})

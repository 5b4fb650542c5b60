"""`make bench-scale`'s preprocessing and Evaluator parts run end to end (tiny sizes).

The figures themselves are for `bench/scale.py` to print; this checks that every part a user
runs still works and writes what the README's "How cost grows" section quotes.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def test_bench_scale_runs_and_writes_its_figures(tmp_path):
    out = tmp_path / "figures.json"
    # The training part (minutes: the paper network's step is profiled) is left out; the loop's
    # and the step's speed have their own benchmark (`make bench-loop`).
    command = [sys.executable, "bench/scale.py", "--sizes", "8", "16"]
    command += ["--skip", "memory", "train", "--backbones", "fallback", "--json", str(out)]
    finished = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert finished.returncode == 0, finished.stderr[-3000:]
    figures = json.loads(out.read_text())
    runners = {row["runner"] for row in figures["preprocess"]}
    assert len(runners) >= 2  # the embedded runner and the dask.distributed cluster
    assert all(row["images_per_second"] > 0 for row in figures["preprocess"])
    assert {row["test_images"] for row in figures["evaluate"]} == {4, 8}
    assert all(row["seconds"] > 0 for row in figures["evaluate"])
    assert "Preprocessing" in finished.stdout and "Evaluator metric" in finished.stdout

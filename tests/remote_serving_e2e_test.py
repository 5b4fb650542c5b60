"""End-to-end: the serving folder and the registry on a non-local TensorFlow filesystem.

The filesystem is `ram://`, TensorFlow's in-memory one: a real `tf.io.gfile` filesystem that
works offline, and like an object store it has no symlinks and nothing outside TensorFlow can
see it. (No GCS or S3 emulator on 127.0.0.1 was used: TensorFlow 2.16 has only gs:// built in,
and S3 needs tensorflow-io, which is not in the lock.) Being in-memory, it lives as long as
this process, so the pipeline runs in-process under LocalDagRunner, as `cyclegan-tfx run` does,
and the `models` and `translate` commands are called in-process too.

The runs share one pipeline root:
1. a trained candidate: blessed, pushed into ram://.../serving/<name>/<version>, registered
   there with its own pipeline run id; nothing is written to a local serving folder;
2. the same run again: cached through the PushRecorder, nothing new registered (registry.json's
   content and revision unchanged);
3. a retrained candidate (another seed): pushed and registered as the second version;
then promote, promote, rollback with `models --serving ram://...` write models.config there,
and `translate --model ram://.../production` follows the registry.
"""

import dataclasses
import json
import uuid

import pytest
import tensorflow as tf
from conftest import REPO_ROOT, push_lane_config, synthetic_images, write_e2e_dataset
from PIL import Image

from cyclegan_tfx import translate
from cyclegan_tfx.mlmd import run_executions
from cyclegan_tfx.registry import cli as models
from cyclegan_tfx.registry import tfserving
from cyclegan_tfx.registry.store import ModelRegistry
from pipeline.local_runner import run_and_report

pytestmark = pytest.mark.slow

EPOCHS = 40.0
SERVING = f"ram://{uuid.uuid4().hex}/serving"  # unique within the process's ram:// filesystem


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("remote")
    write_e2e_dataset(root)
    (root / "data.dvc").write_bytes((REPO_ROOT / "data.dvc").read_bytes())
    return root


def _config(root, seed=42):
    config = push_lane_config(root, EPOCHS)
    return config.replace(paths=dataclasses.replace(config.paths, serving=SERVING), seed=seed)


def _registry(config):
    return ModelRegistry(config.serving_dir(), config.pipeline.name)


def _read(path):
    with tf.io.gfile.GFile(path) as handle:
        return handle.read()


@pytest.fixture(scope="module")
def runs(workspace):
    config = _config(workspace)
    first = run_and_report(config)
    after_first = _read(_registry(config).registry_path)
    recorded_first = run_executions(config.paths.metadata_path, config.pipeline.name)
    again = run_and_report(config)
    after_again = _read(_registry(config).registry_path)
    recorded_again = run_executions(config.paths.metadata_path, config.pipeline.name)
    retrained = run_and_report(_config(workspace, seed=7))
    states = (recorded_first["PushRecorder"], recorded_again["PushRecorder"])
    return config, first, (after_first, after_again), again, retrained, states


def test_a_blessed_run_is_registered_on_the_remote_filesystem(runs, workspace):
    config, first, *_, (recorder_state, _) = runs
    assert recorder_state == "COMPLETE"  # registered inside the pipeline, by its PushRecorder
    assert config.serving_dir().startswith("ram://")
    assert first.report.blessed and first.push is not None and not first.push.already_pushed
    registry = _registry(config)
    assert registry.versions()[0] == first.push.version  # (the retrained run pushed the 2nd)
    entry = registry.entry(first.push.version)
    assert entry["semver"] == "v0.0.1" and entry["pipeline_run"] == first.run_id
    assert tf.io.gfile.exists(f"{registry.version_path(first.push.version)}/saved_model.pb")
    assert not (workspace / "serving").exists()  # nothing went to a local serving folder
    assert (workspace / "model" / "saved_model.pb").is_file()  # the DVC copy is local


def test_an_identical_rerun_registers_nothing_new(runs):
    _, first, (after_first, after_again), again, _, (_, recorder_state) = runs
    assert recorder_state == "CACHED"
    assert again.push is not None and again.push.already_pushed
    assert again.push.version == first.push.version
    assert again.run_id != first.run_id
    assert after_again == after_first  # not even rewritten
    assert json.loads(after_first)["revision"] == 1  # one write: the first record


def test_promote_and_rollback_write_models_config_on_the_remote_filesystem(runs, capsys):
    config, first, _, _, retrained, _ = runs
    assert retrained.push is not None and not retrained.push.already_pushed
    one, two = first.push.version, retrained.push.version
    base = config.serving_dir()
    registry = _registry(config)
    assert [registry.entry(v)["semver"] for v in (one, two)] == ["v0.0.1", "v0.0.2"]

    def cli(*args):
        return models.main([*args, "--params", str(REPO_ROOT / "params.yaml"), "--serving", base])

    assert cli("list") == 0
    listing = capsys.readouterr().out
    assert one in listing and two in listing
    assert cli("promote", one, "--to", "production") == 0
    assert cli("promote", "v0.0.2", "--to", "production") == 0
    served = tfserving.parse_models_config(_read(registry.models_config_path))
    model = served.model_config_list.config[0]
    assert model.base_path == base  # TF Serving reads the URI itself
    assert dict(model.version_labels) == {"production": int(two)}
    assert sorted(model.model_version_policy.specific.versions) == sorted([int(one), int(two)])
    assert cli("rollback") == 0
    assert "(rollback)" in capsys.readouterr().out
    served = tfserving.parse_models_config(_read(registry.models_config_path))
    assert dict(served.model_config_list.config[0].version_labels) == {"production": int(one)}
    assert registry.stage_version() == one
    assert not tf.io.gfile.exists(f"{base}/production")  # the pointer is the registry, no link


def test_translate_follows_the_registry_to_the_production_version(runs, tmp_path, capsys):
    config, first, *_ = runs
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    Image.fromarray(synthetic_images(1, 16, "A", 3)[0]).save(in_dir / "one.png")
    production = f"{config.serving_dir()}/production"
    _registry(config).promote(first.push.version)  # (already there after the rollback test)
    status = translate.main(
        ["--model", production, "--direction", "a2b", str(in_dir), str(tmp_path / "out")]
    )
    assert status == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "one.png").is_file()

"""Model registry: records, atomic production pointer, TF Serving config, promotion history,
rollback, GTO git tags (read back with `gto show`), provenance and the registry CLI.

Fast: fake version folders in temp dirs, no training. The end-to-end lane
(pipeline_e2e_test.py) runs the same commands on models pushed by real pipeline runs.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml
from conftest import FAKE_VERSIONS, REPO_ROOT, make_fake_versions, tiny_config

from cyclegan_tfx.config import load_config
from cyclegan_tfx.registry import cli as models
from cyclegan_tfx.registry import files, provenance, record
from cyclegan_tfx.registry.store import (
    ConcurrentWriteError,
    ModelRegistry,
    RegistryError,
    resolve_model_path,
    stage_stack,
)
from cyclegan_tfx.registry.tags import GtoTagger, TagError
from pipeline import local_runner

VERSIONS = FAKE_VERSIONS


@pytest.fixture
def registry(fake_registry):
    return fake_registry


@pytest.fixture
def project(tmp_path):
    """A project folder: params.yaml (serving/ under it) and three fake pushed versions."""
    shutil.copy(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    make_fake_versions(tmp_path / "serving" / "cyclegan")
    return tmp_path


def _cli(project, *args):
    return models.main([*args[:1], "--params", str(project / "params.yaml"), *args[1:]])


def _production(registry):
    """The production version as registry.json and models.config say (they must agree)."""
    base = Path(registry.model_dir)
    assert not (base / "production").is_symlink()  # no symlinks: object stores have none
    version = registry.stage_version()
    config = base / "models.config"
    if version is not None:
        assert f'key: "production"\n      value: {version}' in config.read_text()
    return version


def test_versions_are_numeric_folders_only(registry):
    (Path(registry.model_dir) / "notes").mkdir()
    (Path(registry.model_dir) / "12.tmp").mkdir()
    assert registry.versions() == list(VERSIONS)


def test_record_assigns_registry_versions_in_push_order_and_is_idempotent(registry):
    first = registry.record(VERSIONS[0], {"params_hash": "sha256:a"})
    second = registry.record(VERSIONS[1], {"params_hash": "sha256:b"})
    assert (first["semver"], second["semver"]) == ("v0.0.1", "v0.0.2")
    again = registry.record(VERSIONS[0], {"params_hash": "sha256:a"})
    assert again["semver"] == "v0.0.1"
    assert again["registered_at"] == first["registered_at"]
    assert set(registry.read()["versions"]) == {VERSIONS[0], VERSIONS[1]}
    assert not [p for p in Path(registry.model_dir).iterdir() if p.name.endswith(".tmp")]


def test_promote_points_production_at_the_version_atomically(registry):
    change = registry.promote(VERSIONS[0])
    assert (change.action, change.version, change.previous) == ("promote", VERSIONS[0], None)
    assert _production(registry) == VERSIONS[0]
    production = resolve_model_path(f"{registry.model_dir}/production")
    assert (Path(production) / "saved_model.pb").read_bytes() == b"fake"
    registry.promote(VERSIONS[1])
    assert _production(registry) == VERSIONS[1]
    config = Path(registry.models_config_path).read_text()
    assert f"versions: {VERSIONS[0]}" in config and f"versions: {VERSIONS[1]}" in config
    assert f'base_path: "{Path(registry.model_dir).resolve()}"' in config
    leftovers = [p.name for p in Path(registry.model_dir).iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_promoting_the_production_version_again_changes_nothing(registry):
    registry.promote(VERSIONS[0])
    events = registry.read()["events"]
    change = registry.promote(VERSIONS[0])
    assert change.action == "unchanged"
    assert registry.read()["events"] == events


def test_rollback_returns_to_the_previously_promoted_version(registry):
    registry.promote(VERSIONS[0])
    registry.promote(VERSIONS[2])
    registry.promote(VERSIONS[1])
    change = registry.rollback()
    assert (change.version, change.previous) == (VERSIONS[2], VERSIONS[1])
    assert _production(registry) == VERSIONS[2]
    assert registry.rollback().version == VERSIONS[0]
    assert _production(registry) == VERSIONS[0]
    with pytest.raises(RegistryError, match=f"nothing to roll back to.*only {VERSIONS[0]}"):
        registry.rollback()
    actions = [(e["action"], e["version"]) for e in registry.read()["events"]]
    assert actions == [
        ("promote", VERSIONS[0]),
        ("promote", VERSIONS[2]),
        ("promote", VERSIONS[1]),
        ("rollback", VERSIONS[2]),
        ("rollback", VERSIONS[0]),
    ]


def test_rollback_with_nothing_promoted_is_an_error(registry):
    with pytest.raises(RegistryError, match="nothing was promoted"):
        registry.rollback()


def test_stage_stack_replays_promotions_and_rollbacks():
    events = [
        {"stage": "production", "action": "promote", "version": "1"},
        {"stage": "production", "action": "promote", "version": "2"},
        {"stage": "production", "action": "promote", "version": "2"},
        {"stage": "production", "action": "rollback", "version": "1"},
        {"stage": "production", "action": "promote", "version": "3"},
    ]
    assert stage_stack(events, "production") == ["1", "3"]


def test_versions_resolve_by_number_semver_or_stage(registry):
    registry.record(VERSIONS[1], {})
    assert registry.resolve("v0.0.1") == VERSIONS[1]
    assert registry.resolve(VERSIONS[2]) == VERSIONS[2]
    registry.promote("v0.0.1")
    assert registry.resolve("production") == VERSIONS[1]


def test_unknown_version_is_an_error_that_lists_the_known_ones(registry):
    registry.promote(VERSIONS[0])
    before = Path(registry.registry_path).read_bytes()
    with pytest.raises(RegistryError, match=r"unknown version '42'.*1700000100, 1700000200"):
        registry.promote("42")
    with pytest.raises(RegistryError, match=r"unknown version 'v9\.9\.9'"):
        registry.resolve("v9.9.9")
    assert Path(registry.registry_path).read_bytes() == before
    assert _production(registry) == VERSIONS[0]


def test_a_version_without_saved_model_cannot_be_promoted(registry):
    (Path(registry.model_dir) / VERSIONS[2] / "saved_model.pb").unlink()
    with pytest.raises(RegistryError, match="has no SavedModel"):
        registry.promote(VERSIONS[2])
    assert _production(registry) is None
    assert not Path(registry.models_config_path).exists()


def test_a_failed_pointer_update_leaves_the_registry_unchanged(registry, monkeypatch):
    registry.promote(VERSIONS[0])
    before = Path(registry.registry_path).read_bytes()

    def failing_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        registry.promote(VERSIONS[1])
    monkeypatch.undo()
    assert Path(registry.registry_path).read_bytes() == before
    assert _production(registry) == VERSIONS[0]


def test_the_symlink_older_registries_kept_is_removed(registry):
    registry.promote(VERSIONS[0])
    os.symlink(VERSIONS[0], Path(registry.model_dir) / "production")
    registry.promote(VERSIONS[1])  # a stale pointer would disagree with registry.json
    assert _production(registry) == VERSIONS[1]


def test_replace_text_replaces_the_whole_file(tmp_path):
    path = tmp_path / "registry.json"
    files.replace_text(str(path), "old")
    files.replace_text(str(path), "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["registry.json"]


def test_a_concurrent_writer_is_detected_and_nothing_is_written(registry, monkeypatch):
    """Where nothing can lock (object stores), a save after this command's read is refused."""
    registry.promote(VERSIONS[0])
    other = ModelRegistry(registry.model_dir, "cyclegan")

    def other_writer_saves_meanwhile(entry, stage, action):  # runs while the promotion does
        other.record(VERSIONS[2], {"by": "the other writer"})
        return []

    monkeypatch.setattr(files, "exclusive", lambda path: contextlib.nullcontext())
    with pytest.raises(ConcurrentWriteError, match=r"changed while this command ran.*run it"):
        registry.promote(VERSIONS[1], tagger=other_writer_saves_meanwhile)
    assert registry.stage_version() == VERSIONS[0]  # the promotion was not written
    assert registry.entry(VERSIONS[2])["by"] == "the other writer"  # nor the other one lost
    assert _production(registry) == VERSIONS[0]  # models.config not rewritten either


def test_stage_paths_resolve_through_the_registry(registry):
    registry.record(VERSIONS[0], {})
    with pytest.raises(RegistryError, match="no version is in production yet"):
        resolve_model_path(f"{registry.model_dir}/production")
    registry.promote(VERSIONS[2])
    assert resolve_model_path(f"{registry.model_dir}/production/") == (
        f"{registry.model_dir}/{VERSIONS[2]}"
    )
    version = f"{registry.model_dir}/{VERSIONS[1]}"
    assert resolve_model_path(version) == version


def test_corrupt_registry_is_a_clear_error(registry):
    Path(registry.registry_path).write_text("{not json")
    with pytest.raises(RegistryError, match=r"not valid JSON.*pushed models are not affected"):
        registry.read()


def test_missing_serving_folder_is_a_clear_error(tmp_path):
    empty = ModelRegistry(tmp_path / "serving" / "cyclegan", "cyclegan")
    assert empty.versions() == []
    with pytest.raises(RegistryError, match="unknown version"):
        empty.promote("1")


# Provenance -------------------------------------------------------------------------------------


def test_data_version_reads_the_md5_of_data_dvc(tmp_path):
    assert provenance.data_version(tmp_path) is None
    shutil.copy(REPO_ROOT / "data.dvc", tmp_path / "data.dvc")
    expected = yaml.safe_load((REPO_ROOT / "data.dvc").read_text())["outs"][0]["md5"]
    assert provenance.data_version(tmp_path)["md5"] == expected
    (tmp_path / "data.dvc").write_text("outs: []\n")
    assert provenance.data_version(tmp_path) is None


def test_params_hash_ignores_the_checkout_location_only(tmp_path):
    one, two = tiny_config(tmp_path / "a"), tiny_config(tmp_path / "b")
    assert provenance.params_hash(one) == provenance.params_hash(two)
    assert provenance.params_hash(one).startswith("sha256:")
    other = tiny_config(tmp_path / "a", epochs=2)
    assert provenance.params_hash(other) != provenance.params_hash(one)


def test_optimizer_strategy_is_read_defensively(tmp_path):
    assert provenance.optimizer_strategy(types.SimpleNamespace()) == "independent"
    nested = types.SimpleNamespace(optimizer=types.SimpleNamespace(strategy="joint"))
    assert provenance.optimizer_strategy(nested) == "joint"
    assert provenance.optimizer_strategy(types.SimpleNamespace(strategy="single")) == "single"
    assert isinstance(provenance.optimizer_strategy(tiny_config(tmp_path).train), str)


def _git(root, *args):
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def git_project(project):
    _git(project, "init", "--quiet")
    _git(project, "config", "user.email", "dev@example.com")
    _git(project, "config", "user.name", "Dev")
    (project / ".gitignore").write_text("serving/\n")
    _git(project, "add", "params.yaml", ".gitignore")
    _git(project, "commit", "--quiet", "-m", "init")
    return project


def test_git_state_records_commit_and_dirtiness(git_project, tmp_path_factory):
    state = provenance.git_state(git_project)
    assert state == {"commit": _git(git_project, "rev-parse", "HEAD"), "dirty": False}
    (git_project / "params.yaml").write_text("seed: 1\n")
    assert provenance.git_state(git_project)["dirty"] is True
    assert provenance.git_state(tmp_path_factory.mktemp("not_a_repo")) is None


def test_what_the_run_writes_is_not_dirt(git_project):
    """On a fresh clone the first `make run` rewrites dvc.lock, metrics/, plots/ ... before it
    records its push: that version was still built from the commit."""
    config = load_config(git_project / "params.yaml")
    outputs = record.run_outputs(config)
    for path in ("dvc.lock", "study/dvc.lock", "metrics/evaluation.json", "plots/fid.json"):
        (git_project / path).parent.mkdir(parents=True, exist_ok=True)
        (git_project / path).write_text("{}\n")
    _git(git_project, "add", ".")
    _git(git_project, "commit", "--quiet", "-m", "outputs")
    for path in ("dvc.lock", "study/dvc.lock", "metrics/evaluation.json", "plots/fid.json"):
        (git_project / path).write_text('{"rewritten": true}\n')
    (git_project / "dvclive").mkdir()
    (git_project / "dvclive" / "metrics.json").write_text("{}\n")  # untracked, written too
    assert provenance.git_state(git_project, outputs)["dirty"] is False
    assert provenance.git_state(git_project)["dirty"] is True  # everything counts without them
    (git_project / "module.py").write_text("x = 1\n")  # new code the run may depend on
    assert provenance.git_state(git_project, outputs)["dirty"] is True
    (git_project / "module.py").unlink()
    (git_project / "params.yaml").write_text((git_project / "params.yaml").read_text() + "\n")
    assert provenance.git_state(git_project, outputs)["dirty"] is True


# Git tags ---------------------------------------------------------------------------------------


def _record_on_new_commit(project, version, message):
    """Records `version` as trained from a fresh commit (GTO registers one version per commit)."""
    (project / "params.yaml").write_text((project / "params.yaml").read_text() + f"# {message}\n")
    _git(project, "commit", "--quiet", "-am", message)
    commit = _git(project, "rev-parse", "HEAD")
    ModelRegistry(project / "serving" / "cyclegan", "cyclegan").record(
        version, {"git": {"commit": commit, "dirty": False}}
    )
    return commit


def test_promote_and_rollback_register_and_assign_with_gto(git_project, capsys):
    first = _record_on_new_commit(git_project, VERSIONS[0], "first model")
    second = _record_on_new_commit(git_project, VERSIONS[1], "second model")
    assert _cli(git_project, "promote", VERSIONS[0], "--to", "production", "--tag") == 0
    assert _cli(git_project, "promote", VERSIONS[1], "--to", "production", "--tag") == 0
    assert _cli(git_project, "rollback", "--tag") == 0
    tags = _git(git_project, "tag", "--list").split()
    assert sorted(tags) == [
        "cyclegan#prod#1",
        "cyclegan#prod#2",
        "cyclegan#prod#3",
        "cyclegan@v0.0.1",
        "cyclegan@v0.0.2",
    ]
    assert _git(git_project, "rev-list", "-n", "1", "cyclegan@v0.0.1") == first
    assert _git(git_project, "rev-list", "-n", "1", "cyclegan@v0.0.2") == second
    message = _git(git_project, "tag", "-n5", "--list", "cyclegan#prod#3")
    assert f"rollback: cyclegan v0.0.1 (serving version {VERSIONS[0]}) to production" in message
    out = capsys.readouterr().out
    assert "git tags: cyclegan@v0.0.1, cyclegan#prod#1" in out
    events = json.loads((git_project / "serving/cyclegan/registry.json").read_text())["events"]
    assert events[-1]["tags"] == ["cyclegan#prod#3"]
    # GTO itself, the reader DVC Studio uses, sees the versions and the stage.
    gto = Path(sys.executable).with_name("gto")
    shown = subprocess.run(
        [str(gto), "show", "--json"], cwd=git_project, capture_output=True, text=True, check=True
    )
    cyclegan = json.loads(shown.stdout)["cyclegan"]
    assert cyclegan["version"] == "v0.0.2" and cyclegan["stage"]["prod"] == "v0.0.1"


def test_gto_refuses_a_second_version_on_one_commit(git_project, capsys):
    _record_on_new_commit(git_project, VERSIONS[0], "first model")
    ModelRegistry(git_project / "serving" / "cyclegan", "cyclegan").record(
        VERSIONS[1], {"git": {"commit": _git(git_project, "rev-parse", "HEAD"), "dirty": True}}
    )
    assert _cli(git_project, "promote", VERSIONS[0], "--to", "production", "--tag") == 0
    capsys.readouterr()
    assert _cli(git_project, "promote", VERSIONS[1], "--to", "production", "--tag") == 2
    err = capsys.readouterr().err
    assert "GTO refused" in err and "already registered in this commit" in err
    assert _production(ModelRegistry(git_project / "serving/cyclegan", "cyclegan")) == VERSIONS[0]


def test_tag_outside_a_git_repository_is_an_error_and_changes_nothing(project, capsys):
    assert _cli(project, "promote", VERSIONS[0], "--to", "production", "--tag") == 2
    err = capsys.readouterr().err
    assert "not inside a git repository" in err and "Traceback" not in err
    assert not (project / "serving/cyclegan/models.config").exists()


def test_tagger_needs_a_commit(tmp_path):
    _git(tmp_path, "init", "--quiet")
    with pytest.raises(TagError, match="no commit"):
        GtoTagger(tmp_path, "cyclegan")


# CLI --------------------------------------------------------------------------------------------


def test_cli_list_promote_rollback_show(project, capsys):
    assert _cli(project, "list") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["VERSION", "REG", "STAGE"]
    assert all(version in out for version in VERSIONS)

    assert _cli(project, "promote", VERSIONS[0], "--to", "production") == 0
    assert _cli(project, "promote", VERSIONS[2], "--to", "production") == 0
    out = capsys.readouterr().out
    assert f"production: {VERSIONS[0]} -> {VERSIONS[2]} (promote)" in out
    assert _production(ModelRegistry(project / "serving/cyclegan", "cyclegan")) == VERSIONS[2]

    assert _cli(project, "rollback") == 0
    assert f"production: {VERSIONS[2]} -> {VERSIONS[0]} (rollback)" in capsys.readouterr().out
    assert _production(ModelRegistry(project / "serving/cyclegan", "cyclegan")) == VERSIONS[0]

    assert _cli(project, "list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["stages"] for r in rows] == [["production"], [], []]

    assert _cli(project, "show", "production") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"cyclegan {VERSIONS[0]} (v0.0.1)  [production]")
    assert "no ML Metadata at" in out


def test_cli_serving_base_path_is_written_and_remembered(project):
    args = ("promote", VERSIONS[1], "--to", "production", "--serving-base-path", "/models/cyclegan")
    assert _cli(project, *args) == 0
    assert _cli(project, "promote", VERSIONS[2], "--to", "production") == 0
    config = (project / "serving/cyclegan/models.config").read_text()
    assert 'base_path: "/models/cyclegan"' in config
    assert f"value: {VERSIONS[2]}" in config


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "42"), "unknown version '42'"),
        (("promote", "v0.0.7", "--to", "production"), "unknown version 'v0.0.7'"),
        (("rollback",), "nothing to roll back to"),
        (("show", "production"), "no version is in production yet"),
    ],
)
def test_cli_user_errors_exit_2_with_a_message(project, capsys, args, message):
    assert _cli(project, *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (project / "serving/cyclegan/models.config").exists()


def test_cli_unknown_stage_is_rejected(project, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _cli(project, "promote", VERSIONS[0], "--to", "staging")
    assert exit_info.value.code == 2
    assert "invalid choice: 'staging'" in capsys.readouterr().err


def test_cli_missing_params_file_is_a_clear_error(tmp_path, capsys):
    assert models.main(["list", "--params", str(tmp_path / "nope.yaml")]) == 2
    assert "params file not found" in capsys.readouterr().err


def test_cli_list_without_pushed_models(tmp_path, capsys):
    shutil.copy(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    assert _cli(tmp_path, "list") == 0
    assert "no pushed versions" in capsys.readouterr().out


def test_local_runner_reports_a_registry_failure_without_a_traceback(project, monkeypatch):
    def failing_run(config):
        raise RegistryError("registry.json is not valid JSON")

    monkeypatch.setattr(local_runner, "run_and_report", failing_run)
    monkeypatch.setattr("sys.argv", ["local_runner", "--params", str(project / "params.yaml")])
    with pytest.raises(SystemExit) as exit_info:
        local_runner.main()
    message = str(exit_info.value.code)
    assert "the pipeline ran, but its model could not be registered" in message
    assert "not valid JSON" in message


def test_files_on_a_tensorflow_filesystem_are_replaced_whole():
    """ram:// (TensorFlow's in-memory filesystem) stands for object stores here."""
    base = f"ram://registry-test-{os.getpid()}/serving/cyclegan"
    path = files.join(base, "registry.json")
    files.makedirs(base)
    files.replace_text(path, "a longer first content")
    files.replace_text(path, "short")
    assert files.read_text(path) == "short"
    assert files.listdir(base) == ["registry.json"]
    assert not files.is_local(path) and files.is_local("serving") and files.is_local("file:///x")
    assert files.absolute(base) == base

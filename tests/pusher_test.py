"""The Pusher executor pushes a model once: a model already in the destination is not copied."""

import json

from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.pusher import ALREADY_PUSHED_KEY, Executor
from cyclegan_tfx.model.model_info import (
    find_pushed_version,
    read_model_info,
    serving_fingerprint,
    write_model_info,
)


def _model(tmp_path, name, weights):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / name)
    serving = tmp_path / name / "Format-Serving"
    (serving / "variables").mkdir(parents=True)
    (serving / "saved_model.pb").write_bytes(b"graph")
    write_model_info(str(serving), {"serving_fingerprint": serving_fingerprint(weights, 16)})
    return model


def _blessing(tmp_path):
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", 1)
    return blessing


def _push(tmp_path, model, destination, name):
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / name)
    config = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(destination))
    )
    Executor().Do(
        {"model": [model], "model_blessing": [_blessing(tmp_path)]},
        {"pushed_model": [pushed]},
        {"push_destination": proto_utils.proto_to_json(config)},
    )
    return pushed


def _versions(destination):
    return sorted(p.name for p in destination.iterdir() if p.name.isdigit())


def test_a_model_is_pushed_once(tmp_path):
    destination = tmp_path / "serving" / "cyclegan"
    model = _model(tmp_path, "model1", "aaaa")
    first = _push(tmp_path, model, destination, "push1")
    assert first.get_int_custom_property("pushed") == 1
    assert first.get_int_custom_property(ALREADY_PUSHED_KEY) == 0
    (version,) = _versions(destination)
    assert first.get_string_custom_property("pushed_version") == version
    assert read_model_info(str(destination / version)) == read_model_info(
        str(tmp_path / "model1" / "Format-Serving")
    )

    again = _push(tmp_path, model, destination, "push2")
    assert _versions(destination) == [version]
    assert again.get_int_custom_property("pushed") == 1
    assert again.get_int_custom_property(ALREADY_PUSHED_KEY) == 1
    assert again.get_string_custom_property("pushed_version") == version
    assert again.get_string_custom_property("pushed_destination").endswith(f"/{version}")


def test_a_retrained_model_with_the_same_weights_is_the_same_model(tmp_path):
    destination = tmp_path / "serving" / "cyclegan"
    _push(tmp_path, _model(tmp_path, "model1", "aaaa"), destination, "push1")
    twin = _push(tmp_path, _model(tmp_path, "model2", "aaaa"), destination, "push2")
    assert twin.get_int_custom_property(ALREADY_PUSHED_KEY) == 1
    assert len(_versions(destination)) == 1


def test_different_weights_are_pushed_as_a_new_version(tmp_path, monkeypatch):
    destination = tmp_path / "serving" / "cyclegan"
    _push(tmp_path, _model(tmp_path, "model1", "aaaa"), destination, "push1")
    # The Pusher names versions by the time in seconds: a later second for the second push.
    monkeypatch.setattr("time.time", lambda: 2_000_000_000.0)
    other = _push(tmp_path, _model(tmp_path, "model2", "bbbb"), destination, "push2")
    assert other.get_int_custom_property(ALREADY_PUSHED_KEY) == 0
    assert len(_versions(destination)) == 2


def test_the_fingerprint_covers_the_image_size():
    assert serving_fingerprint("aaaa", 16) != serving_fingerprint("aaaa", 32)
    assert serving_fingerprint("aaaa", 16) != serving_fingerprint("bbbb", 16)


def test_incomplete_and_foreign_folders_are_ignored(tmp_path):
    base = tmp_path / "serving"
    fingerprint = serving_fingerprint("aaaa", 16)
    (base / "100").mkdir(parents=True)  # an interrupted push: no saved_model.pb yet
    write_model_info(str(base / "100"), {"serving_fingerprint": fingerprint})
    (base / "notes").mkdir()
    (base / "200").mkdir()
    (base / "200" / "saved_model.pb").write_bytes(b"x")  # pushed before model records existed
    assert find_pushed_version(str(base), fingerprint) is None
    (base / "100" / "saved_model.pb").write_bytes(b"x")
    assert find_pushed_version(str(base), fingerprint) == "100"
    assert find_pushed_version(str(tmp_path / "missing"), fingerprint) is None


def test_an_unreadable_record_is_ignored(tmp_path):
    (tmp_path / "assets.extra").mkdir()
    (tmp_path / "assets.extra" / "cyclegan_tfx.json").write_text("{not json")
    assert read_model_info(str(tmp_path)) is None
    (tmp_path / "assets.extra" / "cyclegan_tfx.json").write_text(json.dumps([1]))
    assert read_model_info(str(tmp_path)) is None

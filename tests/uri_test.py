"""Local paths and filesystem URLs."""

from pathlib import Path

from cyclegan_tfx.uri import is_url, join, parent


def test_a_url_joins_with_slashes_and_a_local_path_as_a_path(tmp_path):
    assert join("gs://bucket/runs", "step-1", "state") == "gs://bucket/runs/step-1/state"
    assert join(tmp_path, "a", "b") == str(Path(tmp_path, "a", "b"))


def test_is_url_and_parent():
    assert is_url("ram://x/y") and not is_url("/tmp/x") and not is_url(Path("rel/x"))
    assert parent("gs://bucket/runs/file") == "gs://bucket/runs"
    assert parent("/tmp/x/file") == "/tmp/x"

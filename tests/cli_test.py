"""The command line: every command names a real module; unactionable notices are dropped."""

from __future__ import annotations

import ast
import importlib.util
import logging
import warnings
from pathlib import Path

from cyclegan_tfx.cli import (
    COMMANDS,
    IGNORED_LOG_NOTICES,
    DropNotices,
    drop_unactionable_notices,
    main,
)


def _record(name: str, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, message, None, None)


def test_the_known_notices_are_dropped_and_other_warnings_kept():
    beam = "apache_beam.runners.worker.data_plane"
    seen = {
        "absl": "ArtifactQuery.property_predicate is not supported.",
        beam: "Data output stream buffer size 590549339 exceeds 536870912 bytes. This is ...",
    }
    for name, message in seen.items():
        drop = DropNotices(IGNORED_LOG_NOTICES[name])
        assert not drop.filter(_record(name, message))
        assert drop.filter(_record(name, "Data output stream closed unexpectedly"))


def test_installing_the_filters_twice_adds_each_once_and_warnings_are_filtered():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drop_unactionable_notices()
        drop_unactionable_notices()
        warnings.warn(
            "You are using a non-supported Python version (3.10)", FutureWarning, stacklevel=1
        )
        warnings.warn("something else", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["something else"]
    for name in IGNORED_LOG_NOTICES:
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, DropNotices) for f in filters) == 1


def test_unknown_command_names_the_commands(capsys):
    assert main(["no-such-command"]) == 2
    error = capsys.readouterr().err
    assert "unknown command 'no-such-command'" in error and "explain-gate" in error


def test_every_command_names_a_module_with_a_main():
    # Read, not imported (that would import TensorFlow for most): a renamed module or a
    # missing `main` fails here rather than when a user runs the command.
    for name, (module, _) in COMMANDS.items():
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin, f"{name}: no module {module}"
        tree = ast.parse(Path(spec.origin).read_text())
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert "main" in functions, f"{name}: {module} has no main()"

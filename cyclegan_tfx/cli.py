"""`cyclegan-tfx`: the project's commands in one entry point (`[project.scripts]`).

Each subcommand is a module's own command line; `cyclegan-tfx COMMAND --help` shows its flags.
The module is imported only when its command runs, so `cyclegan-tfx --help` is instant.

The command modules are named by string (:data:`COMMANDS`), not imported here, on purpose: a DVC
stage runs one command, and its deps (dvc.yaml, checked by tests/dvc_test.py) are this file plus
that command's import closure. An `import` of every command here, even inside functions, would
put all of the project into every stage's closure, so any change would rerun every stage.
`tests/cli_test.py` finds every named module and checks (from its source) that it has a `main`.
"""

from __future__ import annotations

import importlib
import logging
import sys
import warnings
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("pipeline.local_runner", "run the TFX pipeline locally (what `dvc repro` calls)"),
    "preprocess": ("cyclegan_tfx.data.preprocess.__main__", "the Beam preprocessing job"),
    "models": ("cyclegan_tfx.registry.cli", "list, show, promote, roll back, register versions"),
    "explain-gate": ("pipeline.explain_gate", "why the newest model was (not) blessed"),
    "translate": ("cyclegan_tfx.translate", "translate a folder of images with a SavedModel"),
    "fid": ("cyclegan_tfx.evaluation.fid.__main__", "FID/KID between two folders of images"),
    "fid-weights": (
        "cyclegan_tfx.evaluation.fid.weights",
        "install the standard FID weights (make setup)",
    ),
    "download-inception": (
        "cyclegan_tfx.evaluation.fid.download",
        "download TTUR's FID graph (opt-in)",
    ),
    "fid-agreement": ("cyclegan_tfx.experiments.agreement", "does FID follow the ground truth?"),
    "compare": ("cyclegan_tfx.experiments.compare", "train every optimizer strategy and compare"),
    "style-case": (
        "cyclegan_tfx.experiments.style_case",
        "the default model on the colour-grade dataset",
    ),
    "study": (
        "cyclegan_tfx.experiments.study.__main__",
        "the optimizer study: a grid of DVC experiments",
    ),
    "kubeflow": ("pipeline.kubeflow_runner", "compile the pipeline for Kubeflow / Vertex AI"),
    "study-run": (
        "cyclegan_tfx.experiments.study.run",
        "one run of the optimizer study (study/dvc.yaml)",
    ),
}

# Notices third-party libraries print about the pinned stack, which a user can do nothing about.
# As Python warnings, at import time: google-api-core's that Python 3.10 is past its end of life
# (the project is pinned to it: README), and google-cloud-aiplatform's that google-cloud-storage
# 2.x (which kfp 2.5 pins) will lose support. pyproject.toml's pytest `filterwarnings` lists the
# same ones.
IGNORED_WARNINGS = (
    "You are using a non-supported Python version",
    "Support for google-cloud-storage < 3.0.0",
)
IGNORED_LOG_NOTICES: dict[str, tuple[str, ...]] = {
    # TFX 1.16's input resolver logs this for every artifact query: it tests a protobuf
    # submessage for truth, which is always true (tfx/orchestration/portable/
    # input_resolution/channel_resolver.py); this pipeline sets no property predicate.
    "absl": ("property_predicate is not supported",),
    # The Evaluator's metric accumulators hold the FID sums of every image set (a 2048 x 2048
    # matrix each, by design: the metric streams instead of keeping features), so Beam's
    # embedded runner warns that an element exceeds 512 MiB while passing them in process.
    "apache_beam.runners.worker.data_plane": ("exceeds 536870912 bytes",),
}
"""As log records, per logger (dropped from the log of every command)."""


class DropNotices(logging.Filter):
    """Drops the log records whose message contains one of `fragments`."""

    def __init__(self, fragments: tuple[str, ...]) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        """False (drop) for a record that contains one of the fragments."""
        message = record.getMessage()
        return not any(fragment in message for fragment in self.fragments)


def drop_unactionable_notices() -> None:
    """Installs the filters of :data:`IGNORED_WARNINGS` and :data:`IGNORED_LOG_NOTICES`."""
    for notice in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=notice, category=FutureWarning)
    for name, fragments in IGNORED_LOG_NOTICES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropNotices) for f in logger.filters):
            logger.addFilter(DropNotices(fragments))


def usage() -> str:
    """The top-level help text."""
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: cyclegan-tfx COMMAND [ARGS ...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "`cyclegan-tfx COMMAND --help` shows a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatches to the command's module; returns its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"cyclegan-tfx: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    drop_unactionable_notices()
    module = importlib.import_module(COMMANDS[name][0])
    status = module.main(rest)
    return 0 if status is None else int(status)


if __name__ == "__main__":
    sys.exit(main())

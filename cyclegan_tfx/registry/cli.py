"""CLI of the model registry: list, show, promote, roll back and register pushed versions.

Usage (`cyclegan-tfx models ...`, or `python -m cyclegan_tfx.registry ...`):
    list [--json]
    show VERSION [--json]
    promote VERSION --to production [--tag] [--serving-base-path P]
        [--server http://HOST:8501 [--wait-timeout S]]
    rollback [--stage production] [--tag] [--server URL]
    register [VERSION ...]        register pushed versions from ML Metadata after the fact

VERSION is a serving version (the folder name under serving/<name>/), a registry version
(`v0.0.N`) or a stage name (`production`). Every command takes `--params params.yaml`; the
versions live in `<paths.serving>/<pipeline.name>/`. Exit status 2 means a user error (unknown
version, nothing to roll back, not a git repository with --tag, ...); nothing was changed then.

`--server` is for a TF Serving that is running on this models.config: the new version is served
first, and the `production` label moves only once the server reports it AVAILABLE (TF Serving
refuses to move a label to a version it has not loaded).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from cyclegan_tfx.config import DEFAULT_PARAMS_FILE, Config, ConfigError, load_config
from cyclegan_tfx.mlmd import MetadataError
from cyclegan_tfx.registry import record, tfserving, views
from cyclegan_tfx.registry.store import STAGES, RegistryError
from cyclegan_tfx.registry.tags import GtoTagger, TagError

logger = logging.getLogger(__name__)


def _tagger(config: Config, wanted: bool) -> GtoTagger | None:
    return GtoTagger(config.paths.root, config.pipeline.name) if wanted else None


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--params", default=DEFAULT_PARAMS_FILE, help="the params file")
    common.add_argument(
        "--serving",
        help="the model's serving folder (TF Serving base path): a local path or a TensorFlow "
        "filesystem URI such as gs://bucket/serving/cyclegan (default: the params file's "
        "paths.serving/<pipeline.name>)",
    )
    parser = argparse.ArgumentParser(
        prog="cyclegan-tfx models",
        description="List, show, promote, roll back and register pushed model versions.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", parents=[common], help="every pushed version")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    show = commands.add_parser("show", parents=[common], help="a version and its lineage")
    show.add_argument("version", help="serving version, vX.Y.Z or a stage name")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    promote = commands.add_parser("promote", parents=[common], help="put a version in a stage")
    promote.add_argument("version", help="serving version, vX.Y.Z or a stage name")
    promote.add_argument("--to", dest="stage", required=True, choices=STAGES, help="the stage")
    rollback = commands.add_parser(
        "rollback", parents=[common], help="return a stage to its previous version"
    )
    rollback.add_argument("--stage", default="production", choices=STAGES, help="the stage")
    register = commands.add_parser(
        "register",
        parents=[common],
        help="register pushed versions from ML Metadata (pushed before the registry existed, "
        "or whose entry is missing or incomplete)",
    )
    register.add_argument("versions", nargs="*", help="serving versions (default: unrecorded)")
    for sub in (promote, rollback):
        sub.add_argument(
            "--tag", action="store_true", help="also create GTO-style git tags (in a git repo)"
        )
        sub.add_argument(
            "--server",
            help="REST address of a TF Serving running on models.config (http://HOST:8501): "
            "move the label only after the server has loaded the version",
        )
        sub.add_argument(
            "--wait-timeout",
            type=float,
            default=600.0,
            help="seconds to wait for --server to load the version (default 600)",
        )
        sub.add_argument(
            "--serving-base-path",
            help="base_path written into models.config, as TF Serving sees the folder "
            "(e.g. /models/cyclegan in a container); remembered",
        )
    return parser.parse_args(argv)


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.params)
    registry = record.model_registry(config, args.serving)
    if args.command == "register":
        done = record.backfill(config, args.versions or None, registry)
        print(f"registered {', '.join(done)}" if done else "nothing to register")
        return 0
    if args.command == "list":
        rows = views.version_rows(registry)
        if args.json:
            print(json.dumps(rows, indent=2))
        elif not rows:
            print(f"no pushed versions in {registry.model_dir}")
        else:
            print(views.list_table(rows))
        return 0
    if args.command == "show":
        version = registry.resolve(args.version)
        if args.json:
            entry = registry.entry(version) or {}
            found, source = views.lineage_for(config, version, entry)
            stages = [s for s in STAGES if registry.stage_version(s) == version]
            document = {"version": version, "stages": stages, "entry": entry}
            print(json.dumps({**document, "lineage": found, "lineage_source": source}, indent=2))
        else:
            print(views.show_text(config, registry, version))
        return 0
    tagger = _tagger(config, args.tag)
    wait = None
    if args.server:

        def wait(version: str) -> None:
            print(f"waiting for {args.server} to load {registry.model_name} {version} ...")
            tfserving.wait_until_available(
                args.server, registry.model_name, version, timeout_s=args.wait_timeout
            )

    if args.command == "promote":
        change = registry.promote(
            args.version,
            args.stage,
            tagger=tagger,
            wait_for_version=wait,
            serving_base_path=args.serving_base_path,
        )
    else:
        change = registry.rollback(
            args.stage,
            tagger=tagger,
            wait_for_version=wait,
            serving_base_path=args.serving_base_path,
        )
    if change.action == "unchanged":
        print(f"{change.version} already is in {change.stage}; nothing changed")
        return 0
    print(f"{change.stage}: {change.previous or 'none'} -> {change.version} ({change.action})")
    print(
        f"  {registry.version_path(change.version)}; TF Serving config "
        f"{registry.models_config_path} (label {change.stage})"
    )
    if change.tags:
        print(f"  git tags: {', '.join(change.tags)} (push them with `git push --tags`)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2 on a user error, nothing changed)."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except (
        ConfigError,
        RegistryError,
        TagError,
        MetadataError,
        tfserving.ServerWaitError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

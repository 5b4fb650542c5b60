"""The registry of pushed model versions, the `production` pointer and TF Serving's config.

Layout of the Pusher's TF Serving base path (`serving/<name>/`, or `gs://.../<name>`: any
filesystem TensorFlow writes, see :mod:`.files`):

```
serving/cyclegan/
  1795667158/            a pushed version (SavedModel; the Pusher names it by Unix time)
  1795668012/
  registry.json          what each version is and where it came from, promotion history
  models.config          TF Serving model config: label `production` -> that version
  .registry.lock         serialises concurrent writers (local disks only)
```

The `production` pointer is the promotion history in registry.json, and TF Serving's
`models.config` label; there are no symlinks (object stores have none). `<base>/production`
as a model path is resolved through the registry (:func:`resolve_model_path`). TF Serving only
loads numeric sub-directories of a base path, so the other entries never look like versions to
it. Every file is replaced whole, so a reader sees either the old or the new state, never a
partial one; registry.json carries a revision, so a concurrent writer is detected where it
cannot be locked out (:mod:`.files` says what each filesystem guarantees).

Over 400 lines on purpose: the registry file, the stage pointer and models.config change
together under one lock and must stay consistent; TF Serving's side is in :mod:`.tfserving`.

Promotion history is an append-only list of events per stage. The production *stack* is the
replay of those events: `promote V` pushes V (unless it is already on top), `rollback` pops the
top; the top is production. So `promote 1; promote 2; rollback` puts 1 back, and a second
`rollback` fails because nothing was promoted before 1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import posixpath
import re
from collections.abc import Callable, Iterator
from typing import Any

from cyclegan_tfx.registry import files, tfserving

logger = logging.getLogger(__name__)

REGISTRY_FILE = "registry.json"
MODELS_CONFIG_FILE = "models.config"
LOCK_FILE = ".registry.lock"
SAVED_MODEL_FILE = "saved_model.pb"
PRODUCTION = "production"
STAGES = (PRODUCTION,)
FORMAT = 1
_SEMVER = re.compile(r"^v\d+\.\d+\.\d+$")

Tagger = Callable[[dict[str, Any], str, str], list[str]]
"""Called as `tagger(entry, stage, action)` before a stage change is saved; returns tag names."""
WaitForVersion = Callable[[str], None]
"""Called with a version once models.config serves it (label unchanged); returns when a running
TF Serving has loaded it, raises to abort the stage change (see :mod:`tfserving`)."""


class RegistryError(Exception):
    """A registry operation that cannot be done as asked (the message says why and what to do)."""


class ConcurrentWriteError(RegistryError):
    """registry.json changed between this command's read and its write (another writer)."""


@dataclasses.dataclass(frozen=True)
class StageChange:
    """The outcome of a promotion or rollback."""

    stage: str
    action: str
    version: str
    previous: str | None
    tags: tuple[str, ...] = ()


def utc_now() -> str:
    """The current time as ISO 8601 UTC with a `Z` suffix, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_from_epoch(seconds: float) -> str:
    """A Unix time as ISO 8601 UTC with a `Z` suffix."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def is_version_name(name: str) -> bool:
    """Whether a folder name is a serving version (TF Serving only loads numeric names)."""
    return name.isdigit()


def stage_stack(events: list[dict[str, Any]], stage: str) -> list[str]:
    """Replays the promotion events of `stage`; the last element is the current version."""
    stack: list[str] = []
    for event in events:
        if event.get("stage") != stage:
            continue
        if event["action"] == "promote" and (not stack or stack[-1] != event["version"]):
            stack.append(event["version"])
        elif event["action"] == "rollback" and stack:
            stack.pop()
    return stack


def resolve_model_path(path: str) -> str:
    """A model path as users write it, turned into a version folder.

    `<base>/production` is looked up in `<base>/registry.json`; any other path is returned
    unchanged.

    Raises:
        RegistryError: If the stage has no version yet.
    """
    base, name = posixpath.split(str(path).rstrip("/"))
    if name not in STAGES or not files.exists(files.join(base, REGISTRY_FILE)):
        return str(path)
    registry = ModelRegistry(base, posixpath.basename(base))
    return registry.version_path(registry.resolve(name))


class ModelRegistry:
    """The versions of one model under its serving base path, and their stages.

    Args:
        model_dir: The TF Serving base path, `serving/<name>/`: a local path or a URI of a
            TensorFlow filesystem (`gs://bucket/serving/<name>`).
        model_name: The model's name (the pipeline name), used in TF Serving's config and tags.
    """

    def __init__(self, model_dir: str | os.PathLike[str], model_name: str) -> None:
        self.model_dir = str(model_dir).rstrip("/")
        self.model_name = model_name

    @property
    def registry_path(self) -> str:
        """`registry.json`."""
        return files.join(self.model_dir, REGISTRY_FILE)

    @property
    def models_config_path(self) -> str:
        """TF Serving's model config file."""
        return files.join(self.model_dir, MODELS_CONFIG_FILE)

    def version_path(self, version: str) -> str:
        """The folder of a pushed version."""
        return files.join(self.model_dir, version)

    def versions(self) -> list[str]:
        """The pushed versions on disk, oldest first."""
        if not files.isdir(self.model_dir):
            return []
        names = [
            name
            for name in files.listdir(self.model_dir)
            if is_version_name(name) and files.isdir(self.version_path(name))
        ]
        return sorted(names, key=int)

    def read(self) -> dict[str, Any]:
        """The registry's content (an empty registry if the file does not exist yet).

        Raises:
            RegistryError: If registry.json is not valid JSON.
        """
        if not files.exists(self.registry_path):
            return {
                "format": FORMAT,
                "model": self.model_name,
                "revision": 0,
                "versions": {},
                "events": [],
            }
        try:
            data = json.loads(files.read_text(self.registry_path))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RegistryError(
                f"{self.registry_path} is not valid JSON ({error}); restore it from a backup or "
                "delete it (the pushed models are not affected, only their recorded metadata)"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("versions"), dict):
            raise RegistryError(f"{self.registry_path} is not a model registry file")
        data.setdefault("events", [])
        data.setdefault("revision", 0)
        return data

    @contextlib.contextmanager
    def _update(self, *, serving: bool = False) -> Iterator[dict[str, Any]]:
        """Locks the registry, yields its content and saves it if the block succeeds.

        The save is refused if registry.json's revision moved since it was read: another
        writer got in between (possible only where there is no lock, on object stores).

        Args:
            serving: Also rewrite models.config from the new content, before registry.json (a
                config that cannot be written leaves both as they were).

        Raises:
            ConcurrentWriteError: Nothing was written; the command can simply be run again.
        """
        if not files.isdir(self.model_dir):
            raise RegistryError(
                f"no pushed models: {self.model_dir} does not exist (run the pipeline first)"
            )
        with files.exclusive(files.join(self.model_dir, LOCK_FILE)):
            data = self.read()
            revision = data["revision"]
            yield data
            config_text = self._models_config_text(data) if serving else None
            now = self.read()["revision"]
            if now != revision:
                raise ConcurrentWriteError(
                    f"{self.registry_path} changed while this command ran (revision {revision} "
                    f"-> {now}: another writer); nothing was written by this one, run it again"
                )
            if config_text is not None:
                self._write_models_config(config_text)
            data["revision"] = revision + 1
            files.replace_text(self.registry_path, json.dumps(data, indent=2) + "\n")

    def entry(self, version: str) -> dict[str, Any] | None:
        """The recorded metadata of `version`, or None if it was never recorded."""
        return self.read()["versions"].get(version)

    def stage_version(self, stage: str = PRODUCTION) -> str | None:
        """The version currently in `stage`, or None."""
        stack = stage_stack(self.read()["events"], stage)
        return stack[-1] if stack else None

    def resolve(self, reference: str) -> str:
        """Turns a version number, a `vX.Y.Z` registry version or a stage name into a version.

        Raises:
            RegistryError: If nothing matches; the message lists the known versions.
        """
        data = self.read()
        if reference in STAGES:
            stack = stage_stack(data["events"], reference)
            if not stack:
                raise RegistryError(f"no version is in {reference} yet; promote one first")
            return stack[-1]
        if _SEMVER.match(reference):
            for version, entry in data["versions"].items():
                if entry.get("semver") == reference:
                    return version
        elif reference in self.versions() or reference in data["versions"]:
            return reference
        known = ", ".join(self.versions()) or "none"
        raise RegistryError(
            f"unknown version {reference!r} of {self.model_name!r} (pushed versions: {known}); "
            "see `cyclegan-tfx models list`"
        )

    def record(self, version: str, metadata: dict[str, Any]) -> dict[str, Any]:
        """Records (or refreshes) the metadata of a pushed version; returns its entry.

        The registry version (`semver`, `v0.0.N` in push order) and `registered_at` of a version
        that is already recorded are kept, so recording the same push twice changes nothing.
        """
        with self._update() as data:
            entry = self._register(data, version)
            entry.update({k: v for k, v in metadata.items() if k not in ("semver", "version")})
        logger.info("registered %s %s as %s", self.model_name, version, entry["semver"])
        return entry

    def _register(self, data: dict[str, Any], version: str) -> dict[str, Any]:
        versions = data["versions"]
        if version not in versions:
            versions[version] = {
                "version": version,
                "semver": f"v0.0.{len(versions) + 1}",
                "registered_at": utc_now(),
            }
        return versions[version]

    def promote(
        self,
        reference: str,
        stage: str = PRODUCTION,
        *,
        tagger: Tagger | None = None,
        wait_for_version: WaitForVersion | None = None,
        serving_base_path: str | None = None,
    ) -> StageChange:
        """Puts a version into `stage` and moves the pointer and TF Serving's config.

        Args:
            reference: A version number, `vX.Y.Z` or stage name (see :meth:`resolve`).
            stage: The stage (only `production` is defined).
            tagger: Optional callback creating git tags for the change (see :data:`Tagger`).
            wait_for_version: For a running TF Serving: the new version is first added to the
                served versions with the labels unchanged, this callback waits until the server
                has loaded it, and only then the label moves (see :mod:`tfserving`). None:
                models.config is written in its final form at once (no server running, or one
                started afterwards).
            serving_base_path: If given, the base path written into models.config from now on
                (as TF Serving sees this folder, e.g. /models/cyclegan in a container).

        Returns:
            The change (with the previous version of the stage); its action is `unchanged` when
            the version already was in the stage (no event, no tag).

        Raises:
            RegistryError: For an unknown stage or version, or a version folder without a
                SavedModel.
            tfserving.ServerWaitError: If `wait_for_version` gave up; the stage is unchanged
                (models.config keeps serving the new version beside the old one).
        """
        self._check_stage(stage)
        version = self.resolve(reference)
        self._check_servable(version)
        with self._update(serving=True) as data:
            if serving_base_path:
                data["serving_base_path"] = serving_base_path
            stack = stage_stack(data["events"], stage)
            previous = stack[-1] if stack else None
            if previous == version:
                change = StageChange(stage, "unchanged", version, previous)
            else:
                self._stage_for_server(data, version, wait_for_version)
                change = self._apply(data, stage, "promote", version, previous, tagger)
        return change

    def rollback(
        self,
        stage: str = PRODUCTION,
        *,
        tagger: Tagger | None = None,
        wait_for_version: WaitForVersion | None = None,
        serving_base_path: str | None = None,
    ) -> StageChange:
        """Returns `stage` to the version that was in it before the current one.

        The previous version is normally still served (models.config keeps it loaded for this),
        so with `wait_for_version` (see :meth:`promote`) the label moves at once.
        `serving_base_path` as in :meth:`promote`.

        Raises:
            RegistryError: If fewer than two versions were promoted to `stage`, or the previous
                version's folder is gone.
        """
        self._check_stage(stage)
        with self._update(serving=True) as data:
            if serving_base_path:
                data["serving_base_path"] = serving_base_path
            stack = stage_stack(data["events"], stage)
            if len(stack) < 2:
                current = f"only {stack[-1]} was promoted" if stack else "nothing was promoted"
                raise RegistryError(f"nothing to roll back to in {stage}: {current}")
            current, target = stack[-1], stack[-2]
            self._check_servable(target)
            self._stage_for_server(data, target, wait_for_version)
            change = self._apply(data, stage, "rollback", target, current, tagger)
        return change

    def _apply(
        self,
        data: dict[str, Any],
        stage: str,
        action: str,
        version: str,
        previous: str | None,
        tagger: Tagger | None,
    ) -> StageChange:
        entry = self._register(data, version)
        tags = tuple(tagger(entry, stage, action)) if tagger else ()
        data["events"].append(
            {
                "stage": stage,
                "action": action,
                "version": version,
                "previous": previous,
                "at": utc_now(),
                "tags": list(tags),
            }
        )
        logger.info("%s: %s %s (was %s)", stage, action, version, previous)
        return StageChange(stage, action, version, previous, tags)

    def _stage_for_server(
        self, data: dict[str, Any], version: str, wait_for_version: WaitForVersion | None
    ) -> None:
        """Serves `version` beside the current ones (labels unchanged) and waits for the server."""
        if wait_for_version is None:
            return
        self.write_serving_files(data, also_serve=version)
        wait_for_version(version)

    def write_serving_files(
        self, data: dict[str, Any] | None = None, *, also_serve: str | None = None
    ) -> None:
        """Writes models.config from the registry (idempotent).

        Args:
            data: The registry content; read from registry.json if None.
            also_serve: A version to load beside the others, labels unchanged: the first half
                of moving a label on a running server (see :mod:`tfserving`).
        """
        text = self._models_config_text(self.read() if data is None else data, also_serve)
        if text is not None:
            self._write_models_config(text)

    def _models_config_text(
        self, data: dict[str, Any], also_serve: str | None = None
    ) -> str | None:
        """models.config for `data`, or None while nothing is in a stage.

        It serves the production version and the one before it (so a rollback is instant) and
        labels the production version `production`.

        Raises:
            RegistryError: If a version to serve is missing from the base path.
        """
        labels: dict[str, str] = {}
        served: list[str] = []
        on_disk = set(self.versions())
        for stage in STAGES:
            stack = stage_stack(data["events"], stage)
            if not stack:
                continue
            labels[stage] = stack[-1]
            kept = [v for v in reversed(stack) if v in on_disk]
            served += [v for v in dict.fromkeys(kept) if v not in served][:2]
        if also_serve is not None and also_serve not in served:
            served.append(also_serve)
        if not served:
            return None
        base_path = data.get("serving_base_path") or files.absolute(self.model_dir)
        try:
            config = tfserving.models_config(
                self.model_name, base_path, sorted(served, key=int), labels
            )
        except tfserving.ServingConfigError as error:
            raise RegistryError(
                f"cannot write {self.models_config_path}: {error} (its folder is missing from "
                f"{self.model_dir}); promote a version that is on disk"
            ) from None
        return tfserving.models_config_text(config)

    def _write_models_config(self, text: str) -> None:
        """Writes models.config, and removes the stage symlinks older registries kept."""
        files.replace_text(self.models_config_path, text)
        for stage in STAGES:
            if files.remove_stale_link(files.join(self.model_dir, stage)):
                logger.info("removed the old %s symlink: registry.json is the pointer", stage)

    def _check_stage(self, stage: str) -> None:
        if stage not in STAGES:
            raise RegistryError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")

    def _check_servable(self, version: str) -> None:
        folder = self.version_path(version)
        if not files.exists(files.join(folder, SAVED_MODEL_FILE)):
            raise RegistryError(
                f"version {version} has no SavedModel at {folder} (deleted or incomplete push); "
                "choose another version"
            )

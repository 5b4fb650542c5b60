"""Git tags of registrations and stage assignments, written by GTO (DVC's model registry).

`promote --tag` / `rollback --tag` call GTO's Python API, so the tags are exactly what
`gto show`, `dvc artifacts` and DVC Studio read:

- registration: `gto.api.register` creates `<model>@<semver>` (e.g. `cyclegan@v0.0.3`, the
  registry version) on the commit the version was trained from (the commit recorded at push
  time when the repository has it, else HEAD);
- stage assignment: `gto.api.assign` creates `<model>#<stage>#<N>` (e.g. `cyclegan#prod#2`).
  A rollback is a new assignment of the older version, as in GTO.

GTO's rules apply: versions must increase, and a commit holds one registered version; a
registration GTO refuses is reported with its reason.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

from gto import api as gto_api
from gto.exceptions import GTOException

from cyclegan_tfx.registry.provenance import run_git

logger = logging.getLogger(__name__)

GTO_STAGE_NAMES = {"production": "prod"}
"""Registry stage -> GTO stage name in tags."""


class TagError(Exception):
    """A registration or assignment could not be tagged (the message says why)."""


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = run_git(root, *args)
    if result is None:
        raise TagError(f"cannot run git {' '.join(args)} in {root} (not installed, or timed out)")
    return result


class GtoTagger:
    """Tags registry changes of one model with GTO.

    Args:
        root: A folder inside the git work tree.
        model: The artifact name used in the tags (the pipeline name).

    Raises:
        TagError: If `root` is not inside a git repository with at least one commit.
    """

    def __init__(self, root: str | Path, model: str) -> None:
        top = _git(Path(root), "rev-parse", "--show-toplevel")
        if top.returncode != 0:
            raise TagError(f"{Path(root).resolve()} is not inside a git repository")
        self.root = Path(top.stdout.strip())
        if _git(self.root, "rev-parse", "--verify", "HEAD").returncode != 0:
            raise TagError(f"the git repository at {self.root} has no commit to tag yet")
        self.model = model

    def _commit_for(self, entry: dict[str, Any]) -> str:
        recorded = (entry.get("git") or {}).get("commit")
        if recorded and _git(self.root, "cat-file", "-e", f"{recorded}^{{commit}}").returncode == 0:
            return recorded
        if recorded:
            logger.warning("commit %s is not in this repository; tagging HEAD", recorded)
        return _git(self.root, "rev-parse", "HEAD").stdout.strip()

    def _registered(self, semver: str) -> bool:
        try:
            versions = gto_api.show(self.root, self.model, registered_only=True)
        except GTOException:  # no tag of this artifact yet
            return False
        return any(row.get("version") == semver for row in versions)

    def __call__(self, entry: dict[str, Any], stage: str, action: str) -> list[str]:
        """Tags a stage change: the registration (if new) and the stage assignment.

        Args:
            entry: The registry entry of the version (`version`, `semver`, `git`).
            stage: The registry stage, e.g. `production`.
            action: `promote` or `rollback` (written into the annotations).

        Returns:
            The names of the tags created.

        Raises:
            TagError: If GTO refuses (e.g. the commit already holds another version).
        """
        created = []
        semver, serving = entry["semver"], entry["version"]
        try:
            if not self._registered(semver):
                tag = gto_api.register(
                    self.root,
                    self.model,
                    ref=self._commit_for(entry),
                    version=semver,
                    message=f"Registering {self.model} serving version {serving} as {semver}",
                )
                created.append(tag.tag if hasattr(tag, "tag") else f"{self.model}@{semver}")
            tag = gto_api.assign(
                self.root,
                self.model,
                GTO_STAGE_NAMES.get(stage, stage),
                version=semver,
                message=f"{action}: {self.model} {semver} (serving version {serving}) to {stage}",
                # A rollback re-assigns a version that was in the stage before; GTO asks for
                # force to create a new assignment tag for it.
                force=action == "rollback",
            )
        except GTOException as error:
            raise TagError(f"GTO refused to tag {self.model} {semver}: {error}") from None
        created.append(tag.tag if hasattr(tag, "tag") else str(tag))
        return created

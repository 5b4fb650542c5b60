"""GTO-style git tags for model registrations and stage assignments.

The tag names follow GTO's (https://dvc.org/doc/gto) conventions, so `gto show` and DVC Studio
read them:

- registration: `<model>@<semver>`, e.g. `cyclegan@v0.0.3` (one per registry version);
- stage assignment: `<model>#<stage>#<N>`, e.g. `cyclegan#prod#4`, N counting up per model.

Both are annotated tags on the commit the version was trained from (the commit recorded at push
time when the repository has it, else HEAD). A rollback is a new assignment of the older
version, as in GTO. The annotation names the serving version, because several serving versions
can come from the same commit.
"""

from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

GTO_STAGE_NAMES = {"production": "prod"}
"""Registry stage -> GTO stage name in tags."""
_TIMEOUT_S = 30


class GitTagError(Exception):
    """A git tag could not be created (the message says why)."""


def run_git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs `git ARGS` in `root`; raises GitTagError if git cannot be run at all."""
    try:
        return subprocess.run(
            ["git", *args],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GitTagError(f"cannot run git: {error}") from None


def repository_root(path: str | Path) -> Path | None:
    """The top folder of the git work tree containing `path`, or None (not a repo, no git)."""
    try:
        result = run_git(Path(path), "rev-parse", "--show-toplevel")
    except GitTagError:
        return None
    return Path(result.stdout.strip()) if result.returncode == 0 else None


def registration_tag(model: str, semver: str) -> str:
    """`<model>@<semver>`."""
    return f"{model}@{semver}"


def stage_tag(model: str, stage: str, number: int) -> str:
    """`<model>#<gto stage>#<number>`."""
    return f"{model}#{GTO_STAGE_NAMES.get(stage, stage)}#{number}"


class GitTagger:
    """Creates the tags of registry changes in one repository.

    Args:
        root: A folder inside the git work tree.
        model: The model (artifact) name used in the tags.

    Raises:
        GitTagError: If `root` is not inside a git repository with at least one commit.
    """

    def __init__(self, root: str | Path, model: str) -> None:
        top = repository_root(root)
        if top is None:
            raise GitTagError(f"{Path(root).resolve()} is not inside a git repository")
        if run_git(top, "rev-parse", "--verify", "HEAD").returncode != 0:
            raise GitTagError(f"the git repository at {top} has no commit to tag yet")
        self.root = top
        self.model = model

    def tags(self) -> list[str]:
        """All tag names of the repository."""
        result = run_git(self.root, "tag", "--list")
        return result.stdout.split() if result.returncode == 0 else []

    def _commit_for(self, entry: dict[str, Any]) -> str:
        recorded = (entry.get("git") or {}).get("commit")
        exists = recorded and run_git(self.root, "cat-file", "-e", f"{recorded}^{{commit}}")
        if exists and exists.returncode == 0:
            return recorded
        if recorded:
            logger.warning("commit %s is not in this repository; tagging HEAD", recorded)
        return run_git(self.root, "rev-parse", "HEAD").stdout.strip()

    def _create(self, name: str, commit: str, message: str) -> None:
        result = run_git(self.root, "tag", "--annotate", name, commit, "--message", message)
        if result.returncode != 0:
            raise GitTagError(f"git tag {name} failed: {result.stderr.strip()}")
        logger.info("created git tag %s on %s", name, commit[:12])

    def __call__(self, entry: dict[str, Any], stage: str, action: str) -> list[str]:
        """Tags a stage change: the registration (if new) and the stage assignment.

        Args:
            entry: The registry entry of the version (`version`, `semver`, `git`).
            stage: The registry stage, e.g. `production`.
            action: `promote` or `rollback` (written into the annotation).

        Returns:
            The names of the tags created.
        """
        commit = self._commit_for(entry)
        existing = set(self.tags())
        created = []
        registration = registration_tag(self.model, entry["semver"])
        if registration not in existing:
            self._create(
                registration,
                commit,
                f"Registering {self.model} serving version {entry['version']} as {entry['semver']}",
            )
            created.append(registration)
        pattern = re.compile(rf"^{re.escape(self.model)}#[^#]+#(\d+)$")
        numbers = [int(m.group(1)) for tag in existing if (m := pattern.match(tag))]
        assignment = stage_tag(self.model, stage, max(numbers, default=0) + 1)
        self._create(
            assignment,
            commit,
            f"{action}: {self.model} {entry['semver']} (serving version {entry['version']}) "
            f"to {stage}",
        )
        created.append(assignment)
        return created

"""Content fingerprints of exactly the project code a pipeline component runs.

TFX caches a component on its input artifacts and execution properties. Code named by a string
(the Trainer's `run_fn`, a TFMA metric's module) is not part of that key, so a code change
alone would reuse a model trained by the old code. The pipeline therefore puts a fingerprint
of the code each component runs into that component's execution properties (the Trainer's
`custom_config`, the FID metric's config inside the Evaluator's `eval_config`): changed code,
changed key, new execution.

"The code a component runs" is the transitive closure of the project modules its entry module
imports (read from the source with `ast`, nothing is executed), plus the `__init__.py` of every
package on the way. Third-party code is pinned by `requirements.lock` and not included. Any
byte change counts, comments and formatting included (a conservative choice: a re-execution is
cheaper than a stale model).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
from pathlib import Path

PROJECT_PACKAGES = ("cyclegan_tfx", "components", "pipeline")
"""Top-level packages whose code is fingerprinted (the rest is pinned third-party code)."""


CONFIG_KEY = "code_fingerprint"
"""The key of a component's compiled config that carries its code's fingerprint (the Trainer's
`custom_config`, the FID metric's config in the Evaluator's `eval_config`)."""


class StaleCodeError(RuntimeError):
    """The code a component runs is not the code the pipeline was compiled with."""


@dataclasses.dataclass(frozen=True)
class CodeFingerprint:
    """The fingerprint of a module's code and the files it covers.

    Attributes:
        digest: `sha256:<hex>` over the files' relative paths and bytes.
        files: The files, relative to the folder holding the project packages, sorted.
    """

    digest: str
    files: tuple[str, ...]


def _package_root(package: str) -> Path:
    """The folder holding a top-level project package (found without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"project package {package!r} not found")
    return Path(next(iter(spec.submodule_search_locations))).resolve().parent


def _module_file(root: Path, module: str) -> Path | None:
    """The source file of `module` under `root`, or None if it is not a project module."""
    parts = module.split(".")
    if parts[0] not in PROJECT_PACKAGES:
        return None
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, module: str) -> set[str]:
    """Absolute names of the modules (and `from X import name` candidates) `path` imports."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def project_imports(module: str, root: Path | None = None) -> set[str]:
    """The project modules that `module` itself imports, lazy (function-level) imports included.

    Args:
        module: A dotted project module name, e.g. `cyclegan_tfx.evaluation.gate`.
        root: The folder holding the project packages; default: where Python finds them.
    """
    root = root or _package_root(module.split(".")[0])
    path = _module_file(root, module)
    if path is None:
        raise ModuleNotFoundError(f"{module!r} is not a module of {PROJECT_PACKAGES}")
    names = _imported_modules(path, module)
    return {name for name in names if name != module and _module_file(root, name) is not None}


def module_closure(entry_module: str, root: Path | None = None) -> list[Path]:
    """The project source files `entry_module` runs: its imports, transitively, and packages.

    Args:
        entry_module: A dotted module name, e.g. `components.trainer`.
        root: The folder holding the project packages; default: where Python finds them.

    Returns:
        Absolute paths, sorted.

    Raises:
        ModuleNotFoundError: If `entry_module` is not a project module.
    """
    root = root or _package_root(entry_module.split(".")[0])
    if _module_file(root, entry_module) is None:
        raise ModuleNotFoundError(f"{entry_module!r} is not a module of {PROJECT_PACKAGES}")
    seen: dict[str, Path] = {}
    queue = [entry_module]
    while queue:
        module = queue.pop()
        parts = module.split(".")
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        for depth in range(1, len(parts) + 1):
            name = ".".join(parts[:depth])
            if name in seen:
                continue
            path = _module_file(root, name)
            if path is None:
                continue
            seen[name] = path
            queue.extend(_imported_modules(path, name))
    return sorted(set(seen.values()))


def code_fingerprint(*entry_modules: str, root: Path | None = None) -> CodeFingerprint:
    """The fingerprint of the project code that `entry_modules` run (see module docstring).

    Args:
        *entry_modules: Dotted module names, e.g. `components.trainer`.
        root: The folder holding the project packages; default: where Python finds them.
    """
    root = root or _package_root(entry_modules[0].split(".")[0])
    files = sorted({path for module in entry_modules for path in module_closure(module, root)})
    digest = hashlib.sha256()
    relative = []
    for path in files:
        name = path.relative_to(root).as_posix()
        relative.append(name)
        data = path.read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return CodeFingerprint(f"sha256:{digest.hexdigest()}", tuple(relative))


def check_running_code(entry_module: str, expected: str | None, component: str) -> CodeFingerprint:
    """Fails if the code `entry_module` runs is not the code the pipeline was compiled with.

    Args:
        entry_module: The component's entry module, e.g. `components.trainer`.
        expected: The fingerprint in the component's compiled config (:data:`CONFIG_KEY`).
        component: The component's name for the message, e.g. "Trainer".

    Returns:
        The running code's fingerprint.

    Raises:
        StaleCodeError: On a mismatch (e.g. a Kubeflow image built from another commit).
    """
    running = code_fingerprint(entry_module)
    if running.digest != expected:
        raise StaleCodeError(
            f"the {component} runs code {running.digest}, but the pipeline was compiled with "
            f"{expected}: rebuild the pipeline image from the commit you compiled (make image), "
            "or recompile the pipeline from this code"
        )
    return running

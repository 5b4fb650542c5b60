"""House rule: no source module over 400 lines unless its docstring says why."""

import ast

import pytest
from conftest import REPO_ROOT

SOURCES = sorted(
    path
    for package in ("cyclegan_tfx", "components", "pipeline", "bench", "scripts")
    for path in (REPO_ROOT / package).rglob("*.py")
)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_long_modules_say_why(path):
    text = path.read_text()
    if len(text.splitlines()) <= 400:
        return
    docstring = ast.get_docstring(ast.parse(text)) or ""
    assert "over 400 lines on purpose" in docstring.lower(), f"{path}: split it, or say why"

"""What the package imports at run time is what pyproject.toml declares."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO_ROOT = Path(__file__).resolve().parent.parent
# Runs inside the app's image, never in dashscale's process: it imports the user's app, Flask and
# flask-compress, which the image installs (see dashscale/steps/build.py).
IN_THE_IMAGE = {"wsgi_entry.py"}
PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def distribution(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def imported_modules(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        if path.name in IN_THE_IMAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"dashscale", "__future__"}


def test_every_third_party_import_is_declared() -> None:
    declared = {distribution(r) for r in PROJECT["dependencies"]}
    sandbox = {distribution(r) for r in PROJECT["optional-dependencies"]["sandbox"]}
    providers = importlib.metadata.packages_distributions()
    for module in sorted(imported_modules(REPO_ROOT / "dashscale")):
        names = {name.lower() for name in providers.get(module, [module])}
        if module == "moto":  # only `--sandbox` imports it, and says how to install it
            assert names & sandbox, module
        else:
            assert names & declared, f"{module} is imported but not a dependency"


def test_moto_is_bounded_to_the_major_version_tested() -> None:
    (moto,) = PROJECT["optional-dependencies"]["sandbox"]
    major = int(importlib.metadata.version("moto").split(".")[0])
    assert f">={major}.0" in moto and f"<{major + 1}" in moto

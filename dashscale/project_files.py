"""Files of a dashscale project (Dockerfile.template, example.env, the example app).

A wheel carries them in dashscale/_project; an editable install or a source checkout reads
them from the repository root. A project's own Dockerfile.template overrides the built-in one.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CANDIDATES = (_PACKAGE / "_project", _PACKAGE.parent)

EXAMPLE_APP_FILES = ("src/app.py", "src/requirements.txt")


def bundled(relative: str) -> Path:
    for root in _CANDIDATES:
        path = root / relative
        if path.is_file():
            return path
    raise FileNotFoundError(f"dashscale installation is missing {relative}; reinstall dashscale")


def dockerfile_template(project_dir: Path) -> Path:
    own = project_dir / "Dockerfile.template"
    return own if own.is_file() else bundled("Dockerfile.template")

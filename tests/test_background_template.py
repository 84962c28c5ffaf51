"""`dashscale init --template background`: the example app with a background callback and a
shared cache, its requirements (what it imports, nothing added), and the settings it needs."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

from dashscale.config import load_config
from tests.conftest import REPO_ROOT
from tests.support.operating import installed_command


def test_init_writes_the_background_app_and_its_settings(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *installed_command(),
            "init",
            "--template",
            "background",
            "--app-name",
            "bg",
            "--region",
            "eu-west-1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    template = REPO_ROOT / "templates" / "background" / "src"
    for name in ("app.py", "requirements.txt"):
        assert (tmp_path / "src" / name).read_text() == (template / name).read_text()
    config = load_config(environ={}, project_dir=tmp_path)
    assert config.redis and config.workers == 1
    # the worker command's module and object exist in the app
    tree = ast.parse((tmp_path / "src" / "app.py").read_text())
    assigned = {
        t.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    assert {"celery_app", "app", "server"} <= assigned
    # what it imports is what it lists
    requirements = (tmp_path / "src" / "requirements.txt").read_text()
    for package in ("dash[celery,diskcache]", "redis", "flask-caching"):
        assert package in requirements


def test_the_basic_template_stays_the_default(tmp_path: Path) -> None:
    result = subprocess.run(
        [*installed_command(), "init", "--app-name", "plain", "--region", "eu-west-1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "src" / "app.py").read_text() == (REPO_ROOT / "src" / "app.py").read_text()
    assert not load_config(environ={}, project_dir=tmp_path).redis

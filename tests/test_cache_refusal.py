"""The refusal of per-task caches where more than one task runs: DiskcacheManager, Flask-Caching's
FileSystemCache/SimpleCache, found in the app's sources before any AWS call; the template's
fallback on REDIS_URL passes with CACHE=redis; ALLOW_LOCAL_CACHE=true lets it through."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dashscale.config import load_config
from dashscale.errors import ConfigError
from dashscale.steps.build import check_shared_cache, local_caches
from tests.conftest import REPO_ROOT
from tests.support.operating import IMAGE, said
from tests.support.recording import recording

TEMPLATE = REPO_ROOT / "templates" / "background" / "src"
BASE = {"APP_NAME": "demo", "AWS_REGION": "us-east-1"}

DISKCACHE = """\
import diskcache
from dash import Dash, DiskcacheManager

manager = DiskcacheManager(diskcache.Cache("./cache"))
app = Dash(__name__, background_callback_manager=manager)
server = app.server
"""
FLASK_CACHING = """\
from dash import Dash
from flask_caching import Cache

app = Dash(__name__)
cache = Cache(app.server, config={"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": "/tmp/c"})
"""
SUBSCRIPT = """\
from dash import Dash

app = Dash(__name__)
app.server.config["CACHE_TYPE"] = "simple"
"""
REDIS_ONLY = """\
import os
from celery import Celery
from dash import CeleryManager, Dash

celery_app = Celery(__name__, broker=os.environ["REDIS_URL"])
app = Dash(__name__, background_callback_manager=CeleryManager(celery_app))
"""


def sources(tmp_path: Path, app_py: str) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "app.py").write_text(app_py)
    (src / "requirements.txt").write_text("dash\n")
    return tmp_path


def config(folder: Path, **values: str):
    return load_config(environ={**BASE, **values}, project_dir=folder)


@pytest.mark.parametrize(
    ("app_py", "found"),
    [
        (DISKCACHE, "app.py:4 DiskcacheManager"),
        (FLASK_CACHING, "app.py:5 CACHE_TYPE=FileSystemCache"),
        (SUBSCRIPT, "app.py:4 CACHE_TYPE=simple"),
    ],
)
def test_a_per_task_cache_on_several_tasks_is_refused(
    tmp_path: Path, app_py: str, found: str
) -> None:
    folder = sources(tmp_path, app_py)
    assert local_caches(folder / "src", redis=True) == [found]
    with pytest.raises(ConfigError) as error:
        check_shared_cache(config(folder))
    message = f"{error.value.message} {error.value.hint}"
    assert error.value.message.startswith(f"src/{found} keeps its data on one task")
    assert "up to 3 tasks" in message and "CACHE=redis" in message and "CeleryManager" in message
    assert "ALLOW_LOCAL_CACHE=true" in message and "\n" not in message
    # autoscaling up to more than one task counts too
    with pytest.raises(ConfigError, match="up to 4 tasks"):
        check_shared_cache(config(folder, DESIRED_COUNT="1", MIN_COUNT="1", MAX_COUNT="4"))


def test_one_task_or_allow_local_cache_lets_it_through(tmp_path: Path) -> None:
    folder = sources(tmp_path, DISKCACHE)
    check_shared_cache(config(folder, DESIRED_COUNT="1"))
    check_shared_cache(config(folder, ALLOW_LOCAL_CACHE="true"))


def test_a_shared_cache_app_passes(tmp_path: Path) -> None:
    folder = sources(tmp_path, REDIS_ONLY)
    assert local_caches(folder / "src", redis=False) == []
    check_shared_cache(config(folder))


def test_the_templates_fallback_passes_only_with_cache_redis(tmp_path: Path) -> None:
    shutil.copytree(TEMPLATE, tmp_path / "src")
    check_shared_cache(config(tmp_path, CACHE="redis", WORKERS="1"))
    # without CACHE=redis there is no REDIS_URL: the fallback is what runs, on three tasks
    found = local_caches(tmp_path / "src", redis=False)
    assert [f.split(" ", 1)[1] for f in found] == ["DiskcacheManager", "CACHE_TYPE=FileSystemCache"]
    with pytest.raises(ConfigError, match=r"DiskcacheManager \(and 1 more\) keeps its data"):
        check_shared_cache(config(tmp_path))


def test_up_refuses_before_any_aws_call(aws: str, project: Path, run, no_docker: None) -> None:
    (project / "src" / "app.py").write_text(DISKCACHE)
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE)
    assert result.exit_code == 2, result.output
    assert calls.operations == []
    assert "src/app.py:4 DiskcacheManager keeps its data on one task" in said(result.output)

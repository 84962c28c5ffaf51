"""Build without an engine: entry point detection, template rendering, context and tags."""

from __future__ import annotations

import io
import socket
import subprocess
import tarfile
from pathlib import Path

import pytest

from dashscale.config import FARGATE_CPUS, load_config
from dashscale.errors import ConfigError
from dashscale.project_files import bundled
from dashscale.steps.build import (
    COMPRESS_REQUIREMENT,
    GUNICORN_REQUIREMENT,
    WSGI_ENTRY,
    content_tag,
    extra_requirements,
    make_context,
    port_is_free,
    render_dockerfile,
    source_labels,
    worker_layout,
    wsgi_target,
)


def write_app(folder: Path, body: str) -> Path:
    path = folder / "app.py"
    path.write_text(body)
    return path


def test_wsgi_target(tmp_path: Path) -> None:
    served = write_app(tmp_path, "app = 1\nserver = app\n")
    assert wsgi_target(served, compress=False) == ("app:server", None)
    assert wsgi_target(served) == ("dashscale_wsgi:server", WSGI_ENTRY.read_text())
    only_app = write_app(tmp_path, "from dash import Dash\napp = Dash()\n")
    target, shim = wsgi_target(only_app, compress=False)
    assert target == "dashscale_wsgi:server" and "server = app.server" in shim
    assert wsgi_target(only_app)[1] == WSGI_ENTRY.read_text()
    with pytest.raises(ConfigError, match="neither"):
        wsgi_target(write_app(tmp_path, "def make():\n    app = 1\n"))
    with pytest.raises(ConfigError, match="line 1"):
        wsgi_target(write_app(tmp_path, "app = (\n"))


@pytest.mark.parametrize(
    ("requirements", "compress", "extra"),
    [
        ("dash\n", True, [GUNICORN_REQUIREMENT, COMPRESS_REQUIREMENT]),
        ("dash\n", False, [GUNICORN_REQUIREMENT]),
        ("dash\ngunicorn==22.0\n", True, [COMPRESS_REQUIREMENT]),
        ("Gunicorn>=21 # web\nFlask_Compress==1.14\n", True, []),
        ("dash[compress]>=2.17\ngunicorn\n", True, []),
        ("dash[testing, compress]\ngunicorn\n", True, []),
        ("# gunicorn\n# flask-compress\n", True, [GUNICORN_REQUIREMENT, COMPRESS_REQUIREMENT]),
        ("gunicorn-extras\nflask-compressor\n", False, [GUNICORN_REQUIREMENT]),
    ],
)
def test_extra_requirements(requirements: str, compress: bool, extra: list[str]) -> None:
    assert extra_requirements(requirements, compress) == extra


def test_worker_layout_covers_every_fargate_size() -> None:
    # measured up to 2048; from 1024 up, one worker per vCPU (extrapolated beyond 2048)
    assert worker_layout(256) == (1, 4) and worker_layout(512) == (1, 2)
    for cpu in FARGATE_CPUS[2:]:
        assert worker_layout(cpu) == (cpu // 1024, 4)


def test_render_dockerfile(tmp_path: Path) -> None:
    config = load_config(
        environ={
            "APP_NAME": "demo",
            "AWS_REGION": "eu-west-1",
            "APP_PORT": "9000",
            "BASE_IMAGE": "python:3.11-slim",
        },
        project_dir=tmp_path,
    )
    text = render_dockerfile(
        bundled("Dockerfile.template").read_text(),
        config,
        "app:server",
        [GUNICORN_REQUIREMENT, COMPRESS_REQUIREMENT],
    )
    assert "FROM python:3.11-slim" in text
    assert '"0.0.0.0:9000"' in text and "EXPOSE 9000" in text
    assert "'gunicorn>=22' 'flask-compress==1.25'" in text and "{{" not in text
    assert '"--workers", "1", "--threads", "4"' in text  # TASK_CPU=1024's measured layout
    assert "USER 10001" in text
    # dependencies are installed before the source is copied
    assert text.index("requirements.txt /app/") < text.index("COPY app/ /app/")
    with pytest.raises(ConfigError, match="unknown placeholder"):
        render_dockerfile("FROM {{ NOPE }}", config, "app:server", [])


def make_project(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.py").write_text("from dash import Dash\napp = Dash()\nserver = app.server\n")
    (src / "requirements.txt").write_text("dash\n")
    (src / ".env").write_text("SECRET=1\n")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"x")
    (tmp_path / ".env").write_text("APP_NAME=demo\nAWS_REGION=eu-west-1\n")
    return tmp_path


def test_context_holds_only_src_and_dockerfile(tmp_path: Path) -> None:
    config = load_config(environ={}, project_dir=make_project(tmp_path))
    context = make_context(config)
    assert sorted(context.files) == [
        "Dockerfile",
        "app/app.py",
        "app/dashscale_wsgi.py",
        "app/requirements.txt",
    ]
    with tarfile.open(fileobj=io.BytesIO(context.tar())) as archive:
        assert sorted(archive.getnames()) == sorted(context.files)


def test_compress_false_builds_todays_image(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    on = make_context(load_config(environ={}, project_dir=project)).files
    off = make_context(load_config(environ={"COMPRESS": "false"}, project_dir=project)).files
    assert b"flask-compress" in on["Dockerfile"] and b'"dashscale_wsgi:server"' in on["Dockerfile"]
    assert "app/dashscale_wsgi.py" not in off
    assert b"flask-compress" not in off["Dockerfile"] and b'"app:server"' in off["Dockerfile"]


def test_project_template_overrides_builtin(tmp_path: Path) -> None:
    config = load_config(environ={}, project_dir=make_project(tmp_path))
    (tmp_path / "Dockerfile.template").write_text("FROM {{ BASE_IMAGE }}\n# mine\n")
    assert b"# mine" in make_context(config).files["Dockerfile"]


def test_tag_follows_content(tmp_path: Path) -> None:
    config = load_config(environ={}, project_dir=make_project(tmp_path))
    first = content_tag(config, make_context(config))
    assert first == content_tag(config, make_context(config))
    (tmp_path / "src" / "app.py").write_text("app = 1\nserver = app\n# changed\n")
    assert content_tag(config, make_context(config)) != first
    port = load_config(environ={"APP_PORT": "9000"}, project_dir=tmp_path)
    assert content_tag(port, make_context(port)) != content_tag(config, make_context(config))
    fixed = load_config(environ={"IMAGE_TAG": "v1.2"}, project_dir=tmp_path)
    assert content_tag(fixed, make_context(fixed)) == "v1.2"


def test_a_commit_is_a_label_not_part_of_the_tag(tmp_path: Path) -> None:
    config = load_config(environ={}, project_dir=make_project(tmp_path))
    untracked = content_tag(config, make_context(config))
    assert source_labels(config) == {}  # not in git: no label

    def git(*args: str) -> str:
        command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
        return subprocess.run(
            command, cwd=tmp_path, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    git("add", "src")
    git("commit", "-qm", "first")
    commit = git("log", "-1", "--format=%h", "--abbrev=7")
    assert content_tag(config, make_context(config)) == untracked
    assert source_labels(config) == {"dashscale.commit": commit}
    (tmp_path / "src" / "app.py").write_text("app = 1\nserver = app\n# changed\n")
    assert source_labels(config) == {"dashscale.commit": f"{commit}-dirty"}


def test_missing_src_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("APP_NAME=demo\nAWS_REGION=eu-west-1\n")
    with pytest.raises(ConfigError, match="no src/"):
        make_context(load_config(environ={}, project_dir=tmp_path))


def test_a_port_whose_last_connection_is_in_time_wait_is_free() -> None:
    """The smoke check's previous run leaves its connection in TIME_WAIT for a minute."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        assert not port_is_free(port)  # something listens
        accepted.close()  # the server's side closes first: its end waits in TIME_WAIT
        client.recv(1)
        client.close()
    assert port_is_free(port)


def test_a_port_something_listens_on_is_busy() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        assert not port_is_free(server.getsockname()[1])


def test_app_env_stays_out_of_the_image_and_feeds_the_smoke_check(tmp_path: Path) -> None:
    from dashscale.context import Context
    from dashscale.steps.build import smoke_environment
    from dashscale.ui import UI

    project = make_project(tmp_path)
    (project / "app.env").write_text(
        "APP_TITLE=Distinctive-Title-77\nDB=ssm:/shared/db\nAPI=secretsmanager:api:token\n"
    )
    config = load_config(environ={}, project_dir=project)
    context = make_context(config)
    assert not any("app.env" in name for name in context.files)
    assert b"Distinctive-Title-77" not in context.tar()
    ctx = Context(config=config, ui=UI())
    assert smoke_environment(ctx) == {
        "APP_TITLE": "Distinctive-Title-77",
        "DB": "dashscale-smoke-check",
        "API": "dashscale-smoke-check",
    }
    (project / "app.env").write_text("9LIVES=x\n")
    with pytest.raises(ConfigError, match="9LIVES"):
        smoke_environment(ctx)

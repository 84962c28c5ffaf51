"""End to end on the real Docker engine: build the example app, run it, use it over HTTP."""

from __future__ import annotations

import gzip
import io
import json
import re
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import brotli
import pytest

from tests.support.operating import installed_command

pytestmark = pytest.mark.docker


def http(url: str, body: dict | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


def encoded(url: str, accept: str | None) -> tuple[str | None, bytes]:
    """Content-Encoding and the body as sent (urllib decodes nothing)."""
    headers = {"Accept-Encoding": accept} if accept is not None else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as answer:
        return answer.headers.get("Content-Encoding"), answer.read()


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            http(url)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_build_serves_the_example_app(project: Path, run, docker_client, base_image: str) -> None:
    result = run("build")
    assert result.exit_code == 0, result.output
    ref = result.stdout.strip().splitlines()[-1]
    assert ref.startswith("demo:")
    image = docker_client.images.get(ref)
    assert "demo:latest" in image.tags
    assert image.attrs["Config"]["User"].startswith("10001")
    assert image.attrs["Architecture"] == "amd64"
    assert image.labels["dashscale.architecture"] == "X86_64"

    port = int((project / ".env").read_text().split("APP_PORT=")[1].split()[0])
    container = docker_client.containers.run(ref, detach=True, network_mode="host")
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        status, page = http(f"http://127.0.0.1:{port}/")
        assert status == 200 and "dashscale example" in page
        status, answer = http(
            f"http://127.0.0.1:{port}/_dash-update-component",
            {
                "output": "summary.children",
                "outputs": {"id": "summary", "property": "children"},
                "inputs": [{"id": "points", "property": "value", "value": 7}],
                "changedPropIds": ["points.value"],
            },
        )
        assert status == 200
        assert json.loads(answer)["response"]["summary"]["children"] == "7 points squared is 49"
        # compressed as the client asks, and not at all when it does not ask
        bundle = re.search(r'src="(/_dash-component-suites/[^"]+dash_renderer[^"]+)"', page)
        assert bundle is not None, page
        url = f"http://127.0.0.1:{port}{bundle.group(1)}"
        plain = encoded(url, None)
        assert plain[0] is None and b"dash" in plain[1]
        gzipped, brotli_ = encoded(url, "gzip, deflate"), encoded(url, "gzip, deflate, br")
        assert gzipped[0] == "gzip" and gzip.decompress(gzipped[1]) == plain[1]
        assert brotli_[0] == "br" and brotli.decompress(brotli_[1]) == plain[1]
        assert len(brotli_[1]) * 3 < len(plain[1])
        # the image runs as a non-root user and holds nothing from outside src/
        check = container.exec_run(["sh", "-c", "id -u; ls -A /app; ls /root/.cache 2>&1"])
        out = check.output.decode()
        assert out.splitlines()[0] == "10001"
        assert ".env" not in out and "Dockerfile" not in out
        assert "gunicorn" in container.top()["Processes"][0][-1]
    finally:
        container.remove(force=True)
    # the smoke check left no container behind
    assert not docker_client.containers.list(all=True, filters={"label": "dashscale.check"})


def test_source_change_rebuilds_only_the_source_layer(
    project: Path, run, docker_client, base_image: str
) -> None:
    first = run("build", "--no-check")
    assert first.exit_code == 0, first.output
    app = project / "src" / "app.py"
    app.write_text(app.read_text().replace("Hello from dashscale", "Hello again"))
    started = time.monotonic()
    second = run("build", "--no-check", "--verbose")
    assert second.exit_code == 0, second.output
    assert time.monotonic() - started < 20
    assert "Using cache" in second.output  # the dependency layer came from the cache
    assert first.stdout.strip() != second.stdout.strip()


def test_only_app_defined_is_served_through_the_shim(
    project: Path, run, docker_client, base_image: str
) -> None:
    app = project / "src" / "app.py"
    app.write_text(app.read_text().replace("server = app.server", ""))
    result = run("build")  # the smoke check proves gunicorn found the server
    assert result.exit_code == 0, result.output
    assert "smoke check" in result.output and "passed" in result.output


def test_failing_app_shows_its_logs_and_leaves_no_container(
    project: Path, run, docker_client, base_image: str
) -> None:
    app = project / "src" / "app.py"
    app.write_text(app.read_text() + "\nraise RuntimeError('boom at import')\n")
    result = run("build")
    assert result.exit_code == 1
    assert "boom at import" in result.output
    assert "last log lines" in result.output
    assert not docker_client.containers.list(all=True, filters={"label": "dashscale.check"})


def test_unreachable_engine_is_a_clear_error(project: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = subprocess.run(["dashscale", "build"], capture_output=True, text=True, cwd=project)
    assert result.returncode == 1
    assert "cannot reach the Docker engine" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["build"], ["up", "--sandbox"]], ids=["build", "up"])
def test_ctrl_c_during_the_smoke_check_leaves_no_container(
    project: Path, docker_client, base_image: str, command: list[str]
) -> None:
    """In `build` the check runs in the main thread; in `up` in a piece of the task graph, which
    the command does not wait for beyond a bound: either way the container goes, within 3 s."""
    import signal

    app = project / "src" / "app.py"
    app.write_text("import time\ntime.sleep(60)\n" + app.read_text())  # a slow-starting app
    process = subprocess.Popen(
        [*installed_command(), *command], cwd=project, stderr=subprocess.PIPE, text=True
    )
    label = {"label": "dashscale.check=demo"}
    deadline = time.monotonic() + 180
    while not docker_client.containers.list(all=True, filters=label):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the smoke check never started a container"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - sent < 3, stderr
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert not docker_client.containers.list(all=True, filters=label)


def new_layers(docker_client, image, base: str) -> list[tarfile.TarFile]:
    """The image's layers that its base image does not have, from `docker save`, in order."""
    base_layers = set(docker_client.images.get(base).attrs["RootFS"]["Layers"])
    diff_ids = image.attrs["RootFS"]["Layers"]
    saved = tarfile.open(fileobj=io.BytesIO(b"".join(image.save())))  # noqa: SIM115 (memory)
    (manifest,) = json.load(saved.extractfile("manifest.json"))
    layers = []
    for diff_id, path in zip(diff_ids, manifest["Layers"], strict=True):
        if diff_id not in base_layers:
            layers.append(tarfile.open(fileobj=saved.extractfile(path)))  # noqa: SIM115
    return layers


def test_no_piece_of_a_secret_gets_into_the_image(
    project: Path, run, docker_client, base_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Secrets lie around a project: the OIDC client secret in the environment, a src/.env, a
    value in app.env. None of them, not four characters of one, may be in the image: its
    configuration (environment, labels, command), its history, or any file of its own layers."""
    from tests.support.leaks import assert_no_leak, distinctive_secret

    in_environment, in_src_env, in_app_env = (distinctive_secret() for _ in range(3))
    secrets = [in_environment, in_src_env, in_app_env]
    monkeypatch.setenv("OIDC_CLIENT_SECRET", in_environment)
    (project / "src" / ".env").write_text(f"DB_PASSWORD={in_src_env}\n")
    (project / "app.env").write_text(f"APP_TITLE={in_app_env}\n")
    result = run("build", "--no-check")
    assert result.exit_code == 0, result.output
    image = docker_client.images.get(result.stdout.strip().splitlines()[-1])

    assert_no_leak(json.dumps(image.attrs), secrets, "the image's configuration")
    history = subprocess.run(
        ["docker", "history", "--no-trunc", image.id], capture_output=True, text=True, check=True
    ).stdout
    assert_no_leak(history + json.dumps(image.history()), secrets, "the image's history")
    layers = new_layers(docker_client, image, base_image)
    assert len(layers) >= 2, "no layers of its own: nothing would be checked"  # deps, source
    files = 0
    for layer in layers:
        for member in layer.getmembers():
            assert_no_leak(member.name, secrets, "a file name")
            if not member.isfile():
                continue
            files += 1
            data = layer.extractfile(member).read()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            where = f"/{member.name}"
            if text is None or "-packages/" in member.name:
                # compiled files and the installed packages (tens of MB): 4 characters could
                # occur there by chance, 8 cannot
                assert_no_leak(data.decode("latin-1"), secrets, where, window=8)
            else:
                assert_no_leak(text, secrets, where)
    assert files > 0

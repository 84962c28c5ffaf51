"""Tasks of the background template on this machine: a real Redis server, the image built from
`dashscale init --template background`, app containers ("tasks") and worker containers, all on
loopback with host networking, and a client that talks to a task as Dash's renderer does.

Used by the cache benchmark (benchmarks/cache.py) and the tests of background callbacks
(tests/test_background_docker.py). Everything started here is stopped by the same object.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REDIS_SERVER = "/usr/bin/redis-server"  # Debian's redis-server package
LABEL = "dashscale.background-test"
CONFIG = re.compile(r'<script id="_dash-config" type="application/json">(.*?)</script>', re.S)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A real Redis on a free loopback port, nothing saved to disk; its URL. Stopped by pid."""
    port = free_port()
    folder = tempfile.mkdtemp(prefix="redis-")
    process = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            folder,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), 1) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def build_template_image(base_image: str, name: str) -> str:
    """`dashscale init --template background` in a new folder, then `dashscale build` (with its
    smoke check: the image serves without REDIS_URL as its non-root user); the image's ref."""
    folder = Path(tempfile.mkdtemp(prefix="background-"))
    command = str(Path(sys.executable).parent / "dashscale")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    try:
        subprocess.run(
            [
                command,
                "init",
                "--template",
                "background",
                "--app-name",
                name,
                "--region",
                "us-east-1",
                "--set",
                f"BASE_IMAGE={base_image}",
                "--set",
                f"APP_PORT={free_port()}",
            ],
            cwd=folder,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        built = subprocess.run(
            [command, "build"], cwd=folder, env=env, capture_output=True, text=True
        )
        if built.returncode != 0:
            raise RuntimeError(f"dashscale build failed:\n{built.stdout}\n{built.stderr}")
        return built.stdout.strip().splitlines()[-1]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Stack:
    """App and worker containers of one image; `stop` removes every one it started."""

    client: Any  # docker-py
    image: str
    env: dict[str, str] = field(default_factory=dict)
    containers: list[Any] = field(default_factory=list)

    def app(self, **env: str) -> str:
        """A task: gunicorn as the image runs it, on its own port; its base URL once it serves."""
        port = free_port()
        command = [
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "4",
            "dashscale_wsgi:server",
        ]
        self._run(command, env)
        url = f"http://127.0.0.1:{port}"
        wait_serving(url, self.containers[-1])
        return url

    def worker(self, **env: str) -> Any:
        """A worker task: dashscale's default worker command; its container once it is ready."""
        command = [
            "celery",
            "-A",
            "app:celery_app",
            "worker",
            "--loglevel=INFO",
            "--concurrency",
            "2",
        ]
        container = self._run(command, env)
        deadline = time.monotonic() + 60
        while b" ready." not in container.logs():
            container.reload()
            if container.status == "exited" or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{container.logs().decode()}")
            time.sleep(0.3)
        return container

    def _run(self, command: list[str], env: dict[str, str]) -> Any:
        container = self.client.containers.run(
            self.image,
            command,
            detach=True,
            network_mode="host",
            labels={LABEL: "1"},
            environment={**self.env, **env},
        )
        self.containers.append(container)
        return container

    def stop(self) -> None:
        for container in self.containers:
            with contextlib.suppress(Exception):
                container.remove(force=True)
        self.containers.clear()


def wait_serving(url: str, container: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=5).close()
            return
        except OSError:
            container.reload()
            if container.status == "exited" or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not serve:\n{container.logs().decode()}") from None
            time.sleep(0.3)


# --- talking to a task as Dash's renderer does ---------------------------------------------------


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        text = answer.read().decode()
        return answer.status, (json.loads(text) if text else {})


def page_token(task: str) -> str:
    """The page's signed `end_id`, which the renderer sends with every callback request."""
    with urllib.request.urlopen(task + "/", timeout=10) as answer:
        page = answer.read().decode()
    match = CONFIG.search(page)
    if match is None:
        raise AssertionError(f"no _dash-config on {task}/")
    return str(json.loads(match.group(1))["end_id"])


def callback_body(output: str, component: str, prop: str, value: Any) -> dict[str, Any]:
    out_id, out_prop = output.split(".")
    return {
        "output": output,
        "outputs": {"id": out_id, "property": out_prop},
        "inputs": [{"id": component, "property": prop, "value": value}],
        "changedPropIds": [f"{component}.{prop}"],
        "state": [],
    }


RUN_JOB = callback_body("result.children", "run", "n_clicks", 1)


@dataclass
class Polled:
    progress: list[str]  # each distinct progress text, in order
    result: str | None  # the callback's output, when it came
    statuses: list[int]


def start_and_poll(start_on: str, poll_on: str, timeout: float = 30) -> Polled:
    """Starts the background job through one task and polls another for it, as the browser
    does through the load balancer."""
    token = page_token(start_on)
    _, handles = post(f"{start_on}/_dash-update-component?endId={token}", RUN_JOB)
    query = urllib.parse.urlencode(
        {"endId": token, "cacheKey": handles["cacheKey"], "job": handles["job"]}
    )
    polled = Polled([], None, [])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, answer = post(f"{poll_on}/_dash-update-component?{query}", RUN_JOB)
        polled.statuses.append(status)
        shown = (answer.get("progress") or {}).get("progress.children")
        if shown and (not polled.progress or polled.progress[-1] != shown):
            polled.progress.append(shown)
        if "response" in answer:
            polled.result = answer["response"]["result"]["children"]
            return polled
        if status == 204:  # the task knows no such job: nothing will ever come
            return polled
        time.sleep(0.2)
    return polled


def timed_square(task: str, number: int) -> tuple[float, str]:
    """Seconds the memoized callback takes to answer on `task`, and its answer."""
    body = callback_body("squared.children", "number", "value", number)
    started = time.perf_counter()
    _, answer = post(f"{task}/_dash-update-component", body)
    return time.perf_counter() - started, answer["response"]["squared"]["children"]

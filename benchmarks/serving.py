"""Serving benchmark: the image as dashscale builds it against Dash's development server.

Both run from the same image of the benchmarks' app (`benchmarks/app/`: the example app plus a
time series graph), one after the other in the same run, each limited to one CPU (`docker run
--cpus 1`) with host networking on a free loopback port: the image as built (gunicorn with the
worker layout dashscale picks for TASK_CPU=1024), and `app.run(debug=False)` of the same app
(Flask's threaded development server). wrk (or, without it, a small Python load generator)
measures requests per second and latency percentiles of the page (GET /) and of the callback
(POST /_dash-update-component). Containers and the image are always removed, also on Ctrl-C.
The other serving benchmarks (`layouts.py`, `transfer.py`) reuse this module's pieces.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.build import native_platform
from benchmarks.common import (
    LABEL,
    RUN_ID,
    Table,
    docker_client,
    progress,
    ratio,
    require_base_image,
)
from dashscale.config import Config
from dashscale.context import Context
from dashscale.steps.build import Image, build, free_port, worker_layout
from dashscale.ui import UI

APP_NAME = f"bench-serve-{RUN_ID}"
TASK_CPU = 1024
APP_DIR = Path(__file__).resolve().parent / "app"
CPUS = 1.0  # docker run --cpus 1: TASK_CPU=1024
THREADS, CONNECTIONS = 2, 16
DURATION, WARMUP = 10, 2  # seconds of load per endpoint, and before the first one
START_TIMEOUT = 60.0
CALLBACK_PATH = "/_dash-update-component"
CALLBACK_BODY = {
    "output": "summary.children",
    "outputs": {"id": "summary", "property": "children"},
    "inputs": [{"id": "points", "property": "value", "value": 7}],
    "changedPropIds": ["points.value"],
}
CALLBACK_ANSWER = "7 points squared is 49"
DEV_SERVER = "from app import app; app.run(host='127.0.0.1', port={port}, debug=False)"


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    body: bytes | None = None  # POSTed as JSON when set


PAGE = Endpoint("page  GET /", "/")
CALLBACK = Endpoint(
    f"callback  POST {CALLBACK_PATH}", CALLBACK_PATH, json.dumps(CALLBACK_BODY).encode()
)


@dataclass(frozen=True)
class Load:
    """One load run: throughput, latency percentiles in ms, failed requests."""

    requests_per_second: float
    p50: float
    p90: float
    p99: float
    errors: int


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    command: list[str] | None  # None: the image's own CMD
    cpus: float = CPUS


def dev_server(port: int, cpus: float = CPUS) -> Server:
    return Server("dev server", port, ["python", "-c", DEV_SERVER.format(port=port)], cpus)


def with_layout(command: list[str], workers: int, threads: int) -> list[str]:
    """The image's gunicorn command with another number of workers and threads."""
    changed = list(command)
    for flag, value in (("--workers", workers), ("--threads", threads)):
        changed[changed.index(flag) + 1] = str(value)
    return changed


# --- load generators -------------------------------------------------------------------------


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_script(endpoint: Endpoint, folder: Path) -> list[str]:
    if endpoint.body is None:
        return []
    script = folder / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{endpoint.body.decode()}]==]\n"
    )
    return ["--script", str(script)]


def run_wrk(port: int, endpoint: Endpoint, duration: int) -> Load:
    with tempfile.TemporaryDirectory(prefix="dashscale-bench-wrk-") as folder:
        command = [
            "wrk",
            f"-t{THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            "--latency",
            *wrk_script(endpoint, Path(folder)),
            f"http://127.0.0.1:{port}{endpoint.path}",
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + 30, check=True
        )
    return parse_wrk(result.stdout)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str) -> Load:
    """Requests/s, the 50/90/99 % latencies and the failed requests from `wrk --latency`."""
    latencies = {
        percent: float(value) * _UNITS_MS[unit]
        for percent, value, unit in re.findall(
            r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M
        )
    }
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if rate is None or not {"50", "90", "99"} <= latencies.keys():
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx.group(1)) if non_2xx else 0
    errors += sum(int(n) for n in sockets.groups()) if sockets else 0
    return Load(float(rate.group(1)), latencies["50"], latencies["90"], latencies["99"], errors)


def run_python_load(port: int, endpoint: Endpoint, duration: int) -> Load:
    """The fallback without wrk: CONNECTIONS keep-alive connections in threads."""
    deadline = time.monotonic() + duration
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        headers = {"Content-Type": "application/json"} if endpoint.body else {}
        method = "POST" if endpoint.body else "GET"
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                connection.request(method, endpoint.path, body=endpoint.body, headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status < 400
            except (OSError, http.client.HTTPException):
                connection.close()
                ok = False
            with lock:
                if ok:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors[0] += 1
        connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(latencies) < 2:
        raise RuntimeError(f"no successful request to {endpoint.path} on port {port}")
    cuts = statistics.quantiles(latencies, n=100)
    return Load(len(latencies) / duration, cuts[49], cuts[89], cuts[98], errors[0])


def load_generator() -> tuple[str, Callable[[int, Endpoint, int], Load]]:
    if wrk_available():
        return f"wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s", run_wrk
    return f"Python load generator, {CONNECTIONS} connections, {DURATION} s", run_python_load


# --- the servers -----------------------------------------------------------------------------


def build_image(client: Any, project: Path, port: int) -> Image:
    """The benchmarks' app's image, built by dashscale (layer cache allowed) for APP_PORT=port."""
    shutil.copytree(APP_DIR, project / "src", ignore=shutil.ignore_patterns("__pycache__"))
    config = Config(
        app_name=APP_NAME,
        aws_region="us-east-1",
        app_port=port,
        task_cpu=TASK_CPU,
        base_image=require_base_image(client),
        platform=native_platform(),
        project_dir=project,
    )
    quiet = Console(file=io.StringIO())
    return build(Context(config=config, ui=UI(err=quiet, out=quiet), _docker=client))


@contextlib.contextmanager
def running(client: Any, image: Image, server: Server) -> Iterator[Any]:
    """The server's container on its CPUs with host networking; always removed afterwards."""
    options: dict[str, Any] = {
        "detach": True,
        "network_mode": "host",
        "nano_cpus": int(server.cpus * 1e9),
        "labels": {LABEL: RUN_ID},
    }
    if server.command is not None:
        options["command"] = server.command
    try:
        container = client.containers.run(image.ref, **options)
        wait_until_serving(container, server.port)
        yield container
    finally:
        remove_containers(client)


def remove_containers(client: Any) -> None:
    """Removes every container this run started (found by its label), whatever state it is in."""
    import docker

    for container in client.containers.list(all=True, filters={"label": f"{LABEL}={RUN_ID}"}):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


def wait_until_serving(container: Any, port: int) -> None:
    """Until the callback gives its answer; fails with the container's log when it never does."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        container.reload()
        if container.status in ("exited", "dead"):
            break
        with contextlib.suppress(OSError, urllib.error.URLError):
            if CALLBACK_ANSWER in request(port, CALLBACK):
                return
        time.sleep(0.3)
    log = container.logs(tail=20).decode(errors="replace")
    raise RuntimeError(f"the server on port {port} never answered the callback:\n{log}")


def request(port: int, endpoint: Endpoint) -> str:
    headers = {"Content-Type": "application/json"}
    url = f"http://127.0.0.1:{port}{endpoint.path}"
    message = urllib.request.Request(url, data=endpoint.body, headers=headers)
    with urllib.request.urlopen(message, timeout=5) as response:
        return response.read().decode()


def measure(
    client: Any, image: Image, server: Server, endpoints: tuple[Endpoint, ...] = ()
) -> dict[Endpoint, Load]:
    """Load on each endpoint (default: the page, then the callback) after a warm-up."""
    _, generate = load_generator()
    with running(client, image, server):
        progress(f"serving: {server.name}: warming up for {WARMUP} s")
        generate(server.port, PAGE, WARMUP)
        results = {}
        for endpoint in endpoints or (PAGE, CALLBACK):
            progress(f"serving: {server.name}: {endpoint.name} for {DURATION} s")
            results[endpoint] = generate(server.port, endpoint, DURATION)
    return results


# --- the table -------------------------------------------------------------------------------


def row(server: str, endpoint: Endpoint, load: Load) -> tuple[str, ...]:
    return (
        endpoint.name,
        server,
        f"{load.requests_per_second:,.0f}",
        f"{load.p50:.1f}",
        f"{load.p90:.1f}",
        f"{load.p99:.1f}",
        str(load.errors),
    )


def ratio_row(endpoint: Endpoint, image: Load, dev: Load) -> tuple[str, ...]:
    return (
        endpoint.name,
        "image / dev server",
        ratio(image.requests_per_second, dev.requests_per_second),
        ratio(image.p50, dev.p50),
        ratio(image.p90, dev.p90),
        ratio(image.p99, dev.p99),
        "",
    )


def table(image: dict[Endpoint, Load], dev: dict[Endpoint, Load], generator: str) -> Table:
    rows: list[tuple[str, ...]] = []
    for endpoint in (PAGE, CALLBACK):
        rows.append(row("dashscale image", endpoint, image[endpoint]))
        rows.append(row("dev server", endpoint, dev[endpoint]))
        rows.append(ratio_row(endpoint, image[endpoint], dev[endpoint]))
    speedup = image[CALLBACK].requests_per_second / dev[CALLBACK].requests_per_second
    tail_held = image[CALLBACK].p99 <= dev[CALLBACK].p99
    workers, threads = worker_layout(TASK_CPU)
    return Table(
        title="Serving on one CPU: dashscale's image vs Dash's development server",
        columns=("endpoint", "server", "requests/s", "p50 ms", "p90 ms", "p99 ms", "errors"),
        rows=tuple(rows),
        notes=(
            f"callbacks per second: the image serves {speedup:.2f}x the development server's "
            f"with p99 {ratio(image[CALLBACK].p99, dev[CALLBACK].p99)} of its p99 (goal: at "
            f"least 1.5x with p99 no worse: {'met' if speedup >= 1.5 and tail_held else 'NOT met'}"
            f"; at least 1.3x: {'met' if speedup >= 1.3 and tail_held else 'NOT met'}).",
            f"dashscale image: gunicorn as built for TASK_CPU={TASK_CPU} "
            f"({workers} workers x {threads} threads); "
            'dev server: the same image running `python -c "'
            + DEV_SERVER.format(port="PORT")
            + "\"` (Flask's threaded server). Each container --cpus 1 with host networking, "
            "one after the other; requests go to 127.0.0.1 only. image / dev server: requests/s "
            "above 1x and latencies below 1x favour the image.",
            f"load: {generator}, after a {WARMUP} s warm-up; it shares the machine's CPUs with "
            "the server. errors = non-2xx answers + socket errors.",
        ),
    )


def run() -> Table:
    client = docker_client()
    generator, _ = load_generator()
    image_port, dev_port = two_free_ports()
    servers = (Server("dashscale image", image_port, None), dev_server(dev_port))
    image = None
    try:
        image = prepare_image(client, image_port)
        results = [measure(client, image, server) for server in servers]
    finally:
        remove_containers(client)
        if image is not None:
            remove_image(client, image)
    return table(results[0], results[1], generator)


def prepare_image(client: Any, port: int) -> Image:
    with tempfile.TemporaryDirectory(prefix="dashscale-bench-serving-") as folder:
        progress("serving: building the benchmarks' app's image with dashscale")
        return build_image(client, Path(folder), port)


def two_free_ports() -> tuple[int, int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


def remove_image(client: Any, image: Image) -> None:
    import docker

    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
        client.images.remove(image.id, force=True)


if __name__ == "__main__":
    from benchmarks.common import main

    main(["serving"])

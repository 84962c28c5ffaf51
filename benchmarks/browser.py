"""Headless Chromium (Debian's `chromium`) opening a page as a visitor's browser would.

Used by the end-to-end browser test and by the serving benchmark, which reads from Chromium's
network log which URLs a first page load fetches. Every host but 127.0.0.1 is made unresolvable
and no proxy is used, so the browser's own background requests never leave the machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-pings",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
TIMEOUT = 120.0  # seconds for the whole browser process, on a loaded 2-core machine


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        raise RuntimeError("chromium not found: install Debian's chromium (scripts/test does)")
    return found


def render(url: str, budget_ms: int = 15_000, net_log: Path | None = None) -> str:
    """The page's DOM once its scripts ran for `budget_ms` of virtual time (network waits do
    not count): what a visitor sees, callbacks' outputs included. A fresh profile each time."""
    with tempfile.TemporaryDirectory(prefix="dashscale-chromium-") as profile:
        command = [
            chromium(),
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
            url,
        ]
        if net_log is not None:
            command.insert(-1, f"--log-net-log={net_log}")
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(f"chromium failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result.stdout


def requested(net_log: Path, origin: str) -> list[tuple[str, str]]:
    """(method, URL) of each request the page made to `origin`, in order, from a net log."""
    log = json.loads(net_log.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requests = []
    for event in log["events"]:
        params = event.get("params") or {}
        url = params.get("url", "")
        if event["type"] == start_job and url.startswith(origin):
            requests.append((params["method"], url))
    return requests

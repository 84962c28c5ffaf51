"""A visitor's browser: headless Chromium opens the app served by the built image.

The page must render and its callback must run (its answer in the DOM), so compression, the
WSGI entry or the worker layout can never break what users see.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import browser
from tests.support.servers import wait_for_http

pytestmark = pytest.mark.docker


def response_encodings(net_log: Path, origin: str) -> list[str]:
    """Content-Encoding of every response from `origin` the browser read ("" for none)."""
    log = json.loads(net_log.read_text())
    types = log["constants"]["logEventTypes"]
    urls: dict[int, str] = {}
    encodings = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] == types["URL_REQUEST_START_JOB"] and "url" in params:
            urls[event["source"]["id"]] = params["url"]
        elif event["type"] == types["HTTP_TRANSACTION_READ_RESPONSE_HEADERS"]:
            if not urls.get(event["source"]["id"], "").startswith(origin):
                continue
            headers = [h.lower() for h in params.get("headers", [])]
            found = [
                h.split(":", 1)[1].strip() for h in headers if h.startswith("content-encoding")
            ]
            encodings.append(found[0] if found else "")
    return encodings


def test_chromium_renders_the_page_and_runs_the_callback(
    project: Path, run, docker_client, base_image: str, tmp_path: Path
) -> None:
    result = run("build", "--no-check")
    assert result.exit_code == 0, result.output
    ref = result.stdout.strip().splitlines()[-1]
    port = int((project / ".env").read_text().split("APP_PORT=")[1].split()[0])
    origin = f"http://127.0.0.1:{port}"
    container = docker_client.containers.run(ref, detach=True, network_mode="host")
    try:
        wait_for_http(f"{origin}/", timeout=60)
        net_log = tmp_path / "net-log.json"
        dom = browser.render(f"{origin}/", net_log=net_log)
    finally:
        container.remove(force=True)
    assert "<h1>Hello from dashscale</h1>" in dom, dom[-2000:]
    # the slider starts at 10: the callback ran in the browser and its answer is on the page
    assert '<p id="summary">10 points squared is 100</p>' in dom, dom[-2000:]
    assert f"{origin}/_dash-update-component" in net_log.read_text()  # asked by the browser
    # the browser got compressed bundles and decoded them: the page would be blank otherwise
    assert "gzip" in response_encodings(net_log, origin) or "br" in response_encodings(
        net_log, origin
    )

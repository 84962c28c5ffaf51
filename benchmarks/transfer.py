"""Transfer benchmark: bytes on the wire for a visitor, compressed against not compressed.

The image of the benchmarks' app (with a `dcc.Graph`) runs as dashscale builds it. Headless
Chromium opens the page once and its network log says which requests a first load makes (the
page, every bundle including plotly.js, the layout, the dependencies, the initial callback).
Each of them is then made again asking for no compression (what every client got before
dashscale compressed: the same bodies), for gzip, and for brotli, and the bytes received are
added up: status line, headers and body as sent. Then the same for one callback answering a
20,000-point time series.
"""

from __future__ import annotations

import http.client
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks import browser, serving
from benchmarks.common import Table, docker_client, progress, ratio
from benchmarks.serving import CALLBACK, CALLBACK_PATH, Endpoint, Server

ENCODINGS = {"none": None, "gzip": "gzip, deflate", "brotli": "gzip, deflate, br"}
SERIES_BODY = {
    "output": "series.figure",
    "outputs": {"id": "series", "property": "figure"},
    "inputs": [{"id": "load", "property": "n_clicks", "value": 1}],
    "changedPropIds": ["load.n_clicks"],
}
SERIES = Endpoint("20,000-point callback", CALLBACK_PATH, json.dumps(SERIES_BODY).encode())
PLOTLY = "plotly.min.js"


@dataclass(frozen=True)
class Transfer:
    """Bytes received for a group of requests, by encoding asked for."""

    name: str
    requests: int
    received: dict[str, int]


def received(port: int, endpoint: Endpoint, accept: str | None) -> int:
    """Bytes of one answer as sent: status line, headers and the body without decoding."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"} if endpoint.body else {}
    # http.client asks for identity by itself when no Accept-Encoding is given
    if accept is not None:
        headers["Accept-Encoding"] = accept
    try:
        method = "POST" if endpoint.body else "GET"
        connection.request(method, endpoint.path, body=endpoint.body, headers=headers)
        response = connection.getresponse()
        body = response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {endpoint.path} answered {response.status}")
        status_line = f"HTTP/1.1 {response.status} {response.reason}\r\n"
        return len(status_line) + len(response.msg.as_bytes()) + len(body)
    finally:
        connection.close()


def page_requests(port: int, folder: Path) -> list[Endpoint]:
    """The requests a first page load makes, as Chromium made them; callbacks are replayed
    with the initial callback's body (the log does not keep bodies)."""
    origin = f"http://127.0.0.1:{port}"
    net_log = folder / "net-log.json"
    browser.render(f"{origin}/", net_log=net_log)
    endpoints = []
    for method, url in browser.requested(net_log, origin):
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if method == "POST":
            endpoints.append(Endpoint(path, parts.path, CALLBACK.body))
        else:
            endpoints.append(Endpoint(path, path))
    return endpoints


def transfer(port: int, name: str, endpoints: list[Endpoint]) -> Transfer:
    totals = {
        label: sum(received(port, endpoint, accept) for endpoint in endpoints)
        for label, accept in ENCODINGS.items()
    }
    return Transfer(name, len(endpoints), totals)


def measure(client: Any, image: Any, port: int) -> list[Transfer]:
    with serving.running(client, image, Server("dashscale image", port, None)):
        with tempfile.TemporaryDirectory(prefix="dashscale-bench-transfer-") as folder:
            progress("transfer: Chromium opens the page")
            page = page_requests(port, Path(folder))
        if not any(PLOTLY in endpoint.path for endpoint in page):
            raise RuntimeError(f"the page load never fetched {PLOTLY}: {page}")
        progress(f"transfer: {len(page)} requests and the large callback, three encodings each")
        return [
            transfer(port, "first page load with a dcc.Graph", page),
            transfer(port, f"of which {PLOTLY}", [e for e in page if PLOTLY in e.path]),
            transfer(port, "callback answering 20,000 points", [SERIES]),
        ]


def kilobytes(size: int) -> str:
    return f"{size / 1000:,.0f} kB"


def table(transfers: list[Transfer]) -> Table:
    rows = tuple(
        (
            t.name,
            str(t.requests),
            *(kilobytes(t.received[label]) for label in ENCODINGS),
            ratio(t.received["none"], t.received["gzip"]),
            ratio(t.received["none"], t.received["brotli"]),
        )
        for t in transfers
    )
    goals = [
        f"{t.name}: {ratio(t.received['none'], t.received['gzip'])} fewer bytes with gzip "
        f"(goal at least 3x: {'met' if t.received['none'] >= 3 * t.received['gzip'] else 'NOT met'}"
        ")"
        for t in (transfers[0], transfers[-1])
    ]
    return Table(
        title="Transfer: bytes on the wire, not compressed (before) vs gzip vs brotli",
        columns=("what", "requests", "none", "gzip", "brotli", "none / gzip", "none / brotli"),
        rows=rows,
        notes=(
            *goals,
            "bytes received: status line, headers and body as sent. Requests: those Chromium "
            "made to open the page (favicon and initial callback included); the answers were "
            "fetched again asking for each encoding. Browsers ask for brotli over HTTPS (the "
            "load balancer's listener with DOMAIN) and for gzip over plain HTTP.",
        ),
    )


def run() -> Table:
    client = docker_client()
    port = serving.free_port()
    image = None
    try:
        image = serving.prepare_image(client, port)
        transfers = measure(client, image, port)
    finally:
        serving.remove_containers(client)
        if image is not None:
            serving.remove_image(client, image)
    return table(transfers)


if __name__ == "__main__":
    from benchmarks.common import main

    main(["transfer"])

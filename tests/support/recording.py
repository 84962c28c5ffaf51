"""moto's request recorder: which AWS operations a command made, and which change things."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator

READ_PREFIXES = ("Describe", "List", "Get", "BatchGet", "Check", "Filter", "Simulate")


def _post(endpoint: str, path: str) -> None:
    request = urllib.request.Request(f"{endpoint}{path}", method="POST")
    urllib.request.urlopen(request, timeout=10).close()


def operation(entry: dict) -> str:
    """The operation name of a recorded request: Action (query), X-Amz-Target (JSON) or
    METHOD path (REST, e.g. Route 53)."""
    headers = entry.get("headers") or {}
    if isinstance(headers, str):
        headers = {}
    target = headers.get("X-Amz-Target") or headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    body = entry.get("body") or ""
    if entry.get("body_encoded") in (True, "True") and body:
        body = base64.b64decode(body).decode(errors="replace")
    action = urllib.parse.parse_qs(body).get("Action") if "Action=" in body else None
    if action:
        return action[0]
    return f"{entry.get('method')} {urllib.parse.urlparse(entry.get('url', '')).path}"


def service(entry: dict) -> str:
    """The AWS service a recorded request went to: the signing name in its Authorization
    header's credential scope (ACCESS-KEY/DATE/REGION/SERVICE/aws4_request)."""
    headers = entry.get("headers") or {}
    if isinstance(headers, str):
        return ""
    found = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", headers.get("Authorization", ""))
    return found.group(1) if found else ""


# REST reads sent as POST: Route 53's ListTagsForResources (POST /2013-04-01/tags/TYPE).
_REST_READS = re.compile(r"POST /2013-04-01/tags/[a-z]+/?")


def is_changing(op: str) -> bool:
    if " " in op:  # REST: GET reads, and the few reads sent as POST
        return not (op.startswith("GET ") or _REST_READS.fullmatch(op))
    return not op.startswith(READ_PREFIXES)


class Recording:
    def __init__(self) -> None:
        self.operations: list[str] = []
        self.services: list[str] = []  # the service of each operation, in the same order

    @property
    def changing(self) -> list[str]:
        return [op for op in self.operations if is_changing(op)]

    def changing_in(self, name: str) -> list[str]:
        """The changing operations sent to the service `name` (iam, ecs, ...)."""
        pairs = zip(self.services, self.operations, strict=True)
        return [op for svc, op in pairs if svc == name and is_changing(op)]


@contextlib.contextmanager
def recording(endpoint: str) -> Iterator[Recording]:
    """Records every request to moto's server inside the block (moto must have been imported
    with MOTO_ENABLE_RECORDING=true, which conftest sets)."""
    result = Recording()
    _post(endpoint, "/moto-api/recorder/reset-recording")
    _post(endpoint, "/moto-api/recorder/start-recording")
    try:
        yield result
    finally:
        _post(endpoint, "/moto-api/recorder/stop-recording")
        with urllib.request.urlopen(f"{endpoint}/moto-api/recorder/download-recording") as resp:
            lines = resp.read().decode().splitlines()
        entries = [json.loads(line) for line in lines if line.strip()]
        result.operations = [operation(entry) for entry in entries]
        result.services = [service(entry) for entry in entries]

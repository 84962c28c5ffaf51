"""An HTTP proxy in front of moto's server that makes AWS flaky the ways a hotel Wi-Fi does.

For each request it may answer 503 with the error body the service's protocol uses (without
forwarding), drop the connection before forwarding, or forward and then lose the response (AWS
acted, the client never hears). Faults are drawn from a seeded random generator, so a failing run
can be replayed; hooks let a test act at an exact operation (e.g. send Ctrl-C mid-request).
"""

from __future__ import annotations

import contextlib
import http.client
import random
import re
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.recording import is_changing
from tests.support.servers import free_port

_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")


@dataclass
class Faults:
    """Probabilities per request; `only` limits faults to operations matching a regex."""

    unavailable: float = 0.0  # answer 503 without forwarding
    drop: float = 0.0  # close the connection before forwarding
    lose: float = 0.0  # forward, then close without answering
    throttle: float = 0.0  # answer a throttling error without forwarding
    only: str | None = None
    seed: int = 7
    # A fault for the first request of every distinct operation (e.g. "lose": every create's
    # first answer is lost once), on top of the random ones.
    first_of_each: str | None = None
    # Fixed answers for operations: {operation: (HTTP status, error code, message)}.
    errors: dict[str, tuple[int, str, str]] = field(default_factory=dict)


@dataclass
class Seen:
    operation: str
    service: str
    fault: str | None


@dataclass
class FlakyAws:
    """Start with `FlakyAws(target_url, Faults(...))`; point AWS_ENDPOINT_URL at `.url`."""

    target: str
    faults: Faults = field(default_factory=Faults)
    # Called after a request was forwarded, before its response goes back: (operation) -> None.
    after_forward: Callable[[str], None] | None = None
    # Changing requests one at a time, each with its after_forward: a pause after every change
    # in which the test sees AWS exactly as that change left it.
    one_change_at_a_time: bool = False
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        self._changes = threading.Lock()
        self.port = free_port()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _serve(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        class Server(ThreadingHTTPServer):
            # `up` opens many connections at once; the default backlog of 5 would reset some,
            # a fault nobody asked for.
            request_queue_size = 128

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self, fault: str) -> int:
        return sum(1 for s in self.seen if s.fault == fault)

    # --- one request ------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        service = _service(request.headers.get("Authorization", ""))
        operation = _operation(request, body)
        fault = self._draw(operation)
        with self._lock:
            self.seen.append(Seen(operation, service, fault))
        if fault == "drop":
            request.close_connection = True
            request.connection.close()
            return
        if fault in ("unavailable", "throttle", "error"):
            status, content_type, payload = error_body(
                service, request.headers, fault, self.faults.errors.get(operation)
            )
            request.send_response(status)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            request.wfile.write(payload)
            return
        gate = self._changes if self.one_change_at_a_time and is_changing(operation) else None
        with gate or contextlib.nullcontext():
            status, headers, payload = self._forward(request, body)
            if self.after_forward is not None:
                self.after_forward(operation)
        if fault == "lose":
            request.close_connection = True
            request.connection.close()
            return
        request.send_response(status)
        for name, value in headers:
            if name.lower() not in (
                "transfer-encoding",
                "connection",
                "content-length",
                "date",
                "server",
            ):
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    def _draw(self, operation: str) -> str | None:
        faults = self.faults
        if operation in faults.errors:
            return "error"
        if faults.only and not re.search(faults.only, operation):
            return None
        if faults.first_of_each:
            with self._lock:
                first = all(s.operation != operation for s in self.seen)
            if first:
                return faults.first_of_each
        with self._lock:
            roll = self._random.random()
        for name, chance in (
            ("unavailable", faults.unavailable),
            ("drop", faults.drop),
            ("lose", faults.lose),
            ("throttle", faults.throttle),
        ):
            if roll < chance:
                return name
            roll -= chance
        return None

    def _forward(
        self, request: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        target = urllib.parse.urlparse(self.target)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
            headers["Host"] = f"{target.hostname}:{target.port}"
            connection.request(request.command, request.path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()


def _service(authorization: str) -> str:
    match = _SERVICE.search(authorization)
    return match.group(1) if match else ""


def _operation(request: BaseHTTPRequestHandler, body: bytes) -> str:
    target = request.headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    text = body.decode(errors="replace")
    if "Action=" in text:
        return urllib.parse.parse_qs(text).get("Action", ["?"])[0]
    return f"{request.command} {urllib.parse.urlparse(request.path).path}"


def error_body(
    service: str, headers: object, fault: str, fixed: tuple[int, str, str] | None = None
) -> tuple[int, str, bytes]:
    """The error AWS would send, in the protocol botocore expects for that service."""
    throttled = fault == "throttle"
    code = "ThrottlingException" if throttled else "ServiceUnavailable"
    status = 400 if throttled else 503
    message = "Rate exceeded" if throttled else "Service is unavailable, try again"
    if fixed is not None:
        status, code, message = fixed
    if headers.get("X-Amz-Target"):  # type: ignore[attr-defined]
        payload = f'{{"__type": "{code}", "message": "{message}"}}'.encode()
        return status, "application/x-amz-json-1.1", payload
    if service == "ec2" and fixed is None:
        code = "RequestLimitExceeded" if throttled else "Unavailable"
        payload = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
            "</Error></Errors><RequestID>flaky</RequestID></Response>"
        ).encode()
        return status, "text/xml", payload
    if throttled:
        code = "Throttling"
    payload = (
        f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code>"
        f"<Message>{message}</Message></Error><RequestId>flaky</RequestId>"
        "</ErrorResponse>"
    ).encode()
    return status, "text/xml", payload

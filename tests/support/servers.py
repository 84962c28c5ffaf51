"""Servers the tests start themselves, all on loopback: a registry and a TCP fault proxy."""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers: that is all we wait for
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
{auth}"""


class Registry:
    """Debian's docker-registry (the real distribution registry) serving on loopback."""

    def __init__(self, htpasswd: Path | None = None) -> None:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="dashscale-registry-")
        root = Path(self._dir.name)
        auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n" if htpasswd else ""
        config = root / "config.yml"
        config.write_text(REGISTRY_CONFIG.format(root=root / "data", port=self.port, auth=auth))
        self._log = open(root / "registry.log", "wb")  # noqa: SIM115 (lives as long as the server)
        self._process = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=self._log, stderr=subprocess.STDOUT
        )
        wait_for_http(f"http://127.0.0.1:{self.port}/v2/")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def tags(self, repository: str) -> list[str]:
        import json

        url = f"http://{self.address}/v2/{repository}/tags/list"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return list(json.load(response).get("tags") or [])
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return []
            raise

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._log.close()
        self._dir.cleanup()


class FlakyTcpProxy:
    """Forwards TCP to a target, and resets the connections a test asks it to break.

    The engine sees what users see on bad networks: `connection reset by peer`. Which
    connections break: the next `remaining_failures` ones (at first `fail_first`), counting
    only those whose first request line (`GET /v2/ HTTP/1.1`) `fail_when` accepts when it is
    given, so that a test breaks only what it is about: the engine retries a failed layer
    upload five times by itself, 5 to 25 s apart, before its push stream reports anything.

    A proxy must never be the fault itself: no timeout once connected (a registry says nothing
    for as long as a large layer goes up), and a side that finished sending only half-closes
    its pipe, so the answer still comes back the other way.
    """

    def __init__(
        self,
        target_port: int,
        fail_first: int = 0,
        fail_when: Callable[[str], bool] | None = None,
    ) -> None:
        self.target_port = target_port
        self.remaining_failures = fail_first
        self.fail_when = fail_when
        self.connections = 0
        self.requests: list[str] = []  # the first request line of every connection
        self.broken: list[str] = []  # those of the connections it reset
        self.bytes_up = 0  # bytes forwarded from clients to the target
        self.port = free_port()
        self._server = socket.create_server(("127.0.0.1", self.port), backlog=128)
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._connection, args=(client,), daemon=True).start()

    def _connection(self, client: socket.socket) -> None:
        first = _first_bytes(client)
        line = first.split(b"\r\n", 1)[0].decode("latin-1") if first[:1].isalpha() else "(TLS)"
        with self._lock:
            self.requests.append(line)
            fail = self.remaining_failures > 0 and (self.fail_when is None or self.fail_when(line))
            if fail:
                self.remaining_failures -= 1
                self.broken.append(line)
        if fail:
            _reset(client)
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
        except OSError:
            _reset(client)
            return
        upstream.settimeout(None)  # the timeout was for connecting only
        if first:
            upstream.sendall(first)
            self._count(len(first))
        done = threading.Barrier(2, action=lambda: _close(client, upstream))
        for source, sink, up in ((client, upstream, True), (upstream, client, False)):
            threading.Thread(target=self._pipe, args=(source, sink, up, done), daemon=True).start()

    def _count(self, sent: int) -> None:
        with self._lock:
            self.bytes_up += sent

    def _pipe(
        self, source: socket.socket, sink: socket.socket, up: bool, done: threading.Barrier
    ) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                if up:
                    self._count(len(data))
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)  # pass the end on; the other way may go on
        except OSError:  # a reset on either side: end both ways at once
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(threading.BrokenBarrierError):
            done.wait()

    def stop(self) -> None:
        self._stop.set()
        self._server.close()
        self._thread.join(2)


def _first_bytes(client: socket.socket) -> bytes:
    """The client's first segment: an HTTP client sends its request line in it. One read only:
    a TLS client (the engine tries HTTPS first) then waits for the server to answer."""
    try:
        return client.recv(65536)
    except OSError:
        return b""


def _reset(client: socket.socket) -> None:
    """Closes with RST: the client reads `connection reset by peer`."""
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def _close(*sockets: socket.socket) -> None:
    for s in sockets:
        s.close()

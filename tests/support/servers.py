"""Servers the tests start themselves, all on loopback: a registry and a TCP fault proxy."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
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
    """Forwards TCP to a target but slams shut the first `fail_first` connections.

    The engine sees what users see on bad networks: `use of closed network connection`, EOF,
    connection reset.
    """

    def __init__(self, target_port: int, fail_first: int) -> None:
        self.target_port = target_port
        self.remaining_failures = fail_first
        self.connections = 0
        self.bytes_up = 0  # bytes forwarded from clients to the target
        self.port = free_port()
        self._server = socket.create_server(("127.0.0.1", self.port))
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
                fail = self.remaining_failures > 0
                if fail:
                    self.remaining_failures -= 1
            if fail:
                client.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                client.close()  # RST: connection reset by peer
                continue
            threading.Thread(target=self._pipe_pair, args=(client,), daemon=True).start()

    def _pipe_pair(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
        except OSError:
            client.close()
            return
        for source, sink, up in ((client, upstream, True), (upstream, client, False)):
            threading.Thread(target=self._pipe, args=(source, sink, up), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, up: bool = False) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                if up:
                    with self._lock:
                        self.bytes_up += len(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stop.set()
        self._server.close()
        self._thread.join(2)

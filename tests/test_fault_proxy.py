"""The TCP fault proxy in front of the registry breaks what a test asks for, and nothing else."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.servers import FlakyTcpProxy

CHUNK = b"x" * 65536


class Upstream:
    """A TCP server on loopback that runs `handle` for each connection."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._handle = handle
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with conn:
            self._handle(conn)

    def stop(self) -> None:
        self._server.close()


@pytest.fixture
def through() -> Iterator[Callable[..., FlakyTcpProxy]]:
    made: list[tuple[Upstream, FlakyTcpProxy]] = []

    def make(handle: Callable[[socket.socket], None], **faults) -> FlakyTcpProxy:
        upstream = Upstream(handle)
        proxy = FlakyTcpProxy(upstream.port, **faults)
        made.append((upstream, proxy))
        return proxy

    yield make
    for upstream, proxy in made:
        proxy.stop()
        upstream.stop()


def read_all(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def test_a_long_upload_to_a_silent_registry_is_not_cut(through) -> None:
    """A registry says nothing while a large layer goes up: longer than any idle timeout the
    proxy might put on the other direction (it had 10 s)."""

    def count_then_answer(conn: socket.socket) -> None:
        conn.sendall(str(len(read_all(conn))).encode())

    proxy = through(count_then_answer)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as client:
        sent = 0
        deadline = time.monotonic() + 11
        while time.monotonic() < deadline:
            client.sendall(CHUNK)
            sent += len(CHUNK)
            time.sleep(0.05)
        client.shutdown(socket.SHUT_WR)
        assert read_all(client) == str(sent).encode()
    assert proxy.broken == []


def test_the_answer_still_comes_back_after_the_client_finished_sending(through) -> None:
    def answer_after_the_end(conn: socket.socket) -> None:
        request = read_all(conn)
        time.sleep(0.2)
        conn.sendall(b"got " + request)

    proxy = through(answer_after_the_end)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client:
        client.sendall(b"PUT /v2/ HTTP/1.1\r\n\r\nbody")
        client.shutdown(socket.SHUT_WR)
        assert read_all(client) == b"got PUT /v2/ HTTP/1.1\r\n\r\nbody"


def test_only_the_requests_asked_for_are_reset(through) -> None:
    def echo(conn: socket.socket) -> None:
        conn.sendall(conn.recv(65536))

    proxy = through(echo, fail_first=1, fail_when=lambda line: line.startswith("GET /v2/ "))
    exchanges = []
    for request in (b"HEAD /v2/x HTTP/1.1\r\n", b"GET /v2/ HTTP/1.1\r\n", b"GET /v2/ HTTP/1.1\r\n"):
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client:
            client.sendall(request)
            try:
                exchanges.append(client.recv(65536))
            except ConnectionResetError:
                exchanges.append(b"reset")
    assert exchanges == [b"HEAD /v2/x HTTP/1.1\r\n", b"reset", b"GET /v2/ HTTP/1.1\r\n"]
    assert proxy.broken == ["GET /v2/ HTTP/1.1"] and proxy.connections == 3

"""A tiny authoritative-looking DNS server on loopback that answers every NS question with a
configurable list: stands in for public DNS in the delegation check."""

from __future__ import annotations

import socket
import struct
import threading

from tests.support.servers import free_port


def _encode(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"


class FakeDns:
    def __init__(self, servers: list[str] | None = None) -> None:
        self.servers = list(servers or [])
        self.queries = 0
        self.port = free_port()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                message, peer = self._sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            self.queries += 1
            ident = message[:2]
            question = message[12:]
            flags = 0x8180 if self.servers else 0x8183  # NXDOMAIN when there is nothing to give
            header = ident + struct.pack(">HHHHH", flags, 1, len(self.servers), 0, 0)
            answers = b""
            for server in self.servers:
                rdata = _encode(server)
                answers += struct.pack(">HHHIH", 0xC00C, 2, 1, 300, len(rdata)) + rdata
            self._sock.sendto(header + question + answers, peer)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

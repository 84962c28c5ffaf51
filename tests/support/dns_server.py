"""A tiny authoritative-looking DNS server on loopback that answers every NS question with a
configurable list: stands in for public DNS in the delegation check. Written by hand on purpose
(not with dnspython, which the client uses), and able to give the bad answers real servers give."""

from __future__ import annotations

import socket
import struct
import threading

from tests.support.servers import free_port

# How the server answers: the list as answers, the list as a referral (authority section),
# NOERROR with no records, REFUSED, an answer with another id, a cut-off answer, or nothing.
MODES = ("answer", "referral", "no-data", "refused", "foreign", "malformed", "silent")


def _encode(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"


class FakeDns:
    def __init__(self, servers: list[str] | None = None) -> None:
        self.servers = list(servers or [])
        self.mode = "answer"
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
            if self.mode != "silent":
                self._sock.sendto(self._reply(message), peer)

    def _reply(self, message: bytes) -> bytes:
        assert self.mode in MODES, self.mode
        (ident,) = struct.unpack(">H", message[:2])
        if self.mode == "foreign":
            ident ^= 0xFFFF
        question = message[12:]
        servers = [] if self.mode in ("no-data", "refused") else self.servers
        flags = 0x8180 if servers or self.mode == "no-data" else 0x8183  # NXDOMAIN: nothing
        flags = 0x8185 if self.mode == "refused" else flags
        counts = (0, len(servers)) if self.mode == "referral" else (len(servers), 0)
        header = struct.pack(">HHHHHH", ident, flags, 1, *counts, 0)
        records = b""
        for server in servers:
            rdata = _encode(server)
            records += struct.pack(">HHHIH", 0xC00C, 2, 1, 300, len(rdata)) + rdata
        reply = header + question + records
        return reply[: len(header) + len(question) + 5] if self.mode == "malformed" else reply

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

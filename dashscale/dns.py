"""A minimal DNS client for one question: which name servers does public DNS give for a domain?

ACM validates a certificate only once the domain is delegated to the Route 53 zone that holds the
validation records; checking that early turns an hour of silent waiting into one clear line.
Standard library only: one UDP query, answers and authority section read.
"""

from __future__ import annotations

import random
import socket
import struct
from pathlib import Path

NS_TYPE = 2
IN_CLASS = 1


class DnsUnavailable(Exception):
    """DNS could not be queried (no resolver, no answer, a malformed answer)."""


def system_resolver(resolv_conf: Path = Path("/etc/resolv.conf")) -> str | None:
    try:
        for line in resolv_conf.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                return parts[1]
    except OSError:
        return None
    return None


def parse_resolver(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if sep and host and "." in host and port.isdigit():  # IPv4:port
        return host, int(port)
    return text, 53


def build_query(domain: str, query_id: int) -> bytes:
    header = struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0)  # recursion desired
    labels = b"".join(bytes([len(part)]) + part.encode() for part in domain.rstrip(".").split("."))
    return header + labels + b"\0" + struct.pack(">HH", NS_TYPE, IN_CLASS)


def _read_name(message: bytes, offset: int) -> tuple[str, int]:
    labels: list[str] = []
    end = None
    for _ in range(128):  # bounded: a pointer loop in a bad answer must not hang us
        length = message[offset]
        if length == 0:
            offset += 1
            break
        if length & 0xC0 == 0xC0:
            pointer = struct.unpack(">H", message[offset : offset + 2])[0] & 0x3FFF
            end = offset + 2 if end is None else end
            offset = pointer
            continue
        labels.append(message[offset + 1 : offset + 1 + length].decode(errors="replace"))
        offset += 1 + length
    else:
        raise DnsUnavailable("malformed DNS answer")
    return ".".join(labels).lower(), end if end is not None else offset


def parse_ns_answer(message: bytes, query_id: int) -> set[str]:
    try:
        ident, flags, questions, answers, authority, _ = struct.unpack(">HHHHHH", message[:12])
        if ident != query_id:
            raise DnsUnavailable("DNS answer to another question")
        rcode = flags & 0xF
        if rcode == 3:  # NXDOMAIN: the name does not exist in public DNS (yet)
            return set()
        if rcode != 0:
            raise DnsUnavailable(f"DNS server answered with error code {rcode}")
        offset = 12
        for _ in range(questions):
            _, offset = _read_name(message, offset)
            offset += 4
        servers: set[str] = set()
        for _ in range(answers + authority):
            _, offset = _read_name(message, offset)
            rtype, _, _, length = struct.unpack(">HHIH", message[offset : offset + 10])
            offset += 10
            if rtype == NS_TYPE:
                servers.add(_read_name(message, offset)[0])
            offset += length
        return servers
    except (struct.error, IndexError) as error:
        raise DnsUnavailable(f"malformed DNS answer: {error}") from None


def name_servers(domain: str, resolver: str, timeout: float = 3.0) -> set[str]:
    """The NS names DNS gives for `domain` (lowercase, no trailing dot); empty if none yet."""
    host, port = parse_resolver(resolver)
    query_id = random.randrange(1 << 16)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(build_query(domain, query_id), (host, port))
            message, _ = sock.recvfrom(4096)
        except OSError as error:
            raise DnsUnavailable(f"no answer from DNS server {resolver}: {error}") from None
    return parse_ns_answer(message, query_id)


# Public suffixes of two labels under which names are registered (example.co.uk is an apex).
SECOND_LEVEL = frozenset(
    f"{second}.{top}"
    for top, seconds in (
        ("uk", ("co", "org", "ac", "gov", "ltd", "plc", "me", "net")),
        ("au", ("com", "net", "org", "edu", "gov", "id")),
        ("nz", ("co", "org", "net", "ac", "govt")),
        ("jp", ("co", "or", "ne", "ac", "go")),
        ("za", ("co", "org", "net")),
        ("br", ("com", "net", "org")),
        ("in", ("co", "net", "org", "firm")),
        ("kr", ("co", "or")),
        ("il", ("co", "org")),
        ("mx", ("com", "org")),
        ("sg", ("com", "org")),
        ("tr", ("com", "org")),
        ("cn", ("com", "net", "org")),
    )
    for second in seconds
)


def registered_name(domain: str) -> str:
    """The name registered with a registrar that `domain` lies in (sales.example.com and
    example.com: example.com; app.example.co.uk: example.co.uk)."""
    labels = domain.lower().rstrip(".").split(".")
    size = 3 if ".".join(labels[-2:]) in SECOND_LEVEL else 2
    return ".".join(labels[-size:])


def is_subdomain(domain: str) -> bool:
    return domain.lower().rstrip(".") != registered_name(domain)

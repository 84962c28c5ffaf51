"""The delegation check's DNS client against a real UDP server on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashscale.dns import (
    DnsUnavailable,
    build_query,
    name_servers,
    parse_ns_answer,
    parse_resolver,
    system_resolver,
)
from tests.support.dns_server import FakeDns
from tests.support.servers import free_port


def test_name_servers_from_a_real_udp_server() -> None:
    dns = FakeDns(["ns-1.awsdns-01.org.", "NS-2.awsdns-02.com"])
    try:
        assert name_servers("example.com", dns.address) == {
            "ns-1.awsdns-01.org",
            "ns-2.awsdns-02.com",
        }
        dns.servers = []
        assert name_servers("example.com", dns.address) == set()  # NXDOMAIN: not delegated
    finally:
        dns.stop()


def test_no_answer_is_unavailable() -> None:
    with pytest.raises(DnsUnavailable):
        name_servers("example.com", f"127.0.0.1:{free_port()}", timeout=0.5)


def test_malformed_and_foreign_answers() -> None:
    query = build_query("example.com", 7)
    with pytest.raises(DnsUnavailable, match="another question"):
        parse_ns_answer(b"\x00\x08" + query[2:], 7)
    with pytest.raises(DnsUnavailable, match="malformed"):
        parse_ns_answer(query[:5], 7)


def test_resolver_parsing(tmp_path: Path) -> None:
    assert parse_resolver("10.0.0.2") == ("10.0.0.2", 53)
    assert parse_resolver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch lan\nnameserver 192.0.2.53\n")
    assert system_resolver(conf) == "192.0.2.53"
    assert system_resolver(tmp_path / "missing") is None

"""The delegation check's DNS client against a real UDP server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dashscale.dns import DnsUnavailable, name_servers, parse_resolver, system_resolver
from tests.support.dns_server import FakeDns
from tests.support.servers import free_port

SERVERS = ["ns-1.awsdns-01.org.", "NS-2.awsdns-02.com"]
EXPECTED = {"ns-1.awsdns-01.org", "ns-2.awsdns-02.com"}


@pytest.fixture
def dns() -> Iterator[FakeDns]:
    server = FakeDns(SERVERS)
    yield server
    server.stop()


def test_name_servers_from_a_real_udp_server(dns: FakeDns) -> None:
    assert name_servers("example.com", dns.address) == EXPECTED
    dns.mode = "referral"  # a parent's server: the delegation in the authority section
    assert name_servers("app.example.com", dns.address) == EXPECTED
    dns.mode = "no-data"  # the name exists, with no NS records: not delegated
    assert name_servers("example.com", dns.address) == set()
    dns.mode, dns.servers = "answer", []
    assert name_servers("example.com", dns.address) == set()  # NXDOMAIN: not delegated


def test_no_answer_is_unavailable(dns: FakeDns) -> None:
    with pytest.raises(DnsUnavailable, match="no answer from DNS server"):
        name_servers("example.com", f"127.0.0.1:{free_port()}", timeout=0.5)
    dns.mode = "silent"
    with pytest.raises(DnsUnavailable, match="no answer from DNS server"):
        name_servers("example.com", dns.address, timeout=0.5)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("refused", "answered with error code REFUSED"),
        ("foreign", "another question"),
        ("malformed", "malformed DNS answer"),
    ],
)
def test_refused_foreign_and_malformed_answers(dns: FakeDns, mode: str, message: str) -> None:
    dns.mode = mode
    with pytest.raises(DnsUnavailable, match=message):
        name_servers("example.com", dns.address, timeout=0.5)


def test_resolver_parsing(tmp_path: Path) -> None:
    assert parse_resolver("10.0.0.2") == ("10.0.0.2", 53)
    assert parse_resolver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch lan\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n")
    assert system_resolver(conf) == "192.0.2.53"
    assert system_resolver(tmp_path / "missing") is None
    conf.write_text("search lan\n")
    assert system_resolver(conf) is None
    conf.write_text("nameserver not-an-address\n")
    assert system_resolver(conf) is None

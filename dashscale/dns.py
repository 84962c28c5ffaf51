"""The delegation check's DNS question: which name servers does public DNS give for a domain?

ACM validates a certificate only once the domain is delegated to the Route 53 zone that holds the
validation records; checking that early turns an hour of silent waiting into one clear line.
One NS query over UDP with dnspython; the NS records of the answer and authority sections count
(a parent's server answers a delegated name with a referral in the authority section).
"""

from __future__ import annotations

from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver


class DnsUnavailable(Exception):
    """DNS could not be queried (no resolver, no answer, a malformed answer)."""


def system_resolver(resolv_conf: Path = Path("/etc/resolv.conf")) -> str | None:
    """The first name server of the system's resolver configuration, or None."""
    try:
        resolver = dns.resolver.Resolver(filename=str(resolv_conf))
    except (dns.resolver.NoResolverConfiguration, ValueError):  # no file, no or a bad nameserver
        return None
    return str(resolver.nameservers[0])


def parse_resolver(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if sep and host and "." in host and port.isdigit():  # IPv4:port
        return host, int(port)
    return text, 53


def name_servers(domain: str, resolver: str, timeout: float = 3.0) -> set[str]:
    """The NS names DNS gives for `domain` (lowercase, no trailing dot); empty if none yet."""
    host, port = parse_resolver(resolver)
    query = dns.message.make_query(domain, dns.rdatatype.NS)  # DOMAIN is validated: a good name
    try:
        answer = dns.query.udp(query, host, timeout=timeout, port=port)
    except (dns.exception.Timeout, OSError) as error:
        raise DnsUnavailable(f"no answer from DNS server {resolver}: {error}") from None
    except dns.query.BadResponse:  # another id or question than ours
        raise DnsUnavailable("DNS answer to another question") from None
    except dns.exception.DNSException as error:
        raise DnsUnavailable(f"malformed DNS answer: {error}") from None
    rcode = answer.rcode()
    if rcode == dns.rcode.NXDOMAIN:  # the name does not exist in public DNS (yet)
        return set()
    if rcode != dns.rcode.NOERROR:
        raise DnsUnavailable(f"DNS server answered with error code {dns.rcode.to_text(rcode)}")
    return {
        record.target.to_text(omit_final_dot=True).lower()
        for rrset in (*answer.answer, *answer.authority)
        if rrset.rdtype == dns.rdatatype.NS
        for record in rrset
    }


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

"""`dashscale tls`: the app on https://DOMAIN and https://www.DOMAIN, port 80 redirected.

This module declares what needs no load balancer: the hosted zone, the certificate and its DNS
validation records (`up` starts them first: ACM validates while the rest goes on), and checks
the domain's delegation. https.py declares the rest: the HTTPS listener with a TLS 1.3 policy,
the alias records, and the permanent redirect on port 80.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import botocore.exceptions
import click

from dashscale.aws import already_exists, error_code, translated, wait_until
from dashscale.context import Context
from dashscale.dns import DnsUnavailable, name_servers, system_resolver
from dashscale.model import (
    NEW,
    Change,
    Plan,
    Reading,
    Resource,
    compare,
    create,
    is_new,
    turn,
)
from dashscale.ui import is_interactive

CERTIFICATE_TIMEOUT = 3600.0
DOMAINS_REGION = "us-east-1"  # Route 53 Domains answers only there
LIVE_STATUSES = ("PENDING_VALIDATION", "ISSUED")


@dataclass(frozen=True)
class Zone:
    id: str  # without the /hostedzone/ prefix
    name_servers: tuple[str, ...]
    owned: bool  # created by dashscale for this app (tagged)
    made_by_us: bool = False  # carries our comment: created by dashscale, perhaps not yet tagged


@dataclass(frozen=True)
class Certificate:
    arn: str
    status: str


def domains(ctx: Context) -> tuple[str, str]:
    domain = ctx.config.domain
    assert domain, "the TLS step runs only with DOMAIN set"
    return domain, f"www.{domain}"


def fqdn(name: str) -> str:
    return name.lower().rstrip(".") + "."


def zone_comment(ctx: Context) -> str:
    return f"dashscale app {ctx.names.app}"


# --- finders ------------------------------------------------------------------------------------


def find_zone(ctx: Context, domain: str | None = None) -> Zone | None:
    """The public hosted zone named exactly `domain` (default DOMAIN), if there is one. Its name
    servers are those of the zone's own NS record (see `zone_records`)."""
    domain = domain or domains(ctx)[0]
    route53 = ctx.client("route53")
    with translated("looking up the hosted zone"):
        answer = route53.list_hosted_zones_by_name(DNSName=domain, MaxItems="10")
        for zone in answer.get("HostedZones", []):
            config = zone.get("Config") or {}
            if zone["Name"].lower() != fqdn(domain) or config.get("PrivateZone"):
                continue
            zone_id = zone["Id"].rsplit("/", 1)[-1]
            tags = route53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id)
            owned = ctx.names.owns(tags.get("ResourceTagSet", {}).get("Tags", []))
            made_by_us = config.get("Comment") == zone_comment(ctx)
            return Zone(zone_id, (), owned, made_by_us=made_by_us)
    return None


def zone_records(ctx: Context, zone_id: str) -> list[dict[str, Any]]:
    """Every record set of the zone."""
    records: list[dict[str, Any]] = []
    if is_new(zone_id):
        return records
    with translated("listing the zone's records"):
        pages = (
            ctx.client("route53")
            .get_paginator("list_resource_record_sets")
            .paginate(HostedZoneId=zone_id)
        )
        for page in pages:
            records += page["ResourceRecordSets"]
    return records


def record_named(records: list[dict[str, Any]], name: str, kind: str) -> dict[str, Any] | None:
    return next((r for r in records if fqdn(r["Name"]) == fqdn(name) and r["Type"] == kind), None)


def find_certificate(ctx: Context) -> dict[str, Any] | None:
    """This app's pending or issued certificate for exactly DOMAIN and www.DOMAIN, as
    DescribeCertificate gives it (one call fewer when the summary already says it is issued)."""
    domain, www = domains(ctx)
    wanted = {domain, www}
    acm = ctx.client("acm")
    with translated("looking up the certificate"):
        pages = acm.get_paginator("list_certificates").paginate(
            CertificateStatuses=list(LIVE_STATUSES)
        )
        for page in pages:
            for summary in page.get("CertificateSummaryList", []):
                if summary.get("DomainName") != domain:
                    continue
                arn = summary["CertificateArn"]
                names = {domain, *summary.get("SubjectAlternativeNameSummaries", [])}
                if "SubjectAlternativeNameSummaries" in summary and names != wanted:
                    continue
                tags = acm.list_tags_for_certificate(CertificateArn=arn).get("Tags", [])
                if not ctx.names.owns(tags):
                    continue
                if summary.get("Status") == "ISSUED" and names == wanted:
                    return dict(summary)
                details = acm.describe_certificate(CertificateArn=arn)["Certificate"]
                if {details["DomainName"], *details.get("SubjectAlternativeNames", [])} == wanted:
                    return dict(details)
    return None


def check_delegation(ctx: Context, zone: Zone) -> bool | None:
    """True when public DNS gives the zone's name servers for DOMAIN; None when DNS is unusable."""
    domain, _ = domains(ctx)
    if is_new(zone.id):  # a dry run's zone that would be created: nobody delegates to it yet
        return None
    resolver = ctx.config.dns_resolver or system_resolver()
    if resolver == "none":
        return None
    if resolver is None:
        ctx.ui.warn("no DNS resolver configured here, so the delegation of the domain is unchecked")
        return None
    try:
        public = name_servers(domain, resolver)
    except DnsUnavailable as error:
        ctx.ui.warn(f"could not check the delegation of {domain}: {error}")
        return None
    expected = {fqdn(server).rstrip(".") for server in zone.name_servers}
    if public and public <= expected:
        ctx.ui.resource("delegation", domain, "found", "DNS answers with the zone's servers")
        return True
    shown = ", ".join(sorted(public)) if public else "no name servers"
    ctx.ui.warn(
        f"public DNS gives {shown} for {domain}, not the zone's "
        f"({', '.join(sorted(expected))}): the certificate stays pending until the registrar "
        "points the domain at the zone"
    )
    return False


def registrar_names(ctx: Context, zone: Zone) -> tuple[Any, list[str]] | None:
    """When Route 53 Domains registers DOMAIN here and points it elsewhere: its client and the
    zone's name servers to set. None when there is nothing to offer."""
    domain, _ = domains(ctx)
    if is_new(zone.id):  # the zone would be created: its name servers are not known yet
        return None
    registrar = ctx.client("route53domains", DOMAINS_REGION)
    try:
        detail = registrar.get_domain_detail(DomainName=domain)
    except botocore.exceptions.ClientError as error:  # not registered here, or not allowed
        ctx.ui.detail(f"Route 53 Domains does not manage {domain} here ({error_code(error)})")
        return None
    current = {fqdn(ns["Name"]) for ns in detail.get("Nameservers", [])}
    wanted = [fqdn(server).rstrip(".") for server in zone.name_servers]
    if current == {fqdn(server) for server in wanted}:
        ctx.ui.resource("registrar", domain, "found", "points at the zone")
        return None
    return registrar, wanted


def show_registrar(ctx: Context, zone: Zone) -> None:
    """The dry run's line for the registrar."""
    if registrar_names(ctx, zone) is not None:
        ctx.ui.resource(
            "registrar", domains(ctx)[0], "would update", "name servers (with --update-registrar)"
        )


def offer_registrar_update(ctx: Context, zone: Zone, update: bool) -> None:
    """When the domain is registered with Route 53 Domains here, offer to point it at the zone."""
    domain, _ = domains(ctx)
    offer = registrar_names(ctx, zone)
    if offer is None:
        return
    registrar, wanted = offer
    if not update:
        if not is_interactive():
            ctx.ui.info(
                f"  {domain} is registered with Route 53 Domains but points elsewhere; "
                "re-run with --update-registrar to point it at the zone"
            )
            return
        if not click.confirm(
            f"Point the registration of {domain} at the zone's name servers?", err=True
        ):
            return
    with translated("updating the domain's name servers"):
        registrar.update_domain_nameservers(
            DomainName=domain, Nameservers=[{"Name": server} for server in wanted]
        )
    ctx.ui.resource("registrar", domain, "updated", "name servers set to the zone's")


def why_pending(zone: Zone, delegated: bool | None, domain: str) -> str:
    if delegated is False:
        return (
            f"public DNS does not yet point {domain} at the zone's name servers "
            f"({', '.join(zone.name_servers)}); set them at your registrar"
        )
    return "ACM has not yet seen the validation records"


# --- the resources -------------------------------------------------------------------------------


class HostedZone(Resource):
    """The public hosted zone of DOMAIN: found, or created (and tagged) for this app. Its ref is
    a Zone with the name servers of its NS record."""

    key = kind = "hosted zone"
    reads = ("zone records",)

    def name(self, ctx: Context) -> str:
        return domains(ctx)[0]

    def find(self, ctx: Context, found: Mapping[str, Any]) -> Zone | None:
        return found[ZoneRecords.key][0]

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        if current is None:
            return create(self.kind, self.name(ctx), "public")
        if current.made_by_us and not current.owned:
            # created by an earlier run that stopped before tagging it: finish the job, so that
            # `teardown --all` recognises it
            return compare(
                self.kind, self.name(ctx), {"tags": ("(none)", "dashscale:app")}, current.id
            )
        return compare(self.kind, self.name(ctx), {}, current.id)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> Zone:
        route53 = ctx.client("route53")
        domain = self.name(ctx)
        if current is not None:
            with translated("tagging the hosted zone"):
                route53.change_tags_for_resource(
                    ResourceType="hostedzone", ResourceId=current.id, AddTags=ctx.names.tags()
                )
            return Zone(current.id, current.name_servers, True, True)
        with translated("creating the hosted zone"):
            try:
                created = route53.create_hosted_zone(
                    Name=domain,
                    CallerReference=f"dashscale-{ctx.names.app}-{ctx.run_id}",
                    HostedZoneConfig={"Comment": zone_comment(ctx)},
                )
                zone_id = created["HostedZone"]["Id"].rsplit("/", 1)[-1]
                servers = tuple(created.get("DelegationSet", {}).get("NameServers", []))
            except botocore.exceptions.ClientError as error:
                if not already_exists(error, "HostedZoneAlreadyExists"):
                    raise
                found = find_zone(ctx)  # our own retried request got there first
                if found is None:
                    raise
                zone_id = found.id
                servers = _servers(ctx, zone_records(ctx, zone_id), domain)
            route53.change_tags_for_resource(
                ResourceType="hostedzone", ResourceId=zone_id, AddTags=ctx.names.tags()
            )
        ctx.ui.info(
            f"  The zone's name servers: {', '.join(servers)}. Set these four at the "
            f"registrar of {domain}; the certificate cannot be validated until you do."
        )
        return Zone(zone_id, servers, True, True)

    def ref(self, ctx: Context, current: Any, change: Change) -> Zone:
        return current if current is not None else Zone(NEW, (), True)


def _servers(ctx: Context, records: list[dict[str, Any]], domain: str) -> tuple[str, ...]:
    record = record_named(records, domain, "NS") or {}
    return tuple(r["Value"].rstrip(".") for r in record.get("ResourceRecords", []))


class ZoneRecords(Reading):
    """DOMAIN's zone and every record in it, in two calls (three with the zone's tags): the
    zone, the validation records and the alias records read from one listing."""

    key = "zone records"

    def find(
        self, ctx: Context, found: Mapping[str, Any]
    ) -> tuple[Zone | None, list[dict[str, Any]]]:
        zone = find_zone(ctx)
        if zone is None:
            return None, []
        records = zone_records(ctx, zone.id)
        servers = _servers(ctx, records, domains(ctx)[0])
        return Zone(zone.id, servers, zone.owned, zone.made_by_us), records


class CertificateResource(Resource):
    """This app's certificate for DOMAIN and www.DOMAIN, DNS-validated. Its ref is a
    Certificate."""

    key = kind = "certificate"

    def name(self, ctx: Context) -> str:
        return domains(ctx)[0]

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        return find_certificate(ctx)

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        domain, www = domains(ctx)
        if current is None:
            return create(self.kind, domain, f"for {domain} and {www}, DNS-validated")
        return compare(self.kind, domain, {}, str(current["Status"]).lower())

    def apply(
        self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change
    ) -> Certificate:
        domain, www = domains(ctx)
        with translated("requesting the certificate"):
            arn = ctx.client("acm").request_certificate(
                DomainName=domain,
                SubjectAlternativeNames=[www],
                ValidationMethod="DNS",
                IdempotencyToken=ctx.run_id[:32],
                Tags=ctx.names.tags(),
            )["CertificateArn"]
        return Certificate(arn, "PENDING_VALIDATION")

    def ref(self, ctx: Context, current: Any, change: Change) -> Certificate:
        if current is None:
            return Certificate(NEW, "PENDING_VALIDATION")
        return Certificate(str(current["CertificateArn"]), str(current["Status"]))


class ValidationRecords(Resource):
    """The CNAME records ACM names for a pending certificate, in DOMAIN's zone."""

    key = kind = "validation record"
    reads = (ZoneRecords.key, CertificateResource.key)
    needs = (HostedZone.key, CertificateResource.key)

    def name(self, ctx: Context) -> str:
        return ", ".join(domains(ctx))

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any]:
        certificate = found[CertificateResource.key] or {}
        options = certificate.get("DomainValidationOptions", [])
        ready = bool(options) and all("ResourceRecord" in option for option in options)
        wanted = validation_record_sets([o["ResourceRecord"] for o in options]) if ready else None
        return {"records": found[ZoneRecords.key][1], "wanted": wanted}

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        certificate: Certificate = refs[CertificateResource.key]
        if certificate.status == "ISSUED" and not is_new(certificate.arn):
            return compare(self.kind, self.name(ctx), {}, "certificate issued")
        wanted = (current or {}).get("wanted")
        if wanted is None or is_new(certificate.arn):  # ACM names them once it is requested
            return create(self.kind, self.name(ctx), "CNAMEs ACM names")
        missing = [
            r
            for r in wanted
            if not same_record(record_named(current["records"], r["Name"], r["Type"]), r)
        ]
        if missing:
            return create(self.kind, self.name(ctx), f"{len(missing)} CNAME(s)")
        return compare(self.kind, self.name(ctx), {}, f"{len(wanted)} CNAME(s)")

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> None:
        zone: Zone = refs[HostedZone.key]
        existing = (current or {}).get("records", []) if zone.id and not is_new(zone.id) else []
        wanted = validation_record_sets(validation_records(ctx, refs[CertificateResource.key]))
        upsert_records(ctx, zone, existing, wanted)

    def ref(self, ctx: Context, current: Any, change: Change) -> None:
        return None


def upsert_records(
    ctx: Context, zone: Zone, existing: list[dict[str, Any]], wanted: list[dict[str, Any]]
) -> None:
    """UPSERTs the record sets that are missing or differ; one change batch, or no call."""
    changes = [
        {"Action": "UPSERT", "ResourceRecordSet": record}
        for record in wanted
        if not same_record(record_named(existing, record["Name"], record["Type"]), record)
    ]
    if changes:
        with translated("writing the zone's records"):
            ctx.client("route53").change_resource_record_sets(
                HostedZoneId=zone.id,
                ChangeBatch={"Comment": f"dashscale {ctx.names.app}", "Changes": changes},
            )


def validation_records(ctx: Context, certificate: Certificate) -> list[dict[str, str]]:
    """The CNAME records ACM asks for, once each; they can appear seconds after the request."""
    acm = ctx.client("acm")

    def records() -> list[dict[str, str]] | None:
        details = acm.describe_certificate(CertificateArn=certificate.arn)["Certificate"]
        options = details.get("DomainValidationOptions", [])
        if not options or any("ResourceRecord" not in option for option in options):
            return None
        unique: dict[tuple[str, str], dict[str, str]] = {}
        for option in options:
            record = option["ResourceRecord"]
            unique[(fqdn(record["Name"]), record["Value"])] = record
        return list(unique.values())

    with translated("reading the certificate's validation records"):
        return wait_until(
            records,
            what="ACM's validation records",
            timeout=120,
            clock=ctx.clock,
            interval=1,
            max_interval=5,
        )


def _alias_dns(name: str) -> str:
    name = name.lower().rstrip(".")
    return name.removeprefix("dualstack.")


def same_record(existing: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    if existing is None:
        return False
    if "AliasTarget" in wanted:
        alias = existing.get("AliasTarget")
        return bool(alias) and (
            alias["HostedZoneId"] == wanted["AliasTarget"]["HostedZoneId"]
            and _alias_dns(alias["DNSName"]) == _alias_dns(wanted["AliasTarget"]["DNSName"])
        )
    values = {r["Value"].rstrip(".") for r in existing.get("ResourceRecords", [])}
    return values == {r["Value"].rstrip(".") for r in wanted["ResourceRecords"]}


def validation_record_sets(records: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [
        {
            "Name": fqdn(r["Name"]),
            "Type": r["Type"],
            "TTL": 300,
            "ResourceRecords": [{"Value": r["Value"]}],
        }
        for r in records
    ]


RESOURCES: tuple[Resource, ...] = (HostedZone(), CertificateResource(), ValidationRecords())


def settle_zone(
    ctx: Context, planned: Plan, update_registrar: bool
) -> tuple[Change, Zone, bool | None]:
    """Before the rest runs side by side: the zone (created or tagged when the plan says so),
    the registrar's name servers (may ask) and the delegation check."""
    ctx.ui.step(f"TLS for {domains(ctx)[0]}")
    decided, zone = turn(ctx, RESOURCES[0], planned.found.get(HostedZone.key), planned.refs)
    offer_registrar_update(ctx, zone, update_registrar)
    return decided, zone, check_delegation(ctx, zone)

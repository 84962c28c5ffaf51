"""`dashscale tls`: the app on https://DOMAIN and https://www.DOMAIN, port 80 redirected.

This module declares what needs no load balancer: the hosted zone, the certificate and its DNS
validation records (`up` starts them first: ACM validates while the rest goes on), and checks
the domain's delegation. https.py declares the rest: the HTTPS listener with a TLS 1.3 policy,
the alias records, and the permanent redirect on port 80.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import botocore.exceptions
import click

from dashscale import partition
from dashscale.aws import already_exists, error_code, translated, wait_until
from dashscale.context import Context
from dashscale.dns import (
    DnsUnavailable,
    is_subdomain,
    name_servers,
    registered_name,
    system_resolver,
)
from dashscale.inventory import retrying, unless_gone
from dashscale.model import (
    CREATE,
    DELETE,
    KEEP,
    NEW,
    UPDATE,
    Change,
    Item,
    Plan,
    Reading,
    Resource,
    Survey,
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
    name: str = ""  # without the final dot: DOMAIN, or the enclosing domain it lies in


@dataclass(frozen=True)
class Certificate:
    arn: str
    status: str


def with_www(ctx: Context) -> bool:
    """WWW when set; otherwise www.DOMAIN for an apex (a registered name such as example.com)
    only, never for a subdomain such as sales.example.com."""
    domain = ctx.config.domain or ""
    return ctx.config.www if ctx.config.www is not None else not is_subdomain(domain)


def domains(ctx: Context) -> tuple[str, ...]:
    """DOMAIN, then www.DOMAIN when the app serves it too (see `with_www`)."""
    domain = ctx.config.domain
    assert domain, "the TLS step runs only with DOMAIN set"
    return (domain, f"www.{domain}") if with_www(ctx) else (domain,)


def enclosing_names(domain: str) -> list[str]:
    """DOMAIN, then each enclosing name up to the registered one: where its zone may be."""
    labels = domain.lower().rstrip(".").split(".")
    top = registered_name(domain)
    names = []
    for start in range(len(labels)):
        name = ".".join(labels[start:])
        names.append(name)
        if name == top:
            break
    return names


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
    with translated(f"looking up the hosted zone {domain}"):
        answer = route53.list_hosted_zones_by_name(DNSName=domain, MaxItems="10")
        for zone in answer.get("HostedZones", []):
            config = zone.get("Config") or {}
            if zone["Name"].lower() != fqdn(domain) or config.get("PrivateZone"):
                continue
            zone_id = zone["Id"].rsplit("/", 1)[-1]
            tags = route53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id)
            owned = ctx.names.owns(tags.get("ResourceTagSet", {}).get("Tags", []))
            made_by_us = config.get("Comment") == zone_comment(ctx)
            return Zone(zone_id, (), owned, made_by_us=made_by_us, name=domain.rstrip("."))
    return None


def find_enclosing_zone(ctx: Context, domain: str | None = None) -> Zone | None:
    """The closest public hosted zone `domain` (default DOMAIN) lies in: the zone named DOMAIN,
    else its parent's (sales.example.com lies in example.com), up to the registered name.
    One lookup for an apex or a subdomain with a zone of its own."""
    for name in enclosing_names(domain or domains(ctx)[0]):
        zone = find_zone(ctx, name)
        if zone is not None:
            return zone
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
    """This app's pending or issued certificate for exactly DOMAIN (and www.DOMAIN when served),
    as DescribeCertificate gives it (one call fewer when the summary already says it is issued)."""
    return find_certificates(ctx)[0]


def find_certificates(ctx: Context) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """`find_certificate`'s answer, and from the same listing this app's other pending or issued
    certificates for DOMAIN: those of another name set (an earlier WWW), which nothing needs
    once the HTTPS listener uses the current one (https.py `OldCertificates` deletes them)."""
    domain = domains(ctx)[0]
    wanted = set(domains(ctx))
    acm = ctx.client("acm")
    current: dict[str, Any] | None = None
    others: list[dict[str, Any]] = []
    with translated("looking up the certificate"):
        pages = acm.get_paginator("list_certificates").paginate(
            CertificateStatuses=list(LIVE_STATUSES)
        )
        for page in pages:
            for summary in page.get("CertificateSummaryList", []):
                if summary.get("DomainName") != domain:
                    continue
                arn = summary["CertificateArn"]
                listed = "SubjectAlternativeNameSummaries" in summary
                names = {domain, *summary.get("SubjectAlternativeNameSummaries", [])}
                if listed and names == wanted and current is not None:
                    continue  # a second one for our names: not a leftover of another WWW
                tags = about_listed(acm.list_tags_for_certificate, arn)
                if tags is None or not ctx.names.owns(tags.get("Tags", [])):
                    continue
                if listed and names != wanted:
                    others.append({**summary, "Names": sorted(names)})
                    continue
                if listed and summary.get("Status") == "ISSUED":
                    current = current or dict(summary)
                    continue
                # the summary may leave the other names out (moto does): the details say
                described = about_listed(acm.describe_certificate, arn)
                if described is None:
                    continue
                details = described["Certificate"]
                named = {details["DomainName"], *details.get("SubjectAlternativeNames", [])}
                if named != wanted:
                    others.append({**details, "Names": sorted(named)})
                elif current is None:
                    current = dict(details)
    return current, others


def about_listed(call: Callable[..., dict[str, Any]], arn: str) -> dict[str, Any] | None:
    """ACM's answer about a certificate the listing named; None when it was deleted since
    (another app's teardown in the same account, or by hand): it is not there."""
    try:
        return call(CertificateArn=arn)
    except botocore.exceptions.ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise


def check_delegation(ctx: Context, zone: Zone) -> bool | None:
    """True when public DNS gives the zone's name servers for the zone's name (DOMAIN, or the
    enclosing domain DOMAIN lies in); None when DNS is unusable."""
    domain = zone.name or domains(ctx)[0]
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
        f"({', '.join(sorted(expected))}): the certificate stays pending until "
        f"{delegation_step(domain)}"
    )
    return False


def delegation_step(domain: str) -> str:
    """What delegates `domain` to its zone: the registrar for a registered name, NS records in
    the parent domain's DNS for a subdomain."""
    if is_subdomain(domain):
        parent = domain.split(".", 1)[1]
        return f"the DNS of {parent} has NS records for {domain} naming the zone's servers"
    return f"the registrar of {domain} points it at the zone's servers"


# The IAM actions of the registrar check (Route 53 Domains, when it registers DOMAIN here) and
# of --update-registrar (dashscale/policy.py).
REGISTRAR_CALLS = ("route53domains:GetDomainDetail",)
REGISTRAR_UPDATE_CALLS = ("route53domains:UpdateDomainNameservers",)


def registrar_names(ctx: Context, zone: Zone) -> tuple[Any, list[str]] | None:
    """When Route 53 Domains registers DOMAIN here and points it elsewhere: its client and the
    zone's name servers to set. None when there is nothing to offer: the zone would be created,
    or DOMAIN is a subdomain (delegated by NS records in its parent, not by a registrar), or
    DOMAIN lies in an enclosing zone."""
    domain = domains(ctx)[0]
    if is_new(zone.id) or is_subdomain(domain) or (zone.name and zone.name != domain):
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
    domain = domains(ctx)[0]
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
        domain = zone.name or domain
        how = (
            f"add NS records for {domain} in the DNS of {domain.split('.', 1)[1]}"
            if is_subdomain(domain)
            else "set them at your registrar"
        )
        return (
            f"public DNS does not yet point {domain} at the zone's name servers "
            f"({', '.join(zone.name_servers)}); {how}"
        )
    return "ACM has not yet seen the validation records"


# --- the resources -------------------------------------------------------------------------------


class HostedZone(Resource):
    """The closest public hosted zone DOMAIN lies in (DOMAIN's own, or an enclosing one such as
    example.com for sales.example.com: used, never created nor deleted); created (and tagged)
    for DOMAIN when there is none. Its ref is a Zone with the name servers of its NS record."""

    survey_calls = (
        "route53:ListHostedZones",
        "route53:ListHostedZonesByName",
        "route53:ListResourceRecordSets",
        "route53:ListTagsForResource",
        "route53:ListTagsForResources",
    )
    delete_calls = ("route53:DeleteHostedZone",)

    calls = {
        CREATE: (
            "route53:CreateHostedZone",
            "route53:ChangeTagsForResource",
        ),
        UPDATE: ("route53:ChangeTagsForResource",),
    }
    key = kind = "hosted zone"
    reads = ("zone records",)

    def name(self, ctx: Context) -> str:
        return domains(ctx)[0]

    def name_of(self, ctx: Context, current: Zone | None) -> str:
        return current.name if current is not None and current.name else self.name(ctx)

    def find(self, ctx: Context, found: Mapping[str, Any]) -> Zone | None:
        return found[ZoneRecords.key][0]

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        if current is None:
            return create(self.kind, self.name(ctx), "public")
        name = self.name_of(ctx, current)
        if current.made_by_us and not current.owned:
            # created by an earlier run that stopped before tagging it: finish the job, so that
            # `teardown --all` recognises it
            return compare(self.kind, name, {"tags": ("(none)", "dashscale:app")}, current.id)
        detail = current.id if current.owned or name == self.name(ctx) else f"{current.id}, yours"
        return compare(self.kind, name, {}, detail)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> Zone:
        route53 = ctx.client("route53")
        domain = self.name(ctx)
        if current is not None:
            with translated("tagging the hosted zone"):
                route53.change_tags_for_resource(
                    ResourceType="hostedzone", ResourceId=current.id, AddTags=ctx.names.tags()
                )
            return Zone(current.id, current.name_servers, True, True, current.name)
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
        if is_subdomain(domain):
            where = f"Add them as NS records for {domain} in the DNS of {domain.split('.', 1)[1]}"
        else:
            where = f"Set these four at the registrar of {domain}"
        ctx.ui.info(
            f"  The zone's name servers: {', '.join(servers)}. {where}; the certificate "
            "cannot be validated until you do."
        )
        return Zone(zone_id, servers, True, True, domain)

    def ref(self, ctx: Context, current: Any, change: Change) -> Zone:
        return current if current is not None else Zone(NEW, (), True, name=self.name(ctx))

    surveys_after = ("load balancer",)  # an alias record is the app's when it points at it

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        return [item for item in domain_items(ctx, survey) if item.kind == self.kind]

    def delete(self, ctx: Context, item: Item) -> str:
        route53 = ctx.client("route53")
        return unless_gone(
            lambda: route53.delete_hosted_zone(Id=item.data["zone"]), "NoSuchHostedZone"
        )

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        zone_id = item.data["zone"]
        return item.name, zone_id if item.data[
            "owned"
        ] else f"{zone_id} (yours, not created by dashscale)"

    def when_absent(self, ctx: Context, survey: Survey) -> tuple[str, str, str] | None:
        """Missing when no zone found is DOMAIN's own or encloses it (another domain's zone of
        the app does not count)."""
        domain = (ctx.config.domain or "").lower()
        if not domain or any(
            domain == item.name.lower() or domain.endswith(f".{item.name.lower()}")
            for item in survey.of(self.key)
        ):
            return None
        return domain, "missing", ""


def _servers(ctx: Context, records: list[dict[str, Any]], domain: str) -> tuple[str, ...]:
    record = record_named(records, domain, "NS") or {}
    return tuple(r["Value"].rstrip(".") for r in record.get("ResourceRecords", []))


class ZoneRecords(Reading):
    """The zone DOMAIN lies in and every record in it, in two calls for an apex (three with the
    zone's tags; one more per enclosing name looked up for a subdomain): the zone, the
    validation records and the alias records read from one listing."""

    find_calls = (
        "route53:ListHostedZonesByName",
        "route53:ListResourceRecordSets",
        "route53:ListTagsForResource",
    )

    key = "zone records"

    def find(
        self, ctx: Context, found: Mapping[str, Any]
    ) -> tuple[Zone | None, list[dict[str, Any]]]:
        zone = find_enclosing_zone(ctx)
        if zone is None:
            return None, []
        records = zone_records(ctx, zone.id)
        servers = _servers(ctx, records, zone.name)
        return Zone(zone.id, servers, zone.owned, zone.made_by_us, zone.name), records


class Certificates(Reading):
    """The app's certificates for DOMAIN, listed once: (the current one, the others)."""

    find_calls = ("acm:ListCertificates", "acm:DescribeCertificate", "acm:ListTagsForCertificate")

    key = "certificates"

    finder = staticmethod(find_certificates)


class CertificateResource(Resource):
    """This app's certificate for DOMAIN (and www.DOMAIN when served: `with_www`), DNS-validated.
    Its ref is a Certificate."""

    survey_calls = Certificates.find_calls
    delete_calls = ("acm:DeleteCertificate",)

    calls = {
        CREATE: (
            "acm:RequestCertificate",
            "acm:AddTagsToCertificate",
        ),
    }
    key = kind = "certificate"
    reads = (Certificates.key,)

    def name(self, ctx: Context) -> str:
        return domains(ctx)[0]

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        listed = found.get(Certificates.key)
        return (listed or find_certificates(ctx))[0]

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        domain = domains(ctx)[0]
        if current is None:
            names = " and ".join(domains(ctx))
            return create(self.kind, domain, f"for {names}, DNS-validated")
        return compare(self.kind, domain, {}, str(current["Status"]).lower())

    def apply(
        self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change
    ) -> Certificate:
        domain, *www = domains(ctx)
        alternatives = {"SubjectAlternativeNames": www} if www else {}
        with translated("requesting the certificate"):
            arn = ctx.client("acm").request_certificate(
                DomainName=domain,
                **alternatives,
                ValidationMethod="DNS",
                IdempotencyToken=ctx.run_id[:32],
                Tags=ctx.names.tags(),
            )["CertificateArn"]
        return Certificate(arn, "PENDING_VALIDATION")

    def ref(self, ctx: Context, current: Any, change: Change) -> Certificate:
        if current is None:
            return Certificate(NEW, "PENDING_VALIDATION")
        return Certificate(str(current["CertificateArn"]), str(current["Status"]))

    deleted_after = ("load balancer",)  # ACM takes a while to notice the load balancer is gone

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        return app_certificates(ctx, survey).items

    def delete(self, ctx: Context, item: Item) -> str:
        """Once no listener uses it: ACM takes a while to notice the load balancer is gone."""
        acm = ctx.client("acm")
        return retrying(
            ctx,
            f"deleting the certificate {item.name}",
            lambda: acm.delete_certificate(CertificateArn=item.data["arn"]),
            ("ResourceInUseException",),
            gone="ResourceNotFoundException",
        )

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        certificate = item.data["resource"]
        return str(certificate["DomainName"]), str(certificate["Status"])

    def when_absent(self, ctx: Context, survey: Survey) -> tuple[str, str, str] | None:
        """Missing when no live certificate found is DOMAIN's (one of an earlier DOMAIN or a
        failed one does not count)."""
        if not ctx.config.domain or live_certificate_of(ctx, survey) is not None:
            return None
        return ctx.config.domain, "missing", ""


class ValidationRecords(Resource):
    """The CNAME records ACM names for the certificate, in DOMAIN's zone: while it is pending
    (to be issued) and as long as it lives (ACM renews a DNS-validated certificate only while
    they exist), so records lost to an interrupted run or deleted by hand are written again."""

    delete_calls = ("route53:ChangeResourceRecordSets",)

    calls = {
        CREATE: ("route53:ChangeResourceRecordSets",),
        UPDATE: ("route53:ChangeResourceRecordSets",),
    }
    key = kind = "validation record"
    reads = (ZoneRecords.key, CertificateResource.key)
    needs = (HostedZone.key, CertificateResource.key)

    def name(self, ctx: Context) -> str:
        return ", ".join(domains(ctx))

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any]:
        certificate = found[CertificateResource.key] or {}
        if certificate.get("Status") == "ISSUED" and "DomainValidationOptions" not in certificate:
            # the listing's summary of an issued certificate names no records: one
            # DescribeCertificate (which `find_certificate` skipped), so each is read once
            with translated("reading the certificate's validation records"):
                certificate = ctx.client("acm").describe_certificate(
                    CertificateArn=certificate["CertificateArn"]
                )["Certificate"]
        options = certificate.get("DomainValidationOptions", [])
        ready = bool(options) and all("ResourceRecord" in option for option in options)
        wanted = validation_record_sets(unique_records(options)) if ready else None
        return {"records": found[ZoneRecords.key][1], "wanted": wanted}

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        certificate: Certificate = refs[CertificateResource.key]
        issued = certificate.status == "ISSUED" and not is_new(certificate.arn)
        wanted = (current or {}).get("wanted")
        if wanted is None or is_new(certificate.arn):  # ACM names them once it is requested
            if issued:  # issued, and ACM names no records (not DNS-validated): nothing to keep
                return compare(self.kind, self.name(ctx), {}, "certificate issued")
            return create(self.kind, self.name(ctx), "CNAMEs ACM names")
        missing = [
            r
            for r in wanted
            if not same_record(record_named(current["records"], r["Name"], r["Type"]), r)
        ]
        if missing:
            why = ": ACM renews the certificate only while they exist" if issued else ""
            return create(self.kind, self.name(ctx), f"{len(missing)} CNAME(s){why}")
        detail = f"{len(wanted)} CNAME(s)" + (", certificate issued" if issued else "")
        return compare(self.kind, self.name(ctx), {}, detail)

    surveys_after = ("load balancer",)

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        return [item for item in domain_items(ctx, survey) if item.kind == self.kind]

    def delete(self, ctx: Context, item: Item) -> str:
        return delete_record(ctx, item)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> None:
        zone: Zone = refs[HostedZone.key]
        existing = (current or {}).get("records", []) if zone.id and not is_new(zone.id) else []
        certificate: Certificate = refs[CertificateResource.key]
        wanted = (current or {}).get("wanted")
        if wanted is None or is_new(certificate.arn):  # requested in this run: ask ACM
            wanted = validation_record_sets(validation_records(ctx, certificate))
        upsert_records(ctx, zone, existing, wanted)

    def ref(self, ctx: Context, current: Any, change: Change) -> None:
        return None


def unique_records(options: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Each validation option's CNAME once: www.DOMAIN and DOMAIN may share one."""
    unique: dict[tuple[str, str], dict[str, str]] = {}
    for option in options:
        record = option["ResourceRecord"]
        unique[(fqdn(record["Name"]), record["Value"])] = record
    return list(unique.values())


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
        return unique_records(options)

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
    the registrar's name servers (may ask) and the delegation check. An issued certificate
    proves the delegation (ACM read its validation records through it): neither is asked."""
    ctx.ui.step(f"TLS for {domains(ctx)[0]}")
    decided, zone = turn(ctx, RESOURCES[0], planned.found.get(HostedZone.key), planned.refs)
    if planned.refs[CertificateResource.key].status == "ISSUED":
        return decided, zone, True
    offer_registrar_update(ctx, zone, update_registrar)
    return decided, zone, check_delegation(ctx, zone)


# --- what teardown and status find: wherever DOMAIN pointed before ------------------------------

# Certificates that still rely on their validation records: pending ones to be issued, issued
# ones to be renewed.
LIVE_CERTIFICATE_STATUSES = ("PENDING_VALIDATION", "ISSUED")
ALIAS_RECORD, VALIDATION_RECORD = "alias record", ValidationRecords.kind


def live_certificate_of(ctx: Context, survey: Survey) -> dict[str, Any] | None:
    """DOMAIN's live certificate among those the survey found: the issued one when there are
    several (a new one pending), else a pending one; None when there is none."""
    domain = (ctx.config.domain or "").lower()
    mine = [
        item.data["resource"]
        for item in survey.of(CertificateResource.key)
        if str(item.data.get("resource", {}).get("DomainName", "")).lower() == domain
        and item.data["resource"].get("Status") in LIVE_CERTIFICATE_STATUSES
    ]
    return next((c for c in mine if c["Status"] == "ISSUED"), mine[0] if mine else None)


def certificate_names(names: Iterable[str]) -> set[str]:
    """The names whose validation records a certificate uses (*.example.com uses example.com's)."""
    return {name.lower().removeprefix("*.") for name in names}


def records_validating(certificate: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (fqdn(option["ResourceRecord"]["Name"]), option["ResourceRecord"]["Value"])
        for option in certificate.get("DomainValidationOptions", [])
        if "ResourceRecord" in option
    }


def short_arn(arn: str) -> str:
    return arn.rsplit("/", 1)[-1][:8]


def listed_certificates(ctx: Context) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every certificate of the account, whatever its domain (DOMAIN may have changed or been
    unset): this app's, described, and the summaries of the others."""
    acm = ctx.client("acm")
    ours: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    # Without Includes, ListCertificates gives RSA 2048 certificates only: ask for every key
    # type, so that another certificate sharing a validation record is seen whatever its key.
    key_types = list(acm.meta.service_model.shape_for("KeyAlgorithm").enum)
    with translated("looking up the certificates"):
        pages = acm.get_paginator("list_certificates").paginate(Includes={"keyTypes": key_types})
        for summary in (s for page in pages for s in page.get("CertificateSummaryList", [])):
            arn = summary["CertificateArn"]
            tags = about_listed(acm.list_tags_for_certificate, arn)
            if tags is None:
                continue  # deleted since the listing
            if not ctx.names.owns(tags.get("Tags", [])):
                others.append(summary)
            elif (described := about_listed(acm.describe_certificate, arn)) is not None:
                ours.append(described["Certificate"])
    return ours, others


def records_still_needed(
    ctx: Context, ours: list[dict[str, Any]], others: list[dict[str, Any]]
) -> dict[tuple[str, str], str]:
    """The validation records that certificates of others still use (ACM gives every
    certificate of a domain the same record): record -> which certificate needs it."""
    acm = ctx.client("acm")
    our_names = certificate_names(
        name for c in ours for name in [c["DomainName"], *c.get("SubjectAlternativeNames", [])]
    )
    needed: dict[tuple[str, str], str] = {}
    with translated("looking up the certificates"):
        for summary in others:
            names = [summary["DomainName"], *summary.get("SubjectAlternativeNameSummaries", [])]
            shares = certificate_names(names) & our_names or summary.get(
                "HasAdditionalSubjectAlternativeNames"
            )
            if not (our_names and shares and summary.get("Status") in LIVE_CERTIFICATE_STATUSES):
                continue
            described = about_listed(acm.describe_certificate, summary["CertificateArn"])
            if described is None:
                continue
            other = described["Certificate"]
            for record in records_validating(other):
                needed[record] = (
                    f"also validates the certificate {short_arn(other['CertificateArn'])} "
                    f"for {other['DomainName']}, which is not this app's"
                )
    return needed


def tagged_zone_names(ctx: Context) -> set[str]:
    """Public hosted zones tagged as this app's (found even when DOMAIN changed or is unset)."""
    route53 = ctx.client("route53")
    zones: dict[str, str] = {}
    with translated("listing the hosted zones"):
        for page in route53.get_paginator("list_hosted_zones").paginate():
            for zone in page.get("HostedZones", []):
                if not zone.get("Config", {}).get("PrivateZone"):
                    zones[zone["Id"].rsplit("/", 1)[-1]] = zone["Name"]
        ids = sorted(zones)
        owned: set[str] = set()
        for start in range(0, len(ids), 10):  # ListTagsForResources takes at most ten
            answer = route53.list_tags_for_resources(
                ResourceType="hostedzone", ResourceIds=ids[start : start + 10]
            )
            for tag_set in answer.get("ResourceTagSets", []):
                if ctx.names.owns(tag_set.get("Tags", [])):
                    owned.add(tag_set["ResourceId"].rsplit("/", 1)[-1])
    return {zones[zone_id].lower().rstrip(".") for zone_id in owned}


def points_at_our_load_balancer(
    ctx: Context, alias: dict[str, Any], balancer: dict[str, Any] | None
) -> bool:
    """True for an alias to APP-alb: today's, or one already deleted (an interrupted teardown),
    recognised by its DNS name APP-alb-ID.REGION.elb.DNS-SUFFIX (the partition's)."""
    target = fqdn(alias["DNSName"]).removeprefix("dualstack.")
    if balancer is not None and target == fqdn(balancer["DNSName"]):
        return True
    prefix = f"{ctx.names.alb}-".lower()
    suffix = partition.for_region(ctx.config.aws_region).elb_suffix(ctx.config.aws_region) + "."
    if not (target.startswith(prefix) and target.endswith(suffix)):
        return False
    middle = target[len(prefix) : -len(suffix)]
    return middle.isalnum()  # a longer name (APP-alb-x-ID) is another load balancer


@dataclass
class AppCertificates:
    """This app's certificates, described, as survey items, and the validation records that
    certificates which stay still use."""

    ours: list[dict[str, Any]]
    items: list[Item]
    still_needed: dict[tuple[str, str], str]  # validation record -> what else uses it


def app_certificates(ctx: Context, survey: Survey) -> AppCertificates:
    """Read once per survey: the certificates' and the DNS records' surveys both use it. A
    certificate something else uses (InUseBy other than the app's load balancer) stays."""

    def read() -> AppCertificates:
        ours, others = listed_certificates(ctx)
        still_needed = records_still_needed(ctx, ours, others)
        # InUseBy names the load balancer (or one of its listeners): ARNs with /app/APP-alb/.
        ours_in_use = re.compile(
            rf":(loadbalancer|listener|listener-rule)/app/{re.escape(ctx.names.alb)}/"
        )
        items = []
        for certificate in ours:
            arn = certificate["CertificateArn"]
            name = f"{certificate['DomainName']} ({short_arn(arn)})"
            users = [u for u in certificate.get("InUseBy", []) if not ours_in_use.search(u)]
            if not users:
                reason = certificate["Status"].lower()
                data = {"arn": arn, "resource": certificate}
                items.append(Item(CertificateResource.kind, name, DELETE, reason, data))
                continue
            reason = f"in use by {', '.join(users)}; remove it there first"
            data = {"arn": arn, "resource": certificate}
            items.append(Item(CertificateResource.kind, name, KEEP, reason, data))
            if certificate.get("Status") in LIVE_CERTIFICATE_STATUSES:
                for record in records_validating(certificate):
                    still_needed[record] = f"validates the certificate {name}, which stays"
        return AppCertificates(ours, items, still_needed)

    return survey.shared("app certificates", read)


def domain_items(ctx: Context, survey: Survey) -> list[Item]:
    """The app's records and zones, in the zone of every domain of the app (DOMAIN, its
    certificates', its tagged zones); read once per survey, each record kind takes its own."""

    def read() -> list[Item]:
        certificates = app_certificates(ctx, survey)
        domains = {ctx.config.domain.lower()} if ctx.config.domain else set()
        domains |= {c["DomainName"].lower().removeprefix("*.") for c in certificates.ours}
        domains |= tagged_zone_names(ctx)
        zones: dict[str, tuple[Zone, set[str]]] = {}  # a zone may hold several app domains
        for domain in sorted(domains):
            zone = find_enclosing_zone(ctx, domain)
            if zone is not None:
                zones.setdefault(zone.id, (zone, set()))[1].add(domain)
        balancers = [i.data["resource"] for i in survey.of("load balancer") if i.data]
        balancer = balancers[0] if balancers else None
        items: list[Item] = []
        for zone, names in zones.values():
            records = zone_records(ctx, zone.id)
            ours = _app_records(ctx, zone.id, records, names, certificates, balancer)
            items += [*ours, _zone_item(zone, records, ours, survey.everything)]
        return items

    return survey.shared("domain items", read)


def _app_records(
    ctx: Context,
    zone_id: str,
    records: list[dict[str, Any]],
    names: set[str],
    certificates: AppCertificates,
    balancer: dict[str, Any] | None,
) -> list[Item]:
    """In one zone: the alias records of each domain and www.domain that point at the app's
    load balancer, and the validation records of its certificates (exact values). Every
    other record is the user's and is never touched."""
    aliases = {fqdn(n) for name in names for n in (name, f"www.{name}")}
    www_names = {fqdn(f"www.{name}") for name in names}
    validation = set().union(*(records_validating(c) for c in certificates.ours))
    items: list[Item] = []
    for record in records:
        name = fqdn(record["Name"])
        label = f"{name.rstrip('.')} {record['Type']}"
        data: dict[str, Any] = {"zone": zone_id, "record": record}
        alias = record.get("AliasTarget")
        if record["Type"] == "A" and alias and name in aliases:
            if points_at_our_load_balancer(ctx, alias, balancer):
                data["www"] = name in www_names
                items.append(Item(ALIAS_RECORD, label, DELETE, f"alias to {ctx.names.alb}", data))
        elif record["Type"] == "CNAME" and "ResourceRecords" in record:
            values = [r["Value"] for r in record["ResourceRecords"]]
            if len(values) != 1 or (name, values[0]) not in validation:
                continue
            needed_by = certificates.still_needed.get((name, values[0]))
            if needed_by:
                items.append(Item(VALIDATION_RECORD, label, KEEP, needed_by))
            else:
                items.append(Item(VALIDATION_RECORD, label, DELETE, "certificate validation", data))
    return items


def _zone_item(
    zone: Zone, records: list[dict[str, Any]], ours: list[Item], everything: bool
) -> Item:
    """The zone: deleted only with --all, when dashscale made it and nothing of the user's is
    in it once the app's records are gone."""
    going = [item.data["record"] for item in ours if item.action == DELETE]
    others = [
        r
        for r in records
        if r not in going
        and not (fqdn(r["Name"]) == fqdn(zone.name) and r["Type"] in ("SOA", "NS"))
    ]
    kind, name, data = HostedZone.kind, zone.name, {"zone": zone.id, "owned": zone.owned}
    if not zone.owned:
        return Item(kind, name, KEEP, "not created by dashscale for this app: never deleted", data)
    if not everything:
        return Item(kind, name, KEEP, "holds your domain's DNS; --all deletes it", data)
    if others:
        reason = f"holds {len(others)} record(s) that are not dashscale's"
        return Item(kind, name, KEEP, reason, data)
    return Item(kind, name, DELETE, "created by dashscale", data)


def delete_record(ctx: Context, item: Item) -> str:
    """DELETE with the exact record as listed: a record changed since is not removed."""
    route53 = ctx.client("route53")
    try:
        route53.change_resource_record_sets(
            HostedZoneId=item.data["zone"],
            ChangeBatch={
                "Comment": f"dashscale teardown {ctx.names.app}",
                "Changes": [{"Action": "DELETE", "ResourceRecordSet": item.data["record"]}],
            },
        )
    except botocore.exceptions.ClientError as error:
        if error_code(error) == "InvalidChangeBatch":
            return "already gone or changed since the survey: left as it is"
        if error_code(error) == "NoSuchHostedZone":
            return "already gone"
        raise
    return ""

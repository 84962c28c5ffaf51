"""`dashscale tls`: the app on https://DOMAIN and https://www.DOMAIN, port 80 redirected.

Two halves, so that `up` can start the slow part early:
- `prepare` needs no load balancer: hosted zone, delegation check, certificate request and its
  DNS validation records. AWS validates while the rest of the deployment goes on.
- `finish` waits for the certificate, then wires the load balancer: HTTPS listener with a TLS 1.3
  policy, a permanent redirect on port 80, alias records for DOMAIN and www.DOMAIN.
Every change is made only when what exists differs, so a re-run makes no changing call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import botocore.exceptions
import click

from dashscale.aws import already_exists, error_code, translated, wait_until
from dashscale.context import Context
from dashscale.dns import DnsUnavailable, name_servers, system_resolver
from dashscale.errors import AwsError, WaitTimeout
from dashscale.plan import NEW, change, is_new
from dashscale.steps.alb import (
    LoadBalancer,
    find_listener,
    find_load_balancer,
    find_target_group,
    forward_action,
    forwards_to,
    load_balancer_of,
)
from dashscale.ui import is_interactive

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
REDIRECT_ACTION = {
    "Type": "redirect",
    "RedirectConfig": {
        "Protocol": "HTTPS",
        "Port": "443",
        "Host": "#{host}",
        "Path": "/#{path}",
        "Query": "#{query}",
        "StatusCode": "HTTP_301",
    },
}
CERTIFICATE_TIMEOUT = 3600.0
DOMAINS_REGION = "us-east-1"  # Route 53 Domains answers only there


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


@dataclass(frozen=True)
class TlsPlan:
    """What `prepare` leaves for `finish`."""

    zone: Zone
    certificate: Certificate
    delegated: bool | None  # None: DNS could not be asked


def domains(ctx: Context) -> tuple[str, str]:
    domain = ctx.config.domain
    assert domain, "the TLS step runs only with DOMAIN set"
    return domain, f"www.{domain}"


def fqdn(name: str) -> str:
    return name.lower().rstrip(".") + "."


# --- hosted zone --------------------------------------------------------------------------------


def find_zone(ctx: Context, domain: str | None = None) -> Zone | None:
    """The public hosted zone named exactly `domain` (default DOMAIN), if there is one."""
    domain = domain or domains(ctx)[0]
    route53 = ctx.client("route53")
    with translated("looking up the hosted zone"):
        answer = route53.list_hosted_zones_by_name(DNSName=domain, MaxItems="10")
        for zone in answer.get("HostedZones", []):
            if zone["Name"].lower() != fqdn(domain) or zone.get("Config", {}).get("PrivateZone"):
                continue
            zone_id = zone["Id"].rsplit("/", 1)[-1]
            details = route53.get_hosted_zone(Id=zone_id)
            servers = tuple(details.get("DelegationSet", {}).get("NameServers", []))
            tags = route53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id)
            owned = ctx.names.owns(tags.get("ResourceTagSet", {}).get("Tags", []))
            comment = (details.get("HostedZone", {}).get("Config") or {}).get("Comment")
            return Zone(zone_id, servers, owned, made_by_us=comment == zone_comment(ctx))
    return None


def zone_comment(ctx: Context) -> str:
    return f"dashscale app {ctx.names.app}"


def ensure_zone(ctx: Context) -> Zone:
    domain, _ = domains(ctx)
    zone = find_zone(ctx)
    if zone is not None and zone.made_by_us and not zone.owned and not ctx.dry_run:
        # Created by an earlier run that stopped before tagging it: finish the job, so that
        # `teardown --all` recognises it.
        with translated("tagging the hosted zone"):
            ctx.client("route53").change_tags_for_resource(
                ResourceType="hostedzone", ResourceId=zone.id, AddTags=ctx.names.tags()
            )
        zone = Zone(zone.id, zone.name_servers, True, True)
        ctx.ui.resource("hosted zone", domain, "updated", f"{zone.id}: tagged")
        return zone
    if zone is not None:
        ctx.ui.resource("hosted zone", domain, "found", zone.id)
        return zone
    if ctx.dry_run:
        ctx.ui.resource("hosted zone", domain, "created", "public")
        return Zone(NEW, (), True)
    route53 = ctx.client("route53")
    with translated("creating the hosted zone"):
        try:
            created = route53.create_hosted_zone(
                Name=domain,
                CallerReference=f"dashscale-{ctx.names.app}-{ctx.run_id}",
                HostedZoneConfig={"Comment": zone_comment(ctx)},
            )
            zone_id = created["HostedZone"]["Id"].rsplit("/", 1)[-1]
        except botocore.exceptions.ClientError as error:
            if not already_exists(error, "HostedZoneAlreadyExists"):
                raise
            found = find_zone(ctx)  # our own retried request got there first
            if found is None:
                raise
            zone_id = found.id
        route53.change_tags_for_resource(
            ResourceType="hostedzone", ResourceId=zone_id, AddTags=ctx.names.tags()
        )
    zone = find_zone(ctx)
    assert zone is not None
    ctx.ui.resource("hosted zone", domain, "created", zone.id)
    ctx.ui.info(
        f"  The zone's name servers: {', '.join(zone.name_servers)}. Set these four at the "
        f"registrar of {domain}; the certificate cannot be validated until you do."
    )
    return zone


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


def offer_registrar_update(ctx: Context, zone: Zone, update: bool) -> None:
    """When the domain is registered with Route 53 Domains here, offer to point it at the zone."""
    domain, _ = domains(ctx)
    if is_new(zone.id):  # a dry run: the new zone's name servers are not known yet
        return
    registrar = ctx.client("route53domains", DOMAINS_REGION)
    try:
        detail = registrar.get_domain_detail(DomainName=domain)
    except botocore.exceptions.ClientError as error:  # not registered here, or not allowed
        ctx.ui.detail(f"Route 53 Domains does not manage {domain} here ({error_code(error)})")
        return
    current = {fqdn(ns["Name"]) for ns in detail.get("Nameservers", [])}
    wanted = [fqdn(server).rstrip(".") for server in zone.name_servers]
    if current == {fqdn(server) for server in wanted}:
        ctx.ui.resource("registrar", domain, "found", "points at the zone")
        return
    if ctx.dry_run:
        note = change("name servers", sorted(current), wanted)
        ctx.ui.resource("registrar", domain, "updated", f"{note} (with --update-registrar)")
        return
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


# --- certificate --------------------------------------------------------------------------------


def find_certificate(ctx: Context) -> Certificate | None:
    """This app's pending or issued certificate for exactly DOMAIN and www.DOMAIN."""
    domain, www = domains(ctx)
    wanted = {domain, www}
    acm = ctx.client("acm")
    with translated("looking up the certificate"):
        pages = acm.get_paginator("list_certificates").paginate(
            CertificateStatuses=["PENDING_VALIDATION", "ISSUED"]
        )
        for page in pages:
            for summary in page.get("CertificateSummaryList", []):
                if summary.get("DomainName") != domain:
                    continue
                arn = summary["CertificateArn"]
                tags = acm.list_tags_for_certificate(CertificateArn=arn).get("Tags", [])
                if not ctx.names.owns(tags):
                    continue
                details = acm.describe_certificate(CertificateArn=arn)["Certificate"]
                names = {details["DomainName"], *details.get("SubjectAlternativeNames", [])}
                if names == wanted:
                    return Certificate(arn, details["Status"])
    return None


def ensure_certificate(ctx: Context) -> Certificate:
    domain, www = domains(ctx)
    certificate = find_certificate(ctx)
    if certificate is not None:
        ctx.ui.resource("certificate", domain, "found", certificate.status.lower())
        return certificate
    if ctx.dry_run:
        ctx.ui.resource("certificate", domain, "created", f"for {domain} and {www}, DNS-validated")
        return Certificate(NEW, "PENDING_VALIDATION")
    with translated("requesting the certificate"):
        arn = ctx.client("acm").request_certificate(
            DomainName=domain,
            SubjectAlternativeNames=[www],
            ValidationMethod="DNS",
            IdempotencyToken=ctx.run_id[:32],
            Tags=ctx.names.tags(),
        )["CertificateArn"]
    ctx.ui.resource("certificate", domain, "created", f"for {domain} and {www}")
    return Certificate(arn, "PENDING_VALIDATION")


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


def record_set(ctx: Context, zone: Zone, name: str, kind: str) -> dict[str, Any] | None:
    if is_new(zone.id):  # a dry run's zone that would be created holds no records yet
        return None
    answer = ctx.client("route53").list_resource_record_sets(
        HostedZoneId=zone.id, StartRecordName=fqdn(name), StartRecordType=kind, MaxItems="1"
    )
    for record in answer.get("ResourceRecordSets", []):
        if fqdn(record["Name"]) == fqdn(name) and record["Type"] == kind:
            return record
    return None


def upsert_records(ctx: Context, zone: Zone, wanted: list[dict[str, Any]], kind: str) -> None:
    """UPSERTs the record sets that are missing or differ; one change batch, or no call."""
    changes = []
    with translated(f"writing the {kind} records"):
        for record in wanted:
            existing = record_set(ctx, zone, record["Name"], record["Type"])
            state = (
                "found"
                if existing and same_record(existing, record)
                else ("updated" if existing else "created")
            )
            if state != "found":
                changes.append({"Action": "UPSERT", "ResourceRecordSet": record})
            ctx.ui.resource(kind, record["Name"].rstrip("."), state)
        if changes and not ctx.dry_run:
            ctx.client("route53").change_resource_record_sets(
                HostedZoneId=zone.id,
                ChangeBatch={"Comment": f"dashscale {ctx.names.app}", "Changes": changes},
            )


def _alias_dns(name: str) -> str:
    name = name.lower().rstrip(".")
    return name.removeprefix("dualstack.")


def same_record(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
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


def issued_now(ctx: Context, plan: TlsPlan) -> Certificate | None:
    """The certificate when ACM has issued it, None while it is pending; one look, no wait."""
    if plan.certificate.status == "ISSUED":
        return plan.certificate
    domain, _ = domains(ctx)
    with translated("reading the certificate's status"):
        details = ctx.client("acm").describe_certificate(CertificateArn=plan.certificate.arn)
    status = details["Certificate"]["Status"]
    if status == "ISSUED":
        return Certificate(plan.certificate.arn, status)
    if status != "PENDING_VALIDATION":
        raise AwsError(
            f"the certificate for {domain} is {status}, not ISSUED",
            "run `dashscale tls` again to request a new one",
        )
    return None


def why_pending(plan: TlsPlan, domain: str) -> str:
    if plan.delegated is False:
        return (
            f"public DNS does not yet point {domain} at the zone's name servers "
            f"({', '.join(plan.zone.name_servers)}); set them at your registrar"
        )
    return "ACM has not yet seen the validation records"


def wait_issued(ctx: Context, plan: TlsPlan, timeout: float) -> Certificate:
    domain, _ = domains(ctx)
    if plan.certificate.status == "ISSUED":
        return plan.certificate
    if ctx.dry_run:  # nothing to wait for: nothing was requested
        ctx.ui.info(f"dry run: would wait for the certificate for {domain} to be issued")
        return plan.certificate
    with ctx.ui.waiting(f"certificate for {domain}: waiting for ACM's DNS validation") as display:
        try:
            certificate = wait_until(
                lambda: issued_now(ctx, plan),
                what=f"the certificate for {domain} to be issued",
                timeout=timeout,
                clock=ctx.clock,
                interval=2,
                max_interval=15,
                on_poll=lambda s: display.update(
                    f"certificate for {domain}: PENDING_VALIDATION, {int(s)} s"
                ),
            )
        except WaitTimeout as error:
            raise WaitTimeout(
                f"{error.message}: it is still PENDING_VALIDATION because "
                f"{why_pending(plan, domain)}",
                "run `dashscale tls` (or `up`) again later: it picks up the same certificate",
            ) from None
    ctx.ui.resource("certificate", domain, "issued")
    return certificate


def https_if_issued(
    ctx: Context, plan: TlsPlan, lb: LoadBalancer, tg_arn: str, timeout: float, wait: bool
) -> str | None:
    """`up`'s HTTPS piece: waits for the certificate and wires the load balancer; without
    `wait`, wires it only when the certificate is already issued and otherwise says what
    finishes the job. Returns https://DOMAIN, or None when HTTPS is left for later."""
    if wait or ctx.dry_run:
        return wire(ctx, plan, wait_issued(ctx, plan, timeout), lb, tg_arn)
    certificate = issued_now(ctx, plan)
    if certificate is not None:
        return wire(ctx, plan, certificate, lb, tg_arn)
    domain, _ = domains(ctx)
    ctx.ui.resource("certificate", domain, "pending", "not waiting for ACM (--no-wait)")
    return None


def pending_note(ctx: Context, plan: TlsPlan) -> str:
    """What finishes HTTPS after `up --no-wait` left the certificate pending."""
    domain, _ = domains(ctx)
    return (
        f"HTTPS on {domain} follows once ACM issues the certificate (pending because "
        f"{why_pending(plan, domain)}). Then run `dashscale tls` (or `dashscale up`): it adds "
        "the HTTPS listener, the redirect and the alias records. Until then the app answers on "
        "the load balancer's http:// address."
    )


# --- load balancer wiring ---------------------------------------------------------------------


def _is_redirect(actions: list[dict[str, Any]]) -> bool:
    if len(actions) != 1 or actions[0].get("Type") != "redirect":
        return False
    config = actions[0].get("RedirectConfig", {})
    return all(config.get(k) == v for k, v in REDIRECT_ACTION["RedirectConfig"].items())


def ensure_https_listener(ctx: Context, lb_arn: str, tg_arn: str, cert_arn: str) -> None:
    elbv2 = ctx.client("elbv2")
    wanted_certs = [{"CertificateArn": cert_arn}]
    with translated("setting up the HTTPS listener"):
        existing = find_listener(ctx, 443, lb_arn)
        if existing is None and ctx.dry_run:
            ctx.ui.resource("listener", "HTTPS :443", "created", TLS_POLICY)
            return
        if existing is None:
            try:
                elbv2.create_listener(
                    LoadBalancerArn=lb_arn,
                    Protocol="HTTPS",
                    Port=443,
                    SslPolicy=TLS_POLICY,
                    Certificates=wanted_certs,
                    DefaultActions=[forward_action(tg_arn)],
                    Tags=ctx.names.tags(),
                )
                ctx.ui.resource("listener", "HTTPS :443", "created", TLS_POLICY)
                return
            except botocore.exceptions.ClientError as error:
                if not already_exists(error, "DuplicateListener"):
                    raise
                existing = find_listener(ctx, 443, lb_arn)
                assert existing is not None
        current_certs = [c["CertificateArn"] for c in existing.get("Certificates", [])]
        if (
            existing.get("Protocol") == "HTTPS"
            and existing.get("SslPolicy") == TLS_POLICY
            and current_certs == [cert_arn]
            and len(existing.get("DefaultActions", [])) == 1
            and forwards_to(existing["DefaultActions"][0], tg_arn)
        ):
            ctx.ui.resource("listener", "HTTPS :443", "found", TLS_POLICY)
            return
        if ctx.dry_run:
            note = "; ".join(
                change(field, old, new)
                for field, old, new in (
                    ("protocol", existing.get("Protocol"), "HTTPS"),
                    ("TLS policy", existing.get("SslPolicy"), TLS_POLICY),
                    ("certificate", current_certs, [cert_arn]),
                )
                if old != new
            )
            ctx.ui.resource("listener", "HTTPS :443", "updated", note or "default action")
            return
        elbv2.modify_listener(
            ListenerArn=existing["ListenerArn"],
            Protocol="HTTPS",
            Port=443,
            SslPolicy=TLS_POLICY,
            Certificates=wanted_certs,
            DefaultActions=[forward_action(tg_arn)],
        )
        ctx.ui.resource("listener", "HTTPS :443", "updated", TLS_POLICY)


def ensure_redirect(ctx: Context, lb_arn: str) -> None:
    elbv2 = ctx.client("elbv2")
    with translated("redirecting HTTP to HTTPS"):
        existing = find_listener(ctx, 80, lb_arn)
        if existing is None and ctx.dry_run:
            ctx.ui.resource("listener", "HTTP :80", "created", "301 to HTTPS")
            return
        if existing is None:
            try:
                elbv2.create_listener(
                    LoadBalancerArn=lb_arn,
                    Protocol="HTTP",
                    Port=80,
                    DefaultActions=[REDIRECT_ACTION],
                    Tags=ctx.names.tags(),
                )
                ctx.ui.resource("listener", "HTTP :80", "created", "301 to HTTPS")
                return
            except botocore.exceptions.ClientError as error:
                if not already_exists(error, "DuplicateListener"):
                    raise
                existing = find_listener(ctx, 80, lb_arn)
                assert existing is not None
        if _is_redirect(existing.get("DefaultActions", [])):
            ctx.ui.resource("listener", "HTTP :80", "found", "301 to HTTPS")
            return
        if ctx.dry_run:
            ctx.ui.resource(
                "listener", "HTTP :80", "updated", change("action", "forward", "301 to HTTPS")
            )
            return
        elbv2.modify_listener(ListenerArn=existing["ListenerArn"], DefaultActions=[REDIRECT_ACTION])
        ctx.ui.resource("listener", "HTTP :80", "updated", "301 to HTTPS")


def alias_record_sets(ctx: Context, lb: LoadBalancer) -> list[dict[str, Any]]:
    # An alias points at the load balancer's own hosted zone, not at the user's zone.
    return [
        {
            "Name": fqdn(name),
            "Type": "A",
            "AliasTarget": {
                "HostedZoneId": lb.canonical_hosted_zone_id,
                "DNSName": lb.dns_name,
                "EvaluateTargetHealth": True,
            },
        }
        for name in domains(ctx)
    ]


# --- the step -----------------------------------------------------------------------------------


def prepare_zone(ctx: Context, update_registrar: bool = False) -> tuple[Zone, bool | None]:
    """The hosted zone, the registrar's name servers (may ask) and the delegation check."""
    domain, _ = domains(ctx)
    ctx.ui.step(f"TLS for {domain}")
    zone = ensure_zone(ctx)
    offer_registrar_update(ctx, zone, update_registrar)
    return zone, check_delegation(ctx, zone)


def prepare_certificate(ctx: Context, zone: Zone, delegated: bool | None) -> TlsPlan:
    """The certificate and its validation records: ACM starts validating from here on."""
    certificate = ensure_certificate(ctx)
    if is_new(certificate.arn):  # a dry run: ACM names the records once it is requested
        domain, www = domains(ctx)
        ctx.ui.resource("validation record", f"{domain}, {www}", "created", "CNAMEs ACM names")
    elif certificate.status != "ISSUED":
        records = validation_records(ctx, certificate)
        upsert_records(ctx, zone, validation_record_sets(records), "validation record")
    return TlsPlan(zone, certificate, delegated)


def prepare(ctx: Context, update_registrar: bool = False) -> TlsPlan:
    """Zone, delegation check, certificate and its validation records: no load balancer needed."""
    zone, delegated = prepare_zone(ctx, update_registrar)
    return prepare_certificate(ctx, zone, delegated)


def wire(
    ctx: Context, plan: TlsPlan, certificate: Certificate, lb: LoadBalancer, tg_arn: str
) -> str:
    """HTTPS listener, redirect and aliases for an issued certificate; returns the URL."""
    ensure_https_listener(ctx, lb.arn, tg_arn, certificate.arn)
    # Aliases before the redirect: if they fail, http:// on the load balancer still serves.
    upsert_records(ctx, plan.zone, alias_record_sets(ctx, lb), "alias record")
    ensure_redirect(ctx, lb.arn)
    domain, _ = domains(ctx)
    return f"https://{domain}"


def finish(
    ctx: Context,
    plan: TlsPlan,
    lb: LoadBalancer,
    tg_arn: str,
    timeout: float = CERTIFICATE_TIMEOUT,
) -> str:
    """Waits for the certificate, then HTTPS listener, redirect and aliases; returns the URL."""
    return wire(ctx, plan, wait_issued(ctx, plan, timeout), lb, tg_arn)


def run(ctx: Context, update_registrar: bool = False, timeout: float = CERTIFICATE_TIMEOUT) -> str:
    """The `tls` command: needs the load balancer and target group that `alb` made."""
    balancer, group = find_load_balancer(ctx), find_target_group(ctx)
    if balancer is None or group is None:
        missing = ctx.names.alb if balancer is None else ctx.names.target_group
        raise AwsError(f"{missing} not found", "run `dashscale alb` (or `up`) first")
    plan = prepare(ctx, update_registrar)
    return finish(ctx, plan, load_balancer_of(balancer), str(group["TargetGroupArn"]), timeout)

"""HTTPS on the load balancer, once the certificate is issued: the listener on port 443 with a
TLS 1.3 policy (signing users in first with AUTH: auth.py), the alias records of DOMAIN and
www.DOMAIN (for an apex, or with WWW=true), and the permanent redirect on port 80.

The aliases come before the redirect: if they fail, http:// on the load balancer still serves.
With --no-wait and a certificate still pending, all three wait for a later `tls` or `up`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import botocore.exceptions

from dashscale import driver, model
from dashscale.aws import error_code, translated
from dashscale.context import Context
from dashscale.driver import Done, Hooks, Section
from dashscale.errors import AwsError, WaitTimeout
from dashscale.model import (
    CREATE,
    DELETE,
    NEW,
    UPDATE,
    Change,
    Extra,
    Item,
    Plan,
    Resource,
    Survey,
    compare,
    create,
)
from dashscale.steps import auth, service, tls
from dashscale.steps.alb import (
    HTTPS_LISTENER,
    HTTPS_PORT,
    BalancerAndGroup,
    HttpListener,
    Listeners,
    LoadBalancer,
    LoadBalancerResource,
    TargetGroup,
    create_listener,
    delete_listener,
    listener_items,
    missing_listener,
    shown_listener,
    signs_in,
    signs_in_first,
)
from dashscale.steps.tls import (
    Certificate,
    CertificateResource,
    Certificates,
    HostedZone,
    ValidationRecords,
    ZoneRecords,
    domains,
    fqdn,
    record_named,
    same_record,
    upsert_records,
    why_pending,
    with_www,
)

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
ISSUED = "certificate issued"  # the run's task that waits for ACM; None: left for later
IN_USE_WAIT = 120.0  # ACM may take a moment to see that the listener moved to the new one


# --- the certificate's issue --------------------------------------------------------------------


# The IAM action of waiting for the certificate (dashscale/policy.py).
CERTIFICATE_WAIT_CALLS = ("acm:DescribeCertificate",)


def issued_now(ctx: Context, certificate: Certificate) -> Certificate | None:
    """The certificate when ACM has issued it, None while it is pending; one look, no wait."""
    if certificate.status == "ISSUED":
        return certificate
    domain = domains(ctx)[0]
    with translated("reading the certificate's status"):
        details = ctx.client("acm").describe_certificate(CertificateArn=certificate.arn)
    status = details["Certificate"]["Status"]
    if status == "ISSUED":
        return Certificate(certificate.arn, status)
    if status != "PENDING_VALIDATION":
        raise AwsError(
            f"the certificate for {domain} is {status}, not ISSUED",
            "run `dashscale tls` again to request a new one",
        )
    return None


def wait_issued(ctx: Context, certificate: Certificate, timeout: float, why: str) -> Certificate:
    domain = domains(ctx)[0]
    if certificate.status == "ISSUED":
        return certificate
    try:
        issued = ctx.wait(
            f"certificate for {domain}: waiting for ACM's DNS validation",
            f"the certificate for {domain} to be issued",
            lambda: issued_now(ctx, certificate),
            2,
            progress=lambda: f"certificate for {domain}: PENDING_VALIDATION",
            timeout=timeout,
            max_interval=15,
        )
    except WaitTimeout as error:
        raise WaitTimeout(
            f"{error.message}: it is still PENDING_VALIDATION because {why}",
            "run `dashscale tls` (or `up`) again later: it picks up the same certificate",
        ) from None
    ctx.ui.resource("certificate", domain, "issued")
    return issued


def certificate_issued(
    ctx: Context, certificate: Certificate, timeout: float, wait: bool, why: str
) -> Certificate | None:
    """The run's wait for ACM: until issued with `wait`; otherwise one look, and None (HTTPS
    left for later) while it is pending."""
    if wait:
        return wait_issued(ctx, certificate, timeout, why)
    issued = issued_now(ctx, certificate)
    if issued is None:
        domain = domains(ctx)[0]
        ctx.ui.resource("certificate", domain, "pending", "not waiting for ACM (--no-wait)")
    return issued


def pending_note(ctx: Context, why: str) -> str:
    """What finishes HTTPS after `up --no-wait` left the certificate pending."""
    domain = domains(ctx)[0]
    until = (
        "Until then the app is private and not reachable: port 80 answers 503 and the tasks "
        "start with the HTTPS listener that signs users in."
        if signs_in(ctx)
        else "Until then the app answers on the load balancer's http:// address."
    )
    return (
        f"HTTPS on {domain} follows once ACM issues the certificate (pending because {why}). "
        "Then run `dashscale tls` (or `dashscale up`): it adds the HTTPS listener, the redirect "
        f"and the alias records. {until}"
    )


class _AfterIssue(Resource):
    """A piece of HTTPS: its turn comes once the certificate is issued."""

    def skipped(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> str | None:
        if ISSUED in refs and refs[ISSUED] is None:
            return "waits for the certificate"
        return None


# --- the resources ------------------------------------------------------------------------------


class HttpsListener(_AfterIssue):
    """Port 443 with the certificate and a TLS 1.3 policy, forwarding to the target group;
    with AUTH, signing the user in first (auth.py)."""

    delete_calls = ("elasticloadbalancing:DeleteListener",)

    calls = {
        CREATE: (
            "elasticloadbalancing:CreateListener",
            "elasticloadbalancing:ModifyListener",
            "elasticloadbalancing:AddTags",
        ),
        UPDATE: (
            "elasticloadbalancing:ModifyListener",
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:RemoveTags",
        ),
    }
    key = HTTPS_LISTENER
    kind = "listener"
    reads = (Listeners.key,)
    needs = (
        ISSUED,
        CertificateResource.key,
        ValidationRecords.key,
        LoadBalancerResource.key,
        TargetGroup.key,
        auth.UserPoolClient.key,
        auth.UserPoolDomain.key,
    )

    def name(self, ctx: Context) -> str:
        return f"HTTPS :{HTTPS_PORT}"

    def detail(self, ctx: Context) -> str:
        sign_in = "" if ctx.config.auth == auth.NONE else f", sign-in {ctx.config.auth}"
        return TLS_POLICY + sign_in

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        listener = found[Listeners.key].get(HTTPS_PORT)
        if listener is None or ctx.config.auth != auth.OIDC:
            return listener
        # its tags hold the OIDC client secret's fingerprint (AWS never returns the secret)
        with translated("reading the HTTPS listener's tags"):
            answer = ctx.client("elbv2").describe_tags(ResourceArns=[listener["ListenerArn"]])
        tags = {t["Key"]: t["Value"] for d in answer["TagDescriptions"] for t in d["Tags"]}
        return {**listener, "Tags": tags}

    def skipped(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> str | None:
        # A listener that forwards without signing in (AUTH just switched on) signs in at once,
        # with the certificate it has, even while a new one is pending: never left public.
        if signs_in(ctx) and current is not None and not signs_in_first(current):
            return None
        return super().skipped(ctx, current, refs)

    def _certificate(self, refs: Mapping[str, Any], current: Any) -> str:
        """The issued certificate; while a new one is pending, the one the listener has."""
        issued = refs.get(ISSUED)
        if ISSUED in refs and issued is None and current is not None:
            return str(current["Certificates"][0]["CertificateArn"])
        return (issued or refs[CertificateResource.key]).arn

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        wanted = auth.listener_actions(ctx, refs)
        actions = (current or {}).get("DefaultActions", [])
        auth.with_secret(ctx, wanted, actions, refs)  # none: stops, unchanged
        if current is None:
            return create(self.kind, self.name(ctx), self.detail(ctx))
        certificate = self._certificate(refs, current)
        certificates = [c["CertificateArn"] for c in current.get("Certificates", [])]
        differing: dict[str, tuple[Any, Any]] = {}
        if current.get("Protocol") != "HTTPS":
            differing["protocol"] = (current.get("Protocol"), "HTTPS")
        if current.get("SslPolicy") != TLS_POLICY:
            differing["TLS policy"] = (current.get("SslPolicy"), TLS_POLICY)
        if certificates != [certificate]:
            differing["certificate"] = (certificates, [certificate])
        if auth.shapes(actions) != auth.shapes(wanted):
            differing["default actions"] = (auth.describe(actions), auth.describe(wanted))
        shown = {}
        secret = auth.secret_change(ctx, refs, current.get("Tags") or {})
        if secret is not None:  # never the value, never its fingerprint
            differing["client secret"] = ("", "")
            shown["client secret"] = secret
        return compare(self.kind, self.name(ctx), differing, self.detail(ctx), shown)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> str:
        settings = {
            "Protocol": "HTTPS",
            "SslPolicy": TLS_POLICY,
            "Certificates": [{"CertificateArn": self._certificate(refs, current)}],
            "DefaultActions": auth.with_secret(
                ctx,
                auth.listener_actions(ctx, refs),
                (current or {}).get("DefaultActions", []),
                refs,
            ),
        }
        with translated("setting up the HTTPS listener"):
            if current is None:
                balancer: LoadBalancer = refs[LoadBalancerResource.key]
                arn = create_listener(ctx, balancer.arn, HTTPS_PORT, **settings)
            else:
                arn = str(current["ListenerArn"])
                self._forget_secret(ctx, arn, current)
                ctx.client("elbv2").modify_listener(ListenerArn=arn, Port=HTTPS_PORT, **settings)
            self._record_secret(ctx, arn, current or {}, refs)
        return arn

    def _record_secret(
        self, ctx: Context, arn: str, current: Mapping[str, Any], refs: Mapping[str, Any]
    ) -> None:
        """The fingerprint of the secret just written, once the listener has it (interrupted
        before: the next run writes the secret again); removed when the listener no longer
        signs in with OIDC (`_forget_secret`). Kept when the listener kept its own secret."""
        tags = current.get("Tags") or {}
        secret: auth.ClientSecret | None = refs.get(auth.OidcSecret.key)
        if (
            ctx.config.auth == auth.OIDC
            and secret is not None
            and not auth.secret_matches(secret.value, tags.get(auth.FINGERPRINT_TAG))
        ):
            value = auth.fingerprint(secret.value)
            ctx.client("elbv2").add_tags(
                ResourceArns=[arn], Tags=[{"Key": auth.FINGERPRINT_TAG, "Value": value}]
            )

    def _forget_secret(self, ctx: Context, arn: str, current: Mapping[str, Any]) -> None:
        """The fingerprint removed when the OIDC action goes (tags are read only with
        AUTH=oidc: the action says the tag is there). Before the listener changes: once the
        action is gone, no later run would know to remove it."""
        signed_in_with = current.get("DefaultActions") or []
        if ctx.config.auth != auth.OIDC and any(
            action.get("Type") == "authenticate-oidc" for action in signed_in_with
        ):
            ctx.client("elbv2").remove_tags(ResourceArns=[arn], TagKeys=[auth.FINGERPRINT_TAG])

    def ref(self, ctx: Context, current: Any, change: Change) -> str:
        return str(current["ListenerArn"]) if current else NEW

    surveys_after = (LoadBalancerResource.key,)

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        return [i for i in listener_items(ctx, survey) if i.data["port"] == HTTPS_PORT]

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        return shown_listener(item)

    def when_absent(self, ctx: Context, survey: Survey) -> tuple[str, str, str] | None:
        return missing_listener(ctx, survey, HTTPS_PORT) if ctx.config.domain else None

    def delete(self, ctx: Context, item: Item) -> str:
        return delete_listener(ctx, item)


class OldCertificates(_AfterIssue):
    """The app's certificates for DOMAIN with another name set than `domains` (WWW switched on
    or off): deleted once the HTTPS listener uses the current one, never before (ACM refuses
    to delete a certificate a listener uses)."""

    calls = {DELETE: ("acm:DeleteCertificate",)}
    key = "old certificates"
    kind = "certificate"
    reads = (Certificates.key,)
    needs = (ISSUED, HttpsListener.key)

    def name(self, ctx: Context) -> str:
        return domains(ctx)[0]

    def find(self, ctx: Context, found: Mapping[str, Any]) -> list[dict[str, Any]]:
        listed = found.get(Certificates.key)
        return list(listed[1]) if listed else []

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        if not current:
            return model.absent(self.kind, self.name(ctx))
        shown = "; ".join(
            f"{' and '.join(c['Names'])} ({str(c['CertificateArn']).rsplit('/', 1)[-1]})"
            for c in current
        )
        return Change(self.kind, self.name(ctx), DELETE, detail=f"{shown} (WWW changed)")

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> None:
        acm = ctx.client("acm")
        for certificate in current:
            arn = str(certificate["CertificateArn"])

            def delete(arn: str = arn) -> bool | None:
                try:
                    acm.delete_certificate(CertificateArn=arn)
                except botocore.exceptions.ClientError as error:
                    if error_code(error) == "ResourceNotFoundException":
                        return True  # gone already (a retried request, another run)
                    if error_code(error) == "ResourceInUseException":
                        return None
                    raise
                return True

            short = arn.rsplit("/", 1)[-1]
            try:
                with translated(f"deleting the old certificate {short}"):
                    ctx.wait(
                        f"certificate {short}: waiting until ACM sees it unused",
                        f"ACM to release the old certificate {arn}",
                        delete,
                        5,
                        timeout=min(ctx.timeout, IN_USE_WAIT),
                        max_interval=15,
                    )
            except WaitTimeout:  # the app serves: a leftover certificate must not fail the run
                ctx.ui.warn(
                    f"the old certificate {short} is still in use, so it stays: something other "
                    "than this app's HTTPS listener may use it (`aws acm describe-certificate`, "
                    "InUseBy); `dashscale up` tries again, `dashscale teardown` removes it"
                )

    def ref(self, ctx: Context, current: Any, change: Change) -> None:
        return None


class AliasRecord(_AfterIssue):
    """An A alias of DOMAIN (or www.DOMAIN) to the load balancer."""

    delete_calls = ("route53:ChangeResourceRecordSets",)

    calls = {
        CREATE: ("route53:ChangeResourceRecordSets",),
        UPDATE: ("route53:ChangeResourceRecordSets",),
        DELETE: ("route53:ChangeResourceRecordSets",),
    }
    kind = "alias record"
    reads = (ZoneRecords.key,)
    needs = (HttpsListener.key, HostedZone.key, LoadBalancerResource.key)

    def __init__(self, www: bool) -> None:
        self.www = www
        self.key = "www alias record" if www else "alias record"

    def name(self, ctx: Context) -> str:
        domain = domains(ctx)[0]
        return f"www.{domain}" if self.www else domain

    def served(self, ctx: Context) -> bool:
        return not self.www or with_www(ctx)

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        return record_named(found[ZoneRecords.key][1], self.name(ctx), "A")

    def wanted(self, ctx: Context, balancer: LoadBalancer) -> dict[str, Any]:
        # An alias points at the load balancer's own hosted zone, not at the user's zone.
        return {
            "Name": fqdn(self.name(ctx)),
            "Type": "A",
            "AliasTarget": {
                "HostedZoneId": balancer.canonical_hosted_zone_id,
                "DNSName": balancer.dns_name,
                "EvaluateTargetHealth": True,
            },
        }

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        balancer: LoadBalancer = refs[LoadBalancerResource.key]
        detail = f"alias to {ctx.names.alb}"
        if not self.served(ctx):  # WWW=false: the app's www alias goes, anyone else's stays
            if current is not None and same_record(current, self.wanted(ctx, balancer)):
                return Change(self.kind, self.name(ctx), DELETE, detail="WWW=false")
            return model.absent(self.kind, self.name(ctx))
        if current is None:
            return create(self.kind, self.name(ctx), detail)
        if same_record(current, self.wanted(ctx, balancer)):
            return compare(self.kind, self.name(ctx), {}, detail)
        target = (current.get("AliasTarget") or {}).get("DNSName") or "not an alias"
        return compare(self.kind, self.name(ctx), {"target": (target, balancer.dns_name)}, detail)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> None:
        zone: tls.Zone = refs[HostedZone.key]
        if change.action == DELETE:
            with translated(f"deleting the alias record {self.name(ctx)}"):
                ctx.client("route53").change_resource_record_sets(
                    HostedZoneId=zone.id,
                    ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": current}]},
                )
            return
        wanted = self.wanted(ctx, refs[LoadBalancerResource.key])
        upsert_records(ctx, zone, [], [wanted])

    def ref(self, ctx: Context, current: Any, change: Change) -> None:
        return None

    surveys_after = (LoadBalancerResource.key,)

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        """The app's aliases (of www.DOMAIN for the www one) in every zone of its domains."""
        return [
            item
            for item in tls.domain_items(ctx, survey)
            if item.kind == self.kind and item.data["www"] == self.www
        ]

    def delete(self, ctx: Context, item: Item) -> str:
        return tls.delete_record(ctx, item)


def is_redirect(actions: list[dict[str, Any]]) -> bool:
    if len(actions) != 1 or actions[0].get("Type") != "redirect":
        return False
    config = actions[0].get("RedirectConfig", {})
    return all(config.get(k) == v for k, v in REDIRECT_ACTION["RedirectConfig"].items())


class HttpRedirect(_AfterIssue):
    """Port 80 answering 301 to https://: the port-80 listener's action once HTTPS serves."""

    calls = {
        CREATE: ("elasticloadbalancing:ModifyListener",),
        UPDATE: ("elasticloadbalancing:ModifyListener",),
    }
    key = "http redirect"
    kind = "listener"
    reads = (Listeners.key,)
    needs = (HttpListener.key, HttpsListener.key, "alias record", "www alias record")

    def name(self, ctx: Context) -> str:
        return "HTTP :80"

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        return found[Listeners.key].get(80)

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        detail = "301 to HTTPS"
        if current is None:
            return create(self.kind, self.name(ctx), detail)
        if is_redirect(current.get("DefaultActions", [])):
            return compare(self.kind, self.name(ctx), {}, detail)
        return compare(self.kind, self.name(ctx), {"action": ("forward", detail)}, detail)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> None:
        # the port-80 listener exists by now (HttpListener made it): its action changes
        listener = refs[HttpListener.key] if current is None else current["ListenerArn"]
        with translated("redirecting HTTP to HTTPS"):
            ctx.client("elbv2").modify_listener(
                ListenerArn=listener, DefaultActions=[REDIRECT_ACTION]
            )

    def ref(self, ctx: Context, current: Any, change: Change) -> None:
        return None


RESOURCES: tuple[Resource, ...] = (
    HttpsListener(),
    AliasRecord(www=False),
    AliasRecord(www=True),
    HttpRedirect(),
)
# Not in RESOURCES: teardown deletes every certificate of the app (CertificateResource's kind)
# after the listeners, and `needs` from a certificate to a listener would say the opposite.
CLEANUP: tuple[Resource, ...] = (OldCertificates(),)


class TlsHooks(Hooks):
    """The TLS section's own steps around the driver (for `tls` and `up`): the dry run's
    registrar line; before the rest runs, the zone settled (it may ask about the registrar)
    and its delegation checked; the wait for ACM; https://DOMAIN once the certificate is
    issued; and, after a run that left it pending (`up --no-wait`), what finishes HTTPS."""

    def __init__(self, update_registrar: bool, timeout: float, wait: bool = True) -> None:
        self.update_registrar = update_registrar
        self.timeout = timeout
        self.wait = wait
        self.why = ""  # why the certificate would still be pending, once the zone is settled

    def shown(self, ctx: Context, planned: Plan) -> None:
        tls.show_registrar(ctx, planned.refs[HostedZone.key])

    def before_apply(self, ctx: Context, planned: Plan) -> Mapping[str, tuple[Change, Any]]:
        decided, zone, delegated = tls.settle_zone(ctx, planned, self.update_registrar)
        self.why = why_pending(zone, delegated, domains(ctx)[0])
        return {HostedZone.key: (decided, zone)}

    def extras(self, ctx: Context, planned: Plan) -> Sequence[Extra]:
        def issued(results: Mapping[str, Any]) -> Certificate | None:
            certificate = results[CertificateResource.key]
            return certificate_issued(ctx, certificate, self.timeout, self.wait, self.why)

        return [Extra(ISSUED, issued, (CertificateResource.key, ValidationRecords.key))]

    def address(self, ctx: Context, results: Mapping[str, Any]) -> str | None:
        return f"https://{domains(ctx)[0]}" if results.get(ISSUED) is not None else None

    def after(self, ctx: Context, done: Done) -> None:
        if done.results.get(ISSUED) is None:  # --no-wait left it for later
            ctx.ui.info(pending_note(ctx, self.why))


class PrivateServiceHooks(Hooks):
    """`tls` for a private app (AUTH): the service, which `alb` leaves for the signing-in
    listener, joins the plan when it is missing (what `cluster` makes must exist by then), and
    its deployment is followed."""

    def joining(
        self, ctx: Context, found: Mapping[str, Any]
    ) -> tuple[Sequence[Resource], Mapping[str, Any]]:
        if found[service.Service.key] is not None:
            return (), {}
        _, required = service.prerequisites()
        refs = model.require(ctx, required, found, "`dashscale cluster` (or `up`)")
        return [service.Service(behind_sign_in=True)], refs

    def extras(self, ctx: Context, planned: Plan) -> Sequence[Extra]:
        return service.deployment_waits(ctx, True)


def tls_section(ctx: Context, update_registrar: bool = False, timeout: float = 3600.0) -> str:
    """The `tls` command: zone, certificate, validation records, then (once issued) the HTTPS
    listener, the aliases and the redirect. Needs what `alb` made. A private app's service
    (AUTH), which `alb` leaves for the signing-in listener, starts here when missing. Returns
    https://DOMAIN."""
    readings = [BalancerAndGroup(), Listeners(), ZoneRecords(), Certificates(), *auth.readings(ctx)]
    hooks: list[Hooks] = [TlsHooks(update_registrar, timeout)]
    if signs_in(ctx):  # the service and what it needs are read too
        service_readings, service_required = service.prerequisites()
        readings += [*service_readings, *service_required, service.Service(behind_sign_in=True)]
        hooks.append(PrivateServiceHooks())
    driver.run(
        ctx,
        Section(
            readings,
            [*tls.RESOURCES, *auth.resources(ctx), *RESOURCES, *CLEANUP],
            [LoadBalancerResource(), TargetGroup(), HttpListener()],
            "`dashscale alb` (or `dashscale up`)",
            hooks=hooks,
        ),
    )
    return f"https://{domains(ctx)[0]}"

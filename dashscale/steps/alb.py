"""The load balancer, its target group and the port-80 listener: the front half of `dashscale alb`.

Declared here as resources: APP-alb (internet-facing, in the subnets with APP-alb-sg, dropping
invalid header fields); APP-tg (type ip, HTTP on APP_PORT, the tuned health check, the drain time
and STICKY_SESSIONS); the port-80 listener, forwarding to APP-tg or, with AUTH, answering a fixed
503 until the HTTPS listener signs users in. The finders read APP-alb and APP-tg together (one
DescribeTags call for both) and every listener of the load balancer in one call.

Also the listener pieces other steps share (https.py, auth.py, service.py):
creating a listener (a DuplicateListener is found and given our settings), comparing a listener
with the settings a create would ask, forward actions, and whether a listener signs users in.
The ECS service and the `alb` command itself are in service.py, what follows a deployment in
deployment.py. Create order follows real AWS, which the emulator does not enforce:
the listener forwards to the target group before the service is attached to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from dashscale.aws import already_exists, create_or_find, error_code, require_owned, translated
from dashscale.context import Context
from dashscale.errors import AwsError
from dashscale.inventory import retrying, unless_gone, wait_for
from dashscale.model import (
    CREATE,
    DELETE,
    KEEP,
    NEW,
    UPDATE,
    Change,
    Item,
    Reading,
    Resource,
    Survey,
    compare,
    create,
    is_new,
)
from dashscale.steps.network import AlbSecurityGroup, Network

HTTP_PORT = 80
HTTPS_PORT = 443
DROP_INVALID_HEADERS = "routing.http.drop_invalid_header_fields.enabled"
DEREGISTRATION_DELAY = "deregistration_delay.timeout_seconds"
STICKY = "stickiness.enabled"
STICKY_TYPE = "stickiness.type"
STICKY_SECONDS = "stickiness.lb_cookie.duration_seconds"
UNHEALTHY_THRESHOLD = 2
HEALTH_MATCHER = "200"
CANNOT_CHANGE = "AWS cannot change that: run `dashscale teardown` (or delete it), then re-run"


@dataclass(frozen=True)
class LoadBalancer:
    arn: str
    name: str
    dns_name: str
    canonical_hosted_zone_id: str  # what a Route 53 alias record to it names as HostedZoneId
    state: str = ""  # provisioning, active, failed

    @property
    def address(self) -> str:
        return f"http://{self.dns_name}"


def load_balancer_of(description: dict[str, Any]) -> LoadBalancer:
    return LoadBalancer(
        arn=str(description["LoadBalancerArn"]),
        name=str(description["LoadBalancerName"]),
        dns_name=str(description["DNSName"]),
        canonical_hosted_zone_id=str(description.get("CanonicalHostedZoneId", "")),
        state=str((description.get("State") or {}).get("Code", "")),
    )


# --- finders (no changes): AWS's own description, checked to be this app's, or None --------------


def find_load_balancer(ctx: Context) -> dict[str, Any] | None:
    """The load balancer APP-alb as DescribeLoadBalancers gives it; None when missing."""
    return find_balancer_and_group(ctx)[0]


def find_target_group(ctx: Context) -> dict[str, Any] | None:
    """The target group APP-tg as DescribeTargetGroups gives it; None when missing."""
    return find_balancer_and_group(ctx)[1]


def find_balancer_and_group(ctx: Context) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """APP-alb and APP-tg, each checked to be this app's (one DescribeTags call for both)."""
    elb = ctx.client("elbv2")
    balancer = _describe_named(
        ctx, "load balancer", ctx.names.alb, elb.describe_load_balancers, "LoadBalancers"
    )
    group = _describe_named(
        ctx, "target group", ctx.names.target_group, elb.describe_target_groups, "TargetGroups"
    )
    found = [
        (kind, name, item, str(item[arn_key]))
        for kind, name, item, arn_key in (
            ("load balancer", ctx.names.alb, balancer, "LoadBalancerArn"),
            ("target group", ctx.names.target_group, group, "TargetGroupArn"),
        )
        if item is not None
    ]
    if found:
        with translated("reading the tags of the load balancer and the target group"):
            descriptions = elb.describe_tags(ResourceArns=[arn for *_, arn in found])
        tags = {d["ResourceArn"]: d.get("Tags", []) for d in descriptions["TagDescriptions"]}
        for kind, name, _, arn in found:
            require_owned(ctx.names, kind, name, tags.get(arn))
    return balancer, group


def _describe_named(
    ctx: Context, kind: str, name: str, describe: Any, key: str
) -> dict[str, Any] | None:
    """An ELB resource by exact name, as AWS describes it; None when there is none."""
    not_found = "LoadBalancerNotFound" if kind == "load balancer" else "TargetGroupNotFound"
    with translated(f"looking up {kind} {name}"):
        try:
            found = describe(Names=[name])[key]
        except botocore.exceptions.ClientError as error:
            if error_code(error) != not_found:
                raise
            return None
    return dict(found[0]) if found else None


class BalancerAndGroup(Reading):
    """APP-alb and APP-tg, read together."""

    find_calls = (
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeTags",
        "elasticloadbalancing:DescribeTargetGroups",
    )

    key = "load balancer and target group"

    finder = staticmethod(find_balancer_and_group)


def health_check_settings(ctx: Context) -> dict[str, Any]:
    """Tuned so a rolling deploy takes about two minutes instead of six or more."""
    interval = ctx.config.health_check_interval
    return {
        "HealthCheckProtocol": "HTTP",
        "HealthCheckPort": "traffic-port",
        "HealthCheckEnabled": True,
        "HealthCheckPath": ctx.config.health_check_path,
        "HealthCheckIntervalSeconds": interval,
        "HealthCheckTimeoutSeconds": min(5, interval - 1),
        "HealthyThresholdCount": ctx.config.healthy_threshold,
        "UnhealthyThresholdCount": UNHEALTHY_THRESHOLD,
        "Matcher": {"HttpCode": HEALTH_MATCHER},
    }


def forwards_to(action: dict[str, Any], target_group_arn: str) -> bool:
    if action.get("Type") != "forward":
        return False
    if action.get("TargetGroupArn"):
        return bool(action["TargetGroupArn"] == target_group_arn)
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups", [])
    return [g.get("TargetGroupArn") for g in groups] == [target_group_arn]


def forward_action(target_group_arn: str) -> dict[str, Any]:
    return {"Type": "forward", "TargetGroupArn": target_group_arn}


def group_attributes(ctx: Context) -> dict[str, str]:
    """The target group's attributes dashscale sets: the drain time and, with STICKY_SESSIONS,
    the load balancer's cookie (unset: stickiness off, its other keys left as they are)."""
    wanted = {DEREGISTRATION_DELAY: str(ctx.config.deregistration_delay)}
    seconds = ctx.config.sticky_sessions
    if seconds is None:
        wanted[STICKY] = "false"
    else:
        wanted.update({STICKY: "true", STICKY_TYPE: "lb_cookie", STICKY_SECONDS: str(seconds)})
    return wanted


def _with_attributes(ctx: Context, kind: str, found: dict[str, Any] | None) -> Any:
    """The load balancer's or target group's description with its attributes as a dict."""
    if found is None:
        return None
    elb = ctx.client("elbv2")
    with translated(f"reading the attributes of the {kind}"):
        if "LoadBalancerArn" in found and "TargetGroupArn" not in found:
            answer = elb.describe_load_balancer_attributes(LoadBalancerArn=found["LoadBalancerArn"])
        else:
            answer = elb.describe_target_group_attributes(TargetGroupArn=found["TargetGroupArn"])
    return {**found, "Attributes": {a["Key"]: a["Value"] for a in answer["Attributes"]}}


# --- the resources -------------------------------------------------------------------------------


class LoadBalancerResource(Resource):
    """Internet-facing application load balancer in the subnets with APP-alb-sg, dropping
    invalid header fields. Its ref is a LoadBalancer."""

    find_calls = ("elasticloadbalancing:DescribeLoadBalancerAttributes",)
    survey_calls = BalancerAndGroup.find_calls
    delete_calls = (
        "elasticloadbalancing:DeleteLoadBalancer",
        "elasticloadbalancing:DescribeLoadBalancers",
    )

    calls = {
        CREATE: (
            "elasticloadbalancing:CreateLoadBalancer",
            "elasticloadbalancing:ModifyLoadBalancerAttributes",
            "elasticloadbalancing:AddTags",
        ),
        UPDATE: (
            "elasticloadbalancing:SetSecurityGroups",
            "elasticloadbalancing:SetSubnets",
            "elasticloadbalancing:ModifyLoadBalancerAttributes",
        ),
    }
    key = kind = "load balancer"
    reads = (BalancerAndGroup.key,)
    needs = (AlbSecurityGroup.key,)
    named = "alb"

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        return _with_attributes(ctx, self.kind, found[BalancerAndGroup.key][0])

    # The app's DNS records leave the zone before the load balancer goes (the aliases need it
    # anyway): a teardown stopped in between leaves no name of the app aimed at nothing. Order
    # only: a record that cannot be deleted does not keep a billed load balancer running.
    deleted_later_than = ("validation record",)

    missing_shown = True

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        return self.found_item(ctx, lambda: find_load_balancer(ctx))

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        balancer = item.data["resource"]
        return item.name, f"{(balancer.get('State') or {}).get('Code', '?')}, {balancer['DNSName']}"

    def delete(self, ctx: Context, item: Item) -> str:
        """Deleted, then waited for until AWS no longer describes it."""
        elbv2 = ctx.client("elbv2")
        arn = item.data["resource"]["LoadBalancerArn"]
        missing = "LoadBalancerNotFound"
        if unless_gone(lambda: elbv2.delete_load_balancer(LoadBalancerArn=arn), missing):
            return "already gone"

        def gone() -> bool | None:
            try:
                found = elbv2.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"]
            except botocore.exceptions.ClientError as error:
                if error_code(error) != missing:
                    raise
                return True
            return True if not found else None

        waited = wait_for(
            ctx, f"load balancer {ctx.names.alb}: waiting until it is gone", gone, 3.0
        )
        return f"gone after {int(waited)} s" if int(waited) else ""

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        name = self.name(ctx)
        network: Network = refs["network"]
        group = refs[AlbSecurityGroup.key]
        if current is None:
            return create(self.kind, name, "internet-facing, application")
        if current.get("Scheme") != "internet-facing" or current.get("Type") != "application":
            raise AwsError(
                f"load balancer {name} is {current.get('Scheme')} {current.get('Type')}, not "
                "internet-facing application",
                CANNOT_CHANGE,
            )
        differing: dict[str, tuple[Any, Any]] = {}
        groups = sorted(current.get("SecurityGroups", []))
        if set(groups) != {group}:
            differing["security groups"] = (groups, [group])
        subnets = sorted(zone["SubnetId"] for zone in current.get("AvailabilityZones", []))
        if set(subnets) != set(network.subnet_ids):
            differing["subnets"] = (subnets, sorted(network.subnet_ids))
        if current["Attributes"].get(DROP_INVALID_HEADERS) != "true":
            differing[DROP_INVALID_HEADERS] = (
                current["Attributes"].get(DROP_INVALID_HEADERS),
                "true",
            )
        return compare(self.kind, name, differing, str(current["DNSName"]))

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> Any:
        name = self.name(ctx)
        elb = ctx.client("elbv2")
        network: Network = refs["network"]
        group = refs[AlbSecurityGroup.key]
        with translated(f"setting up load balancer {name}"):
            if current is None:
                current = create_or_find(
                    lambda: elb.create_load_balancer(
                        Name=name,
                        Subnets=list(network.subnet_ids),
                        SecurityGroups=[group],
                        Scheme="internet-facing",
                        Type="application",
                        IpAddressType="ipv4",
                        Tags=ctx.names.tags(),
                    ),
                    "DuplicateLoadBalancerName",
                    lambda: find_load_balancer(ctx),
                    f"load balancer {name}",
                )
            arn = current["LoadBalancerArn"]
            if "security groups" in change.fields:
                elb.set_security_groups(LoadBalancerArn=arn, SecurityGroups=[group])
            if "subnets" in change.fields:
                elb.set_subnets(LoadBalancerArn=arn, Subnets=list(network.subnet_ids))
            if change.action == CREATE or DROP_INVALID_HEADERS in change.fields:
                elb.modify_load_balancer_attributes(
                    LoadBalancerArn=arn, Attributes=[{"Key": DROP_INVALID_HEADERS, "Value": "true"}]
                )
        return load_balancer_of(current)

    def ref(self, ctx: Context, current: Any, change: Change) -> LoadBalancer:
        if current is None:
            name = self.name(ctx)
            return LoadBalancer(NEW, name, f"{name} {NEW}", NEW, "")
        return load_balancer_of(current)


class TargetGroup(Resource):
    """Target type ip, HTTP on APP_PORT, the tuned health check and deregistration delay."""

    find_calls = ("elasticloadbalancing:DescribeTargetGroupAttributes",)
    survey_calls = BalancerAndGroup.find_calls
    delete_calls = ("elasticloadbalancing:DeleteTargetGroup",)

    calls = {
        CREATE: (
            "elasticloadbalancing:CreateTargetGroup",
            "elasticloadbalancing:ModifyTargetGroupAttributes",
            "elasticloadbalancing:AddTags",
        ),
        UPDATE: (
            "elasticloadbalancing:ModifyTargetGroup",
            "elasticloadbalancing:ModifyTargetGroupAttributes",
        ),
    }
    key = kind = "target group"
    reads = (BalancerAndGroup.key,)
    named = "target_group"

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        return _with_attributes(ctx, self.kind, found[BalancerAndGroup.key][1])

    def detail(self, ctx: Context) -> str:
        config = ctx.config
        sticky = f", sticky {config.sticky_sessions} s" if config.sticky_sessions else ""
        return (
            f"ip, HTTP {config.app_port}, check {config.health_check_path} every "
            f"{config.health_check_interval} s, drain {config.deregistration_delay} s{sticky}"
        )

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        name = self.name(ctx)
        network: Network = refs["network"]
        if current is None:
            return create(self.kind, name, self.detail(ctx))
        fixed = (current.get("VpcId"), current.get("TargetType"), current.get("Protocol"))
        if fixed != (network.vpc_id, "ip", "HTTP"):
            raise AwsError(
                f"target group {name} is {fixed[2]} with target type {fixed[1]} in {fixed[0]}; "
                f"this app needs HTTP, type ip, in {network.vpc_id}",
                CANNOT_CHANGE,
            )
        differing = {
            key: (current.get(key), value)
            for key, value in health_check_settings(ctx).items()
            if current.get(key) != value
        }
        for key, value in group_attributes(ctx).items():
            if str(current["Attributes"].get(key, "")).lower() != value:
                differing[key] = (current["Attributes"].get(key), value)
        return compare(self.kind, name, differing, self.detail(ctx))

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> str:
        name = self.name(ctx)
        elb = ctx.client("elbv2")
        settings = health_check_settings(ctx)
        with translated(f"setting up target group {name}"):
            if current is None:
                current = create_or_find(
                    lambda: elb.create_target_group(
                        Name=name,
                        Protocol="HTTP",
                        ProtocolVersion="HTTP1",
                        Port=ctx.config.app_port,
                        VpcId=refs["network"].vpc_id,
                        TargetType="ip",
                        Tags=ctx.names.tags(),
                        **settings,
                    ),
                    "DuplicateTargetGroupName",
                    lambda: find_target_group(ctx),
                    f"target group {name}",
                )
            arn = str(current["TargetGroupArn"])
            attributes = group_attributes(ctx)
            if change.fields - set(attributes):
                elb.modify_target_group(TargetGroupArn=arn, **settings)
            if change.action == CREATE or change.fields & set(attributes):
                elb.modify_target_group_attributes(
                    TargetGroupArn=arn,
                    Attributes=[{"Key": k, "Value": v} for k, v in attributes.items()],
                )
        return arn

    def ref(self, ctx: Context, current: Any, change: Change) -> str:
        return str(current["TargetGroupArn"]) if current else NEW

    missing_shown = True

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        return self.found_item(ctx, lambda: find_target_group(ctx))

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        group = item.data["resource"]
        return item.name, f"HTTP {group.get('Port')}, check {group.get('HealthCheckPath')}"

    def delete(self, ctx: Context, item: Item) -> str:
        elbv2 = ctx.client("elbv2")
        arn = item.data["resource"]["TargetGroupArn"]
        return retrying(
            ctx,
            f"deleting target group {item.name}",
            lambda: elbv2.delete_target_group(TargetGroupArn=arn),
            ("ResourceInUse",),
            gone="TargetGroupNotFound",
        )


class Listeners(Reading):
    """Every listener of APP-alb in one call: port -> listener."""

    find_calls = ("elasticloadbalancing:DescribeListeners",)

    key = "listeners"
    reads = (LoadBalancerResource.key,)

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
        balancer = found[LoadBalancerResource.key]
        return listeners_of(ctx, str(balancer["LoadBalancerArn"])) if balancer else {}


def listeners_of(ctx: Context, load_balancer_arn: str) -> dict[int, dict[str, Any]]:
    listeners: dict[int, dict[str, Any]] = {}
    if is_new(load_balancer_arn):
        return listeners
    with translated(f"looking up the listeners of {ctx.names.alb}"):
        pages = (
            ctx.client("elbv2")
            .get_paginator("describe_listeners")
            .paginate(LoadBalancerArn=load_balancer_arn)
        )
        for page in pages:
            for listener in page["Listeners"]:
                listeners[int(listener["Port"])] = dict(listener)
    return listeners


def create_listener(ctx: Context, load_balancer_arn: str, port: int, **settings: Any) -> str:
    """Creates the listener on `port`; returns its ARN. AWS answers DuplicateListener only
    when a listener on that port has other settings (a retried identical create returns it):
    that one is found, compared, and given these settings (with AUTH it may forward)."""
    elb = ctx.client("elbv2")
    try:
        answer = elb.create_listener(
            LoadBalancerArn=load_balancer_arn, Port=port, Tags=ctx.names.tags(), **settings
        )
        return str(answer["Listeners"][0]["ListenerArn"])
    except botocore.exceptions.ClientError as error:
        if not already_exists(error, "DuplicateListener"):
            raise
    existing = listeners_of(ctx, load_balancer_arn).get(port)
    if existing is None:
        raise AwsError(f"listener {ctx.names.alb}:{port} was created but cannot be found")
    if not same_settings(existing, settings):
        elb.modify_listener(ListenerArn=existing["ListenerArn"], Port=port, **settings)
    return str(existing["ListenerArn"])


SECRET_KEYS = frozenset({"ClientSecret", "UseExistingClientSecret"})  # AWS never shows them


def _asked_in(asked: Any, described: Any) -> bool:
    """True when every field of a request appears with the same value in AWS's description
    (which adds defaults of its own)."""
    if isinstance(asked, dict):
        return isinstance(described, dict) and all(
            key in SECRET_KEYS or _asked_in(value, described.get(key))
            for key, value in asked.items()
        )
    if isinstance(asked, list):
        return (
            isinstance(described, list)
            and len(asked) == len(described)
            and all(_asked_in(a, d) for a, d in zip(asked, described, strict=True))
        )
    return str(asked) == str(described)


def same_settings(listener: Mapping[str, Any], settings: Mapping[str, Any]) -> bool:
    """True when a listener as described has the settings a create would ask for."""
    order = lambda action: int(action.get("Order") or 0)  # noqa: E731
    described = {
        **listener,
        "DefaultActions": sorted(listener.get("DefaultActions", []), key=order),
    }
    asked = {**settings, "DefaultActions": sorted(settings.get("DefaultActions", []), key=order)}
    return _asked_in(asked, described)


def signs_in(ctx: Context) -> bool:
    """With AUTH set, nobody reaches the app without signing in (only HTTPS can sign in)."""
    return ctx.config.auth != "none"


# Port 80 of a private app until the HTTPS listener signs users in (then: the redirect).
SIGN_IN_PENDING = {
    "Type": "fixed-response",
    "FixedResponseConfig": {
        "StatusCode": "503",
        "ContentType": "text/plain",
        "MessageBody": "Signing in is being set up for this dashboard: try again in a few minutes.",
    },
}
HTTPS_LISTENER = "https listener"  # the key of the HTTPS listener resource (https.py)


def signs_in_first(listener: Mapping[str, Any] | None) -> bool:
    """True for a listener whose first default action signs the user in."""
    actions = sorted(
        (listener or {}).get("DefaultActions", []), key=lambda a: int(a.get("Order") or 0)
    )
    return bool(actions) and str(actions[0].get("Type", "")).startswith("authenticate-")


def is_sign_in_pending(actions: list[dict[str, Any]]) -> bool:
    if len(actions) != 1 or actions[0].get("Type") != "fixed-response":
        return False
    config = actions[0].get("FixedResponseConfig") or {}
    return config.get("StatusCode") == SIGN_IN_PENDING["FixedResponseConfig"]["StatusCode"]


class HttpListener(Resource):
    """Port 80: forwarding to the target group, or with AUTH a fixed 503 (never the app: only
    HTTPS can sign users in). A redirect (the TLS step's HTTP-to-HTTPS) is kept as it is: the
    redirect is a resource of its own (https.py)."""

    survey_calls = ("elasticloadbalancing:DescribeListeners",)
    delete_calls = ("elasticloadbalancing:DeleteListener",)

    calls = {
        CREATE: (
            "elasticloadbalancing:CreateListener",
            "elasticloadbalancing:ModifyListener",
            "elasticloadbalancing:AddTags",
        ),
        UPDATE: ("elasticloadbalancing:ModifyListener",),
    }
    key = "http listener"
    kind = "listener"
    reads = (Listeners.key,)
    needs = (LoadBalancerResource.key, TargetGroup.key)

    def name(self, ctx: Context) -> str:
        return f"{ctx.names.alb}:{HTTP_PORT}"

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        return found[Listeners.key].get(HTTP_PORT)

    def wanted(self, ctx: Context, refs: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """The default action, and how the plan shows it."""
        if signs_in(ctx):
            return SIGN_IN_PENDING, "503 until HTTPS signs users in"
        return forward_action(refs[TargetGroup.key]), f"forward to {ctx.names.target_group}"

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        _, wanted = self.wanted(ctx, refs)
        if current is None:
            return create(self.kind, self.name(ctx), wanted)
        actions = current.get("DefaultActions", [])
        if any(action.get("Type") == "redirect" for action in actions):
            return Change(self.kind, self.name(ctx), KEEP, detail="redirect (HTTPS)")
        if signs_in(ctx) and is_sign_in_pending(actions):
            return compare(self.kind, self.name(ctx), {}, wanted)
        if (
            not signs_in(ctx)
            and len(actions) == 1
            and forwards_to(actions[0], refs[TargetGroup.key])
        ):
            return compare(self.kind, self.name(ctx), {}, wanted)
        shown = [a.get("TargetGroupArn") or a.get("Type") for a in actions]
        return compare(self.kind, self.name(ctx), {"default action": (shown, wanted)}, wanted)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> str:
        action = [self.wanted(ctx, refs)[0]]
        with translated(f"setting up the port {HTTP_PORT} listener of {ctx.names.alb}"):
            if current is None:
                balancer: LoadBalancer = refs[LoadBalancerResource.key]
                return create_listener(
                    ctx, balancer.arn, HTTP_PORT, Protocol="HTTP", DefaultActions=action
                )
            ctx.client("elbv2").modify_listener(
                ListenerArn=current["ListenerArn"],
                Protocol="HTTP",
                Port=HTTP_PORT,
                DefaultActions=action,
            )
        return str(current["ListenerArn"])

    def ref(self, ctx: Context, current: Any, change: Change) -> str:
        return str(current["ListenerArn"]) if current else NEW

    surveys_after = (LoadBalancerResource.key,)

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        """Every listener but the HTTPS one (https.py's): port 80, and any added by hand."""
        return [i for i in listener_items(ctx, survey) if i.data["port"] != HTTPS_PORT]

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        return shown_listener(item)

    def when_absent(self, ctx: Context, survey: Survey) -> tuple[str, str, str] | None:
        return missing_listener(ctx, survey, HTTP_PORT)

    def delete(self, ctx: Context, item: Item) -> str:
        return delete_listener(ctx, item)


def listener_items(ctx: Context, survey: Survey) -> list[Item]:
    """The listeners of the app's load balancer, listed once per survey."""

    def read() -> list[Item]:
        balancers = [i.data["resource"] for i in survey.of(LoadBalancerResource.key) if i.data]
        if not balancers:
            return []
        listeners = listeners_of(ctx, str(balancers[0]["LoadBalancerArn"]))
        return [
            Item(
                "listener",
                f"{ctx.names.alb}:{port}",
                DELETE,
                str(listener.get("Protocol", "")),
                {"arn": listener["ListenerArn"], "port": port, "resource": listener},
            )
            for port, listener in sorted(listeners.items())
        ]

    return survey.shared("listeners", read)


def shown_listener(item: Item) -> tuple[str, str]:
    listener = item.data["resource"]
    kinds = [a.get("Type", "?") for a in listener.get("DefaultActions", [])]
    return item.name, f"{listener.get('Protocol')} {listener.get('Port')}: {', '.join(kinds)}"


def missing_listener(ctx: Context, survey: Survey, port: int) -> tuple[str, str, str] | None:
    """A listener is missing only on a load balancer that is there, whatever other ports
    listen."""
    if not any(i.data for i in survey.of(LoadBalancerResource.key)):
        return None
    if any(i.data["port"] == port for i in listener_items_found(survey)):
        return None
    return f"{ctx.names.alb}:{port}", "missing", ""


def listener_items_found(survey: Survey) -> list[Item]:
    return [i for key in (HttpListener.key, HTTPS_LISTENER) for i in survey.of(key)]


def delete_listener(ctx: Context, item: Item) -> str:
    elbv2 = ctx.client("elbv2")
    return unless_gone(
        lambda: elbv2.delete_listener(ListenerArn=item.data["arn"]), "ListenerNotFound"
    )


RESOURCES: tuple[Resource, ...] = (LoadBalancerResource(), TargetGroup(), HttpListener())

"""`dashscale alb`: the load balancer, its target group, the port-80 listener and the ECS service.

Create order follows real AWS, which the emulator does not enforce: the listener forwards to the
target group before the service is attached to it. The wait follows the deployment this run
started, by its id, until its rolloutState is COMPLETED; FAILED (a circuit-breaker rollback
included) is a failure, explained with the stopped tasks' reasons, the container's last log lines
and the target health.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from dashscale.aws import already_exists, error_code, require_owned, translated, wait_until
from dashscale.context import Context
from dashscale.errors import AwsError, DashscaleError, WaitTimeout
from dashscale.plan import NEW, change, is_new
from dashscale.steps.cluster import LOG_STREAM_PREFIX, ClusterResult, retry_role_not_ready
from dashscale.steps.network import Network, Outcome, SecurityGroups, report

HTTP_PORT = 80
LB_POLL_SECONDS = 5.0
DEPLOYMENT_POLL_SECONDS = 10.0
DROP_INVALID_HEADERS = "routing.http.drop_invalid_header_fields.enabled"
DEREGISTRATION_DELAY = "deregistration_delay.timeout_seconds"
UNHEALTHY_THRESHOLD = 2
HEALTH_MATCHER = "200"
LOG_LINES = 20
DIAGNOSED_TASKS = 3


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


@dataclass(frozen=True)
class AlbResult:
    load_balancer: LoadBalancer
    target_group_arn: str
    listener_arn: str
    service_arn: str
    deployment_id: str | None  # the deployment this run started; None when nothing changed
    outcomes: tuple[Outcome, ...] = ()

    @property
    def address(self) -> str:
        return self.load_balancer.address


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
    elb = ctx.client("elbv2")
    return _find_elb_resource(
        ctx,
        "load balancer",
        ctx.names.alb,
        elb.describe_load_balancers,
        "LoadBalancers",
        "LoadBalancerArn",
        "LoadBalancerNotFound",
    )


def find_target_group(ctx: Context) -> dict[str, Any] | None:
    """The target group APP-tg as DescribeTargetGroups gives it; None when missing."""
    elb = ctx.client("elbv2")
    return _find_elb_resource(
        ctx,
        "target group",
        ctx.names.target_group,
        elb.describe_target_groups,
        "TargetGroups",
        "TargetGroupArn",
        "TargetGroupNotFound",
    )


def _find_elb_resource(
    ctx: Context,
    kind: str,
    name: str,
    describe: Any,
    key: str,
    arn_key: str,
    not_found: str,
) -> dict[str, Any] | None:
    """An ELB resource by exact name, checked to be this app's (tags are a second call).
    `not_found` is the error code AWS answers when there is none."""
    with translated(f"looking up {kind} {name}"):
        try:
            found = describe(Names=[name])[key]
        except botocore.exceptions.ClientError as error:
            if error_code(error) != not_found:
                raise
            return None
        if not found:
            return None
        tags = _elb_tags(ctx, found[0][arn_key])
    require_owned(ctx.names, kind, name, tags)
    return dict(found[0])


def find_listener(
    ctx: Context, port: int, load_balancer_arn: str | None = None
) -> dict[str, Any] | None:
    """The listener on `port` of APP-alb (or of the given load balancer); None when missing."""
    if load_balancer_arn is None:
        balancer = find_load_balancer(ctx)
        if balancer is None:
            return None
        load_balancer_arn = str(balancer["LoadBalancerArn"])
    if is_new(load_balancer_arn):  # a dry run's load balancer that would be created
        return None
    elb = ctx.client("elbv2")
    with translated(f"looking up the listeners of {ctx.names.alb}"):
        pages = elb.get_paginator("describe_listeners").paginate(LoadBalancerArn=load_balancer_arn)
        for page in pages:
            for listener in page["Listeners"]:
                if int(listener["Port"]) == port:
                    return dict(listener)
    return None


def describe_service(ctx: Context) -> dict[str, Any] | None:
    """APP-service as DescribeServices gives it (tags included) while it is ACTIVE or still
    DRAINING after a delete; None when it or the cluster is missing. No ownership check."""
    ecs = ctx.client("ecs")
    with translated(f"looking up ECS service {ctx.names.service}"):
        try:
            services = ecs.describe_services(
                cluster=ctx.names.cluster, services=[ctx.names.service], include=["TAGS"]
            )["services"]
        except ecs.exceptions.ClusterNotFoundException:
            return None
    service = next((s for s in services if s.get("status") in ("ACTIVE", "DRAINING")), None)
    return dict(service) if service is not None else None


def find_service(ctx: Context) -> dict[str, Any] | None:
    """The ACTIVE service APP-service, checked to be this app's; None when missing."""
    name = ctx.names.service
    service = describe_service(ctx)
    if service is None:
        return None
    if service["status"] == "DRAINING":
        raise AwsError(
            f"ECS service {name} is still being deleted",
            "wait a few minutes until it is gone, then re-run",
        )
    require_owned(ctx.names, "ECS service", name, service.get("tags"))
    return service


def _elb_tags(ctx: Context, arn: str) -> list[dict[str, str]]:
    descriptions = ctx.client("elbv2").describe_tags(ResourceArns=[arn])["TagDescriptions"]
    return list(descriptions[0].get("Tags", [])) if descriptions else []


# --- load balancer -------------------------------------------------------------------------------


def ensure_load_balancer(
    ctx: Context,
    network: Network,
    groups: SecurityGroups,
    outcomes: list[Outcome],
    wait: bool = True,
) -> LoadBalancer:
    """Internet-facing application load balancer in the subnets with APP-alb-sg, dropping
    invalid header fields; waits until it is active unless `wait` is False (then the caller
    waits with `wait_for_load_balancer`, while other work goes on)."""
    name = ctx.names.alb
    elb = ctx.client("elbv2")
    balancer = find_load_balancer(ctx)
    state = "found"
    if ctx.dry_run:
        return _plan_load_balancer(ctx, network, groups, balancer, outcomes)
    with translated(f"setting up load balancer {name}"):
        if balancer is None:
            try:
                elb.create_load_balancer(
                    Name=name,
                    Subnets=list(network.subnet_ids),
                    SecurityGroups=[groups.alb],
                    Scheme="internet-facing",
                    Type="application",
                    IpAddressType="ipv4",
                    Tags=ctx.names.tags(),
                )
            except botocore.exceptions.ClientError as error:
                if not already_exists(error, "DuplicateLoadBalancerName"):
                    raise
            balancer = find_load_balancer(ctx)
            if balancer is None:
                raise AwsError(f"load balancer {name} was created but cannot be found")
            state = "created"
        else:
            if balancer.get("Scheme") != "internet-facing" or balancer.get("Type") != "application":
                raise AwsError(
                    f"load balancer {name} is {balancer.get('Scheme')} "
                    f"{balancer.get('Type')}, not internet-facing application",
                    "AWS cannot change that: run `dashscale teardown` (or delete it), then re-run",
                )
            if set(balancer.get("SecurityGroups", [])) != {groups.alb}:
                elb.set_security_groups(
                    LoadBalancerArn=balancer["LoadBalancerArn"], SecurityGroups=[groups.alb]
                )
                state = "updated"
            subnets = {zone["SubnetId"] for zone in balancer.get("AvailabilityZones", [])}
            if subnets != set(network.subnet_ids):
                elb.set_subnets(
                    LoadBalancerArn=balancer["LoadBalancerArn"], Subnets=list(network.subnet_ids)
                )
                state = "updated"
        arn = balancer["LoadBalancerArn"]
        attributes = {
            a["Key"]: a["Value"]
            for a in elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
        }
        if attributes.get(DROP_INVALID_HEADERS) != "true":
            elb.modify_load_balancer_attributes(
                LoadBalancerArn=arn, Attributes=[{"Key": DROP_INVALID_HEADERS, "Value": "true"}]
            )
            state = "updated" if state == "found" else state
    if wait and (balancer.get("State") or {}).get("Code") != "active":
        balancer = wait_for_load_balancer(ctx, arn)
    result = load_balancer_of(balancer)
    report(ctx, outcomes, "load balancer", name, state, result.dns_name)
    return result


def _plan_load_balancer(
    ctx: Context,
    network: Network,
    groups: SecurityGroups,
    balancer: dict[str, Any] | None,
    outcomes: list[Outcome],
) -> LoadBalancer:
    """What ensure_load_balancer would do, with the differing fields; changes nothing."""
    name = ctx.names.alb
    if balancer is None:
        report(ctx, outcomes, "load balancer", name, "created", "internet-facing, application")
        return LoadBalancer(NEW, name, f"{name} {NEW}", NEW, "")
    if balancer.get("Scheme") != "internet-facing" or balancer.get("Type") != "application":
        raise AwsError(
            f"load balancer {name} is {balancer.get('Scheme')} {balancer.get('Type')}, not "
            "internet-facing application",
            "AWS cannot change that: run `dashscale teardown` (or delete it), then re-run",
        )
    differences = []
    current_groups = sorted(balancer.get("SecurityGroups", []))
    if set(current_groups) != {groups.alb}:
        differences.append(change("security groups", current_groups, [groups.alb]))
    subnets = sorted(zone["SubnetId"] for zone in balancer.get("AvailabilityZones", []))
    if set(subnets) != set(network.subnet_ids):
        differences.append(change("subnets", subnets, sorted(network.subnet_ids)))
    elb = ctx.client("elbv2")
    with translated(f"reading the attributes of load balancer {name}"):
        attributes = {
            a["Key"]: a["Value"]
            for a in elb.describe_load_balancer_attributes(
                LoadBalancerArn=balancer["LoadBalancerArn"]
            )["Attributes"]
        }
    if attributes.get(DROP_INVALID_HEADERS) != "true":
        differences.append(
            change(DROP_INVALID_HEADERS, attributes.get(DROP_INVALID_HEADERS), "true")
        )
    result = load_balancer_of(balancer)
    state = "updated" if differences else "found"
    report(ctx, outcomes, "load balancer", name, state, "; ".join(differences) or result.dns_name)
    return result


def wait_for_load_balancer(ctx: Context, arn: str) -> dict[str, Any]:
    """Waits until the load balancer is active (a few minutes on AWS)."""
    elb = ctx.client("elbv2")
    name = ctx.names.alb

    def check() -> dict[str, Any] | None:
        with translated(f"waiting for load balancer {name}"):
            balancer = elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]
        code = (balancer.get("State") or {}).get("Code")
        if code == "failed":
            reason = (balancer.get("State") or {}).get("Reason", "no reason given")
            raise AwsError(
                f"load balancer {name} failed to provision: {reason}",
                "check the subnets (VPC_ID, SUBNET_IDS) and your load balancer quota",
            )
        return dict(balancer) if code == "active" else None

    with ctx.ui.waiting(f"waiting for load balancer {name} to become active") as display:
        return wait_until(
            check,
            what=f"load balancer {name} to become active",
            timeout=ctx.timeout,
            clock=ctx.clock,
            interval=LB_POLL_SECONDS,
            on_poll=lambda elapsed: display.update(
                f"waiting for load balancer {name} to become active ({int(elapsed)} s)"
            ),
        )


# --- target group --------------------------------------------------------------------------------


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


def ensure_target_group(ctx: Context, network: Network, outcomes: list[Outcome]) -> str:
    """Target type ip, HTTP on APP_PORT, the tuned health check and deregistration delay."""
    name = ctx.names.target_group
    elb = ctx.client("elbv2")
    settings = health_check_settings(ctx)
    group = find_target_group(ctx)
    state = "found"
    if ctx.dry_run:
        return _plan_target_group(ctx, network, group, outcomes)
    with translated(f"setting up target group {name}"):
        if group is None:
            try:
                elb.create_target_group(
                    Name=name,
                    Protocol="HTTP",
                    ProtocolVersion="HTTP1",
                    Port=ctx.config.app_port,
                    VpcId=network.vpc_id,
                    TargetType="ip",
                    Tags=ctx.names.tags(),
                    **settings,
                )
            except botocore.exceptions.ClientError as error:
                if not already_exists(error, "DuplicateTargetGroupName"):
                    raise
            group = find_target_group(ctx)
            if group is None:
                raise AwsError(f"target group {name} was created but cannot be found")
            state = "created"
        else:
            fixed = (group.get("VpcId"), group.get("TargetType"), group.get("Protocol"))
            if fixed != (network.vpc_id, "ip", "HTTP"):
                raise AwsError(
                    f"target group {name} is {fixed[2]} with target type {fixed[1]} in "
                    f"{fixed[0]}; this app needs HTTP, type ip, in {network.vpc_id}",
                    "AWS cannot change that: run `dashscale teardown` (or delete it), then re-run",
                )
            differing = {key: value for key, value in settings.items() if group.get(key) != value}
            if differing:
                elb.modify_target_group(TargetGroupArn=group["TargetGroupArn"], **settings)
                state = "updated"
        arn = str(group["TargetGroupArn"])
        delay = str(ctx.config.deregistration_delay)
        attributes = {
            a["Key"]: a["Value"]
            for a in elb.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
        }
        if attributes.get(DEREGISTRATION_DELAY) != delay:
            elb.modify_target_group_attributes(
                TargetGroupArn=arn, Attributes=[{"Key": DEREGISTRATION_DELAY, "Value": delay}]
            )
            state = "updated" if state == "found" else state
    report(
        ctx,
        outcomes,
        "target group",
        name,
        state,
        f"ip, HTTP {ctx.config.app_port}, check {ctx.config.health_check_path} every "
        f"{ctx.config.health_check_interval} s, drain {delay} s",
    )
    return arn


def _plan_target_group(
    ctx: Context, network: Network, group: dict[str, Any] | None, outcomes: list[Outcome]
) -> str:
    """What ensure_target_group would do, with the differing fields; changes nothing."""
    name = ctx.names.target_group
    delay = str(ctx.config.deregistration_delay)
    if group is None:
        report(ctx, outcomes, "target group", name, "created", f"ip, HTTP {ctx.config.app_port}")
        return NEW
    fixed = (group.get("VpcId"), group.get("TargetType"), group.get("Protocol"))
    if fixed != (network.vpc_id, "ip", "HTTP"):
        raise AwsError(
            f"target group {name} is {fixed[2]} with target type {fixed[1]} in {fixed[0]}; this "
            f"app needs HTTP, type ip, in {network.vpc_id}",
            "AWS cannot change that: run `dashscale teardown` (or delete it), then re-run",
        )
    settings = health_check_settings(ctx)
    differences = [
        change(key, group.get(key), value)
        for key, value in settings.items()
        if group.get(key) != value
    ]
    elb = ctx.client("elbv2")
    with translated(f"reading the attributes of target group {name}"):
        attributes = {
            a["Key"]: a["Value"]
            for a in elb.describe_target_group_attributes(TargetGroupArn=group["TargetGroupArn"])[
                "Attributes"
            ]
        }
    if attributes.get(DEREGISTRATION_DELAY) != delay:
        differences.append(
            change(DEREGISTRATION_DELAY, attributes.get(DEREGISTRATION_DELAY), delay)
        )
    state = "updated" if differences else "found"
    report(ctx, outcomes, "target group", name, state, "; ".join(differences))
    return str(group["TargetGroupArn"])


# --- listener ------------------------------------------------------------------------------------


def forwards_to(action: dict[str, Any], target_group_arn: str) -> bool:
    if action.get("Type") != "forward":
        return False
    if action.get("TargetGroupArn"):
        return bool(action["TargetGroupArn"] == target_group_arn)
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups", [])
    return [g.get("TargetGroupArn") for g in groups] == [target_group_arn]


def forward_action(target_group_arn: str) -> dict[str, Any]:
    return {"Type": "forward", "TargetGroupArn": target_group_arn}


def ensure_http_listener(
    ctx: Context, load_balancer_arn: str, target_group_arn: str, outcomes: list[Outcome]
) -> str:
    """Port 80 forwarding to the target group. A redirect (the TLS step's HTTP-to-HTTPS) is
    kept as it is."""
    elb = ctx.client("elbv2")
    label = f"{ctx.names.alb}:{HTTP_PORT}"
    listener = find_listener(ctx, HTTP_PORT, load_balancer_arn)
    if ctx.dry_run:
        return _plan_http_listener(ctx, listener, target_group_arn, outcomes)
    with translated(f"setting up the port {HTTP_PORT} listener of {ctx.names.alb}"):
        if listener is None:
            try:
                elb.create_listener(
                    LoadBalancerArn=load_balancer_arn,
                    Protocol="HTTP",
                    Port=HTTP_PORT,
                    DefaultActions=[forward_action(target_group_arn)],
                    Tags=ctx.names.tags(),
                )
            except botocore.exceptions.ClientError as error:
                if not already_exists(error, "DuplicateListener"):
                    raise
            listener = find_listener(ctx, HTTP_PORT, load_balancer_arn)
            if listener is None:
                raise AwsError(f"listener {label} was created but cannot be found")
            report(
                ctx, outcomes, "listener", label, "created", f"forward to {ctx.names.target_group}"
            )
            return str(listener["ListenerArn"])
        actions = listener.get("DefaultActions", [])
        if any(action.get("Type") == "redirect" for action in actions):
            report(ctx, outcomes, "listener", label, "kept", "redirect (HTTPS)")
        elif len(actions) == 1 and forwards_to(actions[0], target_group_arn):
            report(
                ctx, outcomes, "listener", label, "found", f"forward to {ctx.names.target_group}"
            )
        else:
            elb.modify_listener(
                ListenerArn=listener["ListenerArn"],
                Protocol="HTTP",
                Port=HTTP_PORT,
                DefaultActions=[forward_action(target_group_arn)],
            )
            report(
                ctx, outcomes, "listener", label, "updated", f"forward to {ctx.names.target_group}"
            )
    return str(listener["ListenerArn"])


def _plan_http_listener(
    ctx: Context, listener: dict[str, Any] | None, target_group_arn: str, outcomes: list[Outcome]
) -> str:
    """What ensure_http_listener would do; changes nothing."""
    label = f"{ctx.names.alb}:{HTTP_PORT}"
    forward = f"forward to {ctx.names.target_group}"
    if listener is None:
        report(ctx, outcomes, "listener", label, "created", forward)
        return NEW
    actions = listener.get("DefaultActions", [])
    if any(action.get("Type") == "redirect" for action in actions):
        report(ctx, outcomes, "listener", label, "kept", "redirect (HTTPS)")
    elif len(actions) == 1 and forwards_to(actions[0], target_group_arn):
        report(ctx, outcomes, "listener", label, "found", forward)
    else:
        shown = [a.get("TargetGroupArn") or a.get("Type") for a in actions]
        report(
            ctx, outcomes, "listener", label, "updated", change("default action", shown, forward)
        )
    return str(listener["ListenerArn"])


# --- service -------------------------------------------------------------------------------------


def deployment_configuration() -> dict[str, Any]:
    """Deploys never drop capacity; a deployment whose tasks keep failing is rolled back."""
    return {
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
    }


def service_settings(ctx: Context, cluster: ClusterResult, target_group_arn: str) -> dict[str, Any]:
    """The fields of the service that `up` manages (create and update take them alike)."""
    return {
        "taskDefinition": cluster.task_definition_arn,
        "desiredCount": ctx.config.desired_count,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(cluster.network.subnet_ids),
                "securityGroups": [cluster.security_groups.tasks],
                "assignPublicIp": "ENABLED",
            }
        },
        "loadBalancers": [
            {
                "targetGroupArn": target_group_arn,
                "containerName": ctx.names.container,
                "containerPort": ctx.config.app_port,
            }
        ],
        "healthCheckGracePeriodSeconds": ctx.config.health_check_grace,
        "deploymentConfiguration": deployment_configuration(),
    }


def create_service_request(
    ctx: Context, cluster: ClusterResult, target_group_arn: str
) -> dict[str, Any]:
    return {
        "cluster": ctx.names.cluster,
        "serviceName": ctx.names.service,
        "launchType": "FARGATE",
        "schedulingStrategy": "REPLICA",
        "deploymentController": {"type": "ECS"},
        "propagateTags": "SERVICE",
        "enableECSManagedTags": True,
        "tags": ctx.names.ecs_tags(),
        # stable within this run: a retried create after a lost answer is not a second service
        "clientToken": ctx.run_id[:36],
        **service_settings(ctx, cluster, target_group_arn),
    }


def _network_view(configuration: dict[str, Any] | None) -> tuple[Any, ...]:
    vpc = (configuration or {}).get("awsvpcConfiguration") or {}
    return (
        sorted(vpc.get("subnets", [])),
        sorted(vpc.get("securityGroups", [])),
        vpc.get("assignPublicIp", "DISABLED"),
    )


def _load_balancers_view(items: list[dict[str, Any]] | None) -> list[tuple[Any, ...]]:
    return sorted(
        (i.get("targetGroupArn"), i.get("containerName"), int(i.get("containerPort", 0)))
        for i in items or []
    )


def _deployment_view(configuration: dict[str, Any]) -> tuple[Any, ...]:
    breaker = configuration.get("deploymentCircuitBreaker") or {}
    return (
        bool(breaker.get("enable")),
        bool(breaker.get("rollback")),
        configuration.get("maximumPercent"),
        configuration.get("minimumHealthyPercent"),
    )


def service_changes(
    desired: dict[str, Any], current: dict[str, Any], autoscaled: bool = False
) -> dict[str, Any]:
    """The UpdateService fields whose desired value differs from the service's.

    A field the description leaves out entirely (AWS always sends both; an emulator may not)
    cannot be compared and counts as unchanged. With `autoscaled`, the desired count belongs to
    the scaler (DESIRED_COUNT is only the count a new service starts with) and is left alone.
    """
    changes: dict[str, Any] = {}
    for key in ("taskDefinition",) if autoscaled else ("taskDefinition", "desiredCount"):
        if current.get(key) != desired[key]:
            changes[key] = desired[key]
    if _network_view(current.get("networkConfiguration")) != _network_view(
        desired["networkConfiguration"]
    ):
        changes["networkConfiguration"] = desired["networkConfiguration"]
    if _load_balancers_view(current.get("loadBalancers")) != _load_balancers_view(
        desired["loadBalancers"]
    ):
        changes["loadBalancers"] = desired["loadBalancers"]
    grace = "healthCheckGracePeriodSeconds"
    if grace in current and current[grace] != desired[grace]:
        changes[grace] = desired[grace]
    config = "deploymentConfiguration"
    if config in current and _deployment_view(current[config]) != _deployment_view(desired[config]):
        changes[config] = desired[config]
    return changes


def primary_deployment(service: dict[str, Any]) -> dict[str, Any] | None:
    return next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), None)


def ensure_service(
    ctx: Context, cluster: ClusterResult, target_group_arn: str, outcomes: list[Outcome]
) -> tuple[str, str | None]:
    """Creates the service or updates what differs; returns its ARN and the id of the
    deployment this started (None when nothing changed)."""
    name = ctx.names.service
    ecs = ctx.client("ecs")
    desired = service_settings(ctx, cluster, target_group_arn)
    current = find_service(ctx)
    revision = cluster.task_definition_arn.rsplit("/", 1)[-1]
    if ctx.dry_run:
        return _plan_service(ctx, current, desired, revision, outcomes)
    with translated(f"setting up ECS service {name}"):
        if current is None:
            request = create_service_request(ctx, cluster, target_group_arn)
            service = retry_role_not_ready(
                ctx, lambda: ecs.create_service(**request)["service"], "creating the service"
            )
            report(
                ctx,
                outcomes,
                "ECS service",
                name,
                "created",
                f"{ctx.config.desired_count} x {revision}",
            )
        else:
            changes = service_changes(desired, current, ctx.config.autoscaling)
            if not changes:
                report(
                    ctx,
                    outcomes,
                    "ECS service",
                    name,
                    "found",
                    f"{current.get('desiredCount')} x {revision}",
                )
                # A rollout still going (an interrupted run) or failed is followed again, so
                # a re-run never reports success over tasks that do not come up.
                unfinished = primary_deployment(current)
                if unfinished and unfinished.get("rolloutState") not in (None, "COMPLETED"):
                    return str(current["serviceArn"]), str(unfinished["id"])
                return str(current["serviceArn"]), None
            service = retry_role_not_ready(
                ctx,
                lambda: ecs.update_service(cluster=ctx.names.cluster, service=name, **changes)[
                    "service"
                ],
                "updating the service",
            )
            report(
                ctx,
                outcomes,
                "ECS service",
                name,
                "updated",
                f"{', '.join(_change_label(k) for k in changes)} changed",
            )
    deployment = primary_deployment(service)
    return str(service["serviceArn"]), (str(deployment["id"]) if deployment else None)


def _plan_service(
    ctx: Context,
    current: dict[str, Any] | None,
    desired: dict[str, Any],
    revision: str,
    outcomes: list[Outcome],
) -> tuple[str, None]:
    """What ensure_service would do, with the differing fields; changes nothing."""
    name = ctx.names.service
    if current is None:
        note = f"{ctx.config.desired_count} x {revision}"
        report(ctx, outcomes, "ECS service", name, "created", note)
        return NEW, None
    changes = service_changes(desired, current, ctx.config.autoscaling)
    differences = []
    for key, value in changes.items():
        old = current.get(key)
        if key == "taskDefinition":
            old, value = str(old).rsplit("/", 1)[-1], str(value).rsplit("/", 1)[-1]
        elif key == "networkConfiguration":
            old, value = _network_view(old), _network_view(value)
        elif key == "loadBalancers":
            old, value = _load_balancers_view(old), _load_balancers_view(value)
            old = [f"{c} port {p}" for _, c, p in old]
            value = [f"{c} port {p}" for _, c, p in value]
        elif key == "deploymentConfiguration":
            old, value = _deployment_view(old), _deployment_view(value)
        differences.append(change(_change_label(key), old, value))
    state = "updated" if changes else "found"
    shown = "; ".join(differences) or f"{current.get('desiredCount')} x {revision}"
    report(ctx, outcomes, "ECS service", name, state, shown)
    return str(current["serviceArn"]), None


def _change_label(key: str) -> str:
    return {
        "taskDefinition": "task definition",
        "desiredCount": "desired count",
        "networkConfiguration": "network",
        "loadBalancers": "target group",
        "healthCheckGracePeriodSeconds": "grace period",
        "deploymentConfiguration": "deployment settings",
    }.get(key, key)


# --- following a deployment ----------------------------------------------------------------------


def _describe_service(ctx: Context) -> dict[str, Any]:
    services = ctx.client("ecs").describe_services(
        cluster=ctx.names.cluster, services=[ctx.names.service]
    )["services"]
    if not services:
        raise AwsError(f"ECS service {ctx.names.service} disappeared while deploying")
    return dict(services[0])


def wait_for_deployment(ctx: Context, deployment_id: str, target_group_arn: str) -> None:
    """Follows one deployment by id until COMPLETED (and the service runs its desired count).
    FAILED, a missing deployment or a timeout print why and raise."""
    name = ctx.names.service
    outcome: dict[str, str] = {}

    def check() -> dict[str, Any] | None:
        with translated(f"following the deployment of {name}"):
            service = _describe_service(ctx)
        deployment = next(
            (d for d in service.get("deployments", []) if d.get("id") == deployment_id), None
        )
        if deployment is None:
            outcome["failure"] = "the deployment is gone: another deployment replaced it"
            return service
        state = deployment.get("rolloutState")
        if state == "FAILED":
            outcome["failure"] = deployment.get("rolloutStateReason") or "rollout FAILED"
            return service
        running = int(service.get("runningCount", 0))
        wanted = int(service.get("desiredCount", 0))
        outcome["progress"] = (
            f"deploying {name}: {deployment.get('runningCount', 0)}/"
            f"{deployment.get('desiredCount', wanted)} new tasks running, "
            f"{deployment.get('pendingCount', 0)} pending"
        )
        if state == "COMPLETED" and running >= wanted:
            return service
        return None

    with ctx.ui.waiting(f"deploying {name}") as display:
        try:
            service = wait_until(
                check,
                what=f"deployment {deployment_id} of {name} to complete",
                timeout=ctx.timeout,
                clock=ctx.clock,
                interval=DEPLOYMENT_POLL_SECONDS,
                on_poll=lambda elapsed: display.update(
                    f"{outcome.get('progress', f'deploying {name}')} ({int(elapsed)} s)"
                ),
                hint="ECS keeps trying (and rolls back when tasks keep failing): fix the cause "
                "above, or check again later with `dashscale alb`",
            )
        except WaitTimeout:
            explain_failure(ctx, deployment_id, target_group_arn)
            raise
    if "failure" in outcome:
        explain_failure(ctx, deployment_id, target_group_arn, service)
        raise AwsError(
            f"the deployment of {name} failed: {outcome['failure']}",
            "the previous tasks keep serving (the circuit breaker rolls back); fix the cause "
            "shown above, then re-run",
        )
    ctx.ui.resource("deployment", deployment_id, "passed", f"{service.get('runningCount')} running")


def explain_failure(
    ctx: Context,
    deployment_id: str,
    target_group_arn: str,
    service: dict[str, Any] | None = None,
) -> None:
    """Prints why a deployment did not complete: service events, stopped tasks and their
    reasons, the container's last log lines, and the target health. Never raises."""
    ctx.ui.step(f"Why deployment {deployment_id} did not complete")
    try:
        service = service or _describe_service(ctx)
        for event in list(service.get("events", []))[:5]:
            ctx.ui.info(f"  event: {event.get('message', '')}")
        stopped = stopped_tasks(ctx, deployment_id)
        if not stopped:
            ctx.ui.info("  no stopped tasks")
        for task in stopped:
            task_id = str(task["taskArn"]).rsplit("/", 1)[-1]
            ctx.ui.info(f"  task {task_id} stopped: {task.get('stoppedReason', 'no reason given')}")
            for container in task.get("containers", []):
                exit_code = container.get("exitCode")
                reason = container.get("reason")
                if exit_code is not None or reason:
                    ctx.ui.info(
                        f"    container {container.get('name')}: exit code {exit_code}"
                        + (f", {reason}" if reason else "")
                    )
        stream = _log_stream(ctx, stopped)
        if stream:
            lines = last_log_lines(ctx, stream)
            ctx.ui.info(f"  last log lines of {stream}:" if lines else f"  {stream}: no log lines")
            for line in lines:
                ctx.ui.info(f"    {line}")
        else:
            ctx.ui.info(f"  no log stream in {ctx.names.log_group} yet")
        unhealthy = [t for t in target_health(ctx, target_group_arn) if t[1] != "healthy"]
        for target, state, reason in unhealthy:
            ctx.ui.info(f"  target {target}: {state} ({reason})")
        if not unhealthy:
            ctx.ui.info(f"  no unhealthy targets in {ctx.names.target_group}")
    except (
        DashscaleError,
        botocore.exceptions.BotoCoreError,
        botocore.exceptions.ClientError,
    ) as e:
        ctx.ui.warn(f"could not gather every detail: {e}")


def stopped_tasks(ctx: Context, deployment_id: str) -> list[dict[str, Any]]:
    """The service's most recently stopped tasks, those of the deployment first."""
    ecs = ctx.client("ecs")
    with translated("listing the stopped tasks"):
        arns = ecs.list_tasks(
            cluster=ctx.names.cluster, serviceName=ctx.names.service, desiredStatus="STOPPED"
        ).get("taskArns", [])
        if not arns:
            return []
        tasks = ecs.describe_tasks(cluster=ctx.names.cluster, tasks=arns[:100]).get("tasks", [])
    ours = [t for t in tasks if t.get("startedBy") == deployment_id] or tasks
    ours.sort(key=lambda t: str(t.get("stoppedAt") or t.get("createdAt") or ""), reverse=True)
    return ours[:DIAGNOSED_TASKS]


def _log_stream(ctx: Context, stopped: list[dict[str, Any]]) -> str | None:
    """The container's log stream of the latest stopped task, or the latest stream written."""
    if stopped:
        task_id = str(stopped[0]["taskArn"]).rsplit("/", 1)[-1]
        return f"{LOG_STREAM_PREFIX}/{ctx.names.container}/{task_id}"
    logs = ctx.client("logs")
    with translated("looking up the app's log streams"):
        try:
            streams = logs.describe_log_streams(
                logGroupName=ctx.names.log_group, orderBy="LastEventTime", descending=True, limit=1
            ).get("logStreams", [])
        except logs.exceptions.ResourceNotFoundException:
            return None
    return str(streams[0]["logStreamName"]) if streams else None


def last_log_lines(ctx: Context, stream: str, limit: int = LOG_LINES) -> list[str]:
    logs = ctx.client("logs")
    with translated(f"reading log stream {stream}"):
        try:
            events = logs.get_log_events(
                logGroupName=ctx.names.log_group,
                logStreamName=stream,
                limit=limit,
                startFromHead=False,
            ).get("events", [])
        except logs.exceptions.ResourceNotFoundException:
            return []
    return [str(e.get("message", "")).rstrip() for e in events][-limit:]


def target_health(ctx: Context, target_group_arn: str) -> list[tuple[str, str, str]]:
    """(target ip:port, state, reason) for each registered target."""
    with translated(f"reading the target health of {ctx.names.target_group}"):
        descriptions = ctx.client("elbv2").describe_target_health(TargetGroupArn=target_group_arn)[
            "TargetHealthDescriptions"
        ]
    rows = []
    for item in descriptions:
        target = item.get("Target", {})
        health = item.get("TargetHealth", {})
        reason = " ".join(x for x in (health.get("Reason"), health.get("Description")) if x)
        rows.append((f"{target.get('Id')}:{target.get('Port')}", str(health.get("State")), reason))
    return rows


def show_target_health(ctx: Context, target_group_arn: str) -> None:
    rows = target_health(ctx, target_group_arn)
    if not rows:
        ctx.ui.info(f"no targets registered in {ctx.names.target_group} yet")
        return
    ctx.ui.table(f"Targets of {ctx.names.target_group}", ("target", "state", "reason"), rows)


# --- the step ------------------------------------------------------------------------------------


def check_ownership(ctx: Context) -> None:
    """Runs every finder of this step, so a resource under one of our names that is not this
    app's stops the run before anything changes."""
    find_load_balancer(ctx)
    find_target_group(ctx)
    find_service(ctx)


def ensure_alb(ctx: Context, cluster: ClusterResult, wait: bool = True) -> AlbResult:
    """The whole `alb` section: load balancer, target group, port-80 listener, service, then
    the deployment wait and the target health."""
    ctx.ui.step(f"Load balancer {ctx.names.alb} and service {ctx.names.service}")
    outcomes: list[Outcome] = []
    check_ownership(ctx)
    balancer = ensure_load_balancer(ctx, cluster.network, cluster.security_groups, outcomes)
    target_group_arn = ensure_target_group(ctx, cluster.network, outcomes)
    listener_arn = ensure_http_listener(ctx, balancer.arn, target_group_arn, outcomes)
    service_arn, deployment_id = ensure_service(ctx, cluster, target_group_arn, outcomes)
    if deployment_id is not None and wait:
        wait_for_deployment(ctx, deployment_id, target_group_arn)
    elif deployment_id is not None:
        ctx.ui.info(f"not waiting for deployment {deployment_id} (--no-wait)")
    if not ctx.dry_run:
        show_target_health(ctx, target_group_arn)
    return AlbResult(
        load_balancer=balancer,
        target_group_arn=target_group_arn,
        listener_arn=listener_arn,
        service_arn=service_arn,
        deployment_id=deployment_id,
        outcomes=tuple(outcomes),
    )

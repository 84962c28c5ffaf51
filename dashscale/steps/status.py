"""`dashscale status`: is the app there, is it serving, and what is it doing. Reads only.

Every resource of the app is looked up with the steps' own finders and shown as found, missing or
"not this app's" (a resource under one of our names without our tag: reported, never an error).
Then the service's counts and deployments, the target health with reasons, the autoscaling, the
certificate, and the address.

Serving, the exit code's meaning: the load balancer and the service exist and the target group
has at least one healthy target and none unhealthy. Targets that are starting (initial),
draining or unused do not count either way, so a rolling deploy still serves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from dashscale.aws import translated
from dashscale.context import Context
from dashscale.errors import DashscaleError, NotOwnedError
from dashscale.steps import alb, auth, autoscaling, cluster, network, taskrole, tls
from dashscale.steps import repository as ecr_repository
from dashscale.steps import service as ecs_service
from dashscale.steps.alb import HTTP_PORT
from dashscale.steps.deployment import target_health
from dashscale.steps.service import primary_deployment

HTTPS_PORT = 443
FOUND, MISSING, FOREIGN, OFF = "found", "missing", "not this app's", "off"
EVENTS_SHOWN = 3


class NotServing(DashscaleError):
    """`status` found the app not serving: exit code 1, after the report."""


@dataclass
class Resource:
    kind: str
    name: str
    state: str  # found, missing, not this app's, off (autoscaling), unknown
    detail: str = ""


@dataclass
class Status:
    app: str
    region: str
    account: str
    resources: list[Resource] = field(default_factory=list)
    service: dict[str, Any] | None = None
    targets: list[dict[str, str]] = field(default_factory=list)
    autoscaling: dict[str, Any] | None = None
    certificate: dict[str, str] | None = None
    sign_in: dict[str, Any] = field(default_factory=dict)  # mode, and with cognito the pool
    # the NAMES (never values) of the variables and secrets of the task definition the
    # service runs (the latest revision when there is no service)
    configuration: dict[str, list[str]] | None = None
    # revisions: the one the service runs, and the newest ACTIVE one when it is another
    task_definitions: dict[str, Any] | None = None
    address: str | None = None
    serving: bool = False
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _probe(
    status: Status, kind: str, name: str, find: Callable[[], Any], detail: Callable[[Any], str]
) -> Any:
    """Runs one finder; records the resource's state and returns what it found (None when
    missing, foreign or unreadable)."""
    try:
        found = find()
    except NotOwnedError:
        status.resources.append(Resource(kind, name, FOREIGN, "same name, without our tag"))
        return None
    except DashscaleError as error:  # e.g. a permission missing for this one lookup
        status.resources.append(Resource(kind, name, "unknown", error.message))
        return None
    if found is None:
        status.resources.append(Resource(kind, name, MISSING))
        return None
    status.resources.append(Resource(kind, name, FOUND, detail(found)))
    return found


def _when(value: Any) -> str | None:
    """A time AWS gave, in UTC to the second (ISO 8601)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.replace(microsecond=0).isoformat()
    return None if value is None else str(value)


def _revision(arn: Any) -> str:
    return str(arn or "").rsplit("/", 1)[-1]


def configuration_names(definition: dict[str, Any]) -> dict[str, list[str]]:
    """The names of a task definition's variables and secrets: never their values."""
    containers = definition.get("containerDefinitions", [])
    return {
        "variables": sorted(e["name"] for c in containers for e in c.get("environment") or []),
        "secrets": sorted(e["name"] for c in containers for e in c.get("secrets") or []),
    }


def _listener_detail(listener: dict[str, Any]) -> str:
    kinds = [a.get("Type", "?") for a in listener.get("DefaultActions", [])]
    return f"{listener.get('Protocol')} {listener.get('Port')}: {', '.join(kinds)}"


def collect(ctx: Context) -> Status:
    """Looks everything up (read-only calls only) and decides whether the app is serving."""
    names = ctx.names
    status = Status(names.app, ctx.config.aws_region, ctx.aws.account_id)

    _probe(
        status,
        "ECR repository",
        names.repository,
        lambda: ecr_repository.find_repository(ctx),
        lambda repo: str(repo.get("repositoryUri", "")),
    )
    try:
        net: network.Network | None = network.find_network(ctx)
    except DashscaleError as error:
        status.resources.append(Resource("network", "VPC and subnets", "unknown", error.message))
        net = None
    if net is not None:
        for group in (names.alb_sg, names.task_sg):
            _probe(
                status,
                "security group",
                group,
                lambda group=group: network.find_security_group(ctx, group, net.vpc_id),
                lambda found: str(found.get("GroupId", "")),
            )
    _probe(
        status, "ECS cluster", names.cluster, lambda: cluster.find_cluster(ctx), lambda c: "ACTIVE"
    )
    _probe(
        status,
        "IAM role",
        names.execution_role,
        lambda: cluster.find_execution_role(ctx),
        lambda role: "task execution",
    )
    _probe(
        status,
        "IAM role",
        names.task_role,
        lambda: taskrole.find_task_role(ctx),
        lambda role: "task role (the app's own permissions)",
    )
    if status.resources[-1].state == MISSING and not taskrole.task_role_wanted(ctx):
        status.resources.pop()  # not asked for and not there: nothing to report
    _probe(
        status,
        "log group",
        names.log_group,
        lambda: cluster.find_log_group(ctx),
        lambda group: f"kept {group.get('retentionInDays', 'forever')} days",
    )
    definition = _probe(
        status,
        "task definition",
        names.taskdef,
        lambda: cluster.find_task_definition(ctx),
        lambda d: (
            f"revision {d.get('revision')}: "
            + ", ".join(str(c.get("image")) for c in d.get("containerDefinitions", []))
        ),
    )
    balancer = _probe(
        status,
        "load balancer",
        names.alb,
        lambda: alb.find_load_balancer(ctx),
        lambda b: f"{(b.get('State') or {}).get('Code', '?')}, {b.get('DNSName')}",
    )
    group = _probe(
        status,
        "target group",
        names.target_group,
        lambda: alb.find_target_group(ctx),
        lambda g: f"HTTP {g.get('Port')}, check {g.get('HealthCheckPath')}",
    )
    https = None
    if balancer is not None:
        arn = str(balancer["LoadBalancerArn"])
        ports = (HTTP_PORT, HTTPS_PORT) if ctx.config.domain else (HTTP_PORT,)
        for port in ports:
            found = _probe(
                status,
                "listener",
                f"{names.alb}:{port}",
                lambda port=port: alb.find_listener(ctx, port, arn),
                _listener_detail,
            )
            if port == HTTPS_PORT:
                https = found
    service = _probe(
        status,
        "ECS service",
        names.service,
        lambda: ecs_service.find_service(ctx),
        lambda s: (
            f"{s.get('runningCount', 0)} running, {s.get('pendingCount', 0)} pending, "
            f"{s.get('desiredCount', 0)} desired"
        ),
    )
    if definition is not None:
        _running_definition(ctx, status, definition, service)
    if service is not None:
        status.service = _service_view(service)
        scaling = _probe(
            status,
            "scalable target",
            names.service,
            lambda: autoscaling.find_autoscaling(ctx),
            lambda a: f"{a.min_count}-{a.max_count} tasks",
        )
        last = status.resources[-1]
        if last.state == MISSING and not ctx.config.autoscaling:
            last.state, last.detail = OFF, "MIN_COUNT and MAX_COUNT unset"
        if scaling is not None:
            status.autoscaling = {
                "min": scaling.min_count,
                "max": scaling.max_count,
                "policies": [
                    {
                        "name": p.get("PolicyName"),
                        "type": p.get("PolicyType"),
                        "target": autoscaling.describe_policy(p),
                    }
                    for p in sorted(scaling.policies, key=lambda p: str(p.get("PolicyName")))
                ],
            }
    if group is not None:
        status.targets = [
            {"target": target, "state": state, "reason": reason}
            for target, state, reason in target_health(ctx, str(group["TargetGroupArn"]))
        ]
    if ctx.config.domain:
        domain = ctx.config.domain
        _probe(
            status,
            "hosted zone",
            domain,
            lambda: tls.find_enclosing_zone(ctx),
            lambda z: z.id if z.owned else f"{z.id} (yours, not created by dashscale)",
        )
        certificate = _probe(
            status,
            "certificate",
            domain,
            lambda: tls.find_certificate(ctx),
            lambda c: str(c["Status"]),
        )
        if certificate is not None:
            status.certificate = {
                "domain": domain,
                "arn": str(certificate["CertificateArn"]),
                "status": str(certificate["Status"]),
            }
    _sign_in(ctx, status)
    if ctx.config.auth != auth.NONE:
        _private_reach(status, https)
    if https is not None and ctx.config.domain:
        status.address = f"https://{ctx.config.domain}"
    elif balancer is not None:
        status.address = alb.load_balancer_of(balancer).address
    _decide(status, balancer is not None, service is not None)
    return status


def _private_reach(status: Status, https: dict[str, Any] | None) -> None:
    """Whether signed-in users reach a private app yet, and why not: until the HTTPS listener
    signs users in, nobody does (port 80 answers 503, the tasks wait)."""
    if alb.signs_in_first(https):
        status.sign_in["reachable"] = True
        return
    certificate = (status.certificate or {}).get("status")
    if https is not None:
        why = "the HTTPS listener does not sign users in yet: run `dashscale up`"
    elif certificate and certificate != "ISSUED":
        why = (
            f"the certificate is {certificate}: HTTPS with sign-in follows once ACM issues it "
            "(`dashscale tls` or `dashscale up`)"
        )
    else:
        why = "there is no HTTPS listener yet: run `dashscale up` (or `dashscale tls`)"
    status.sign_in.update(reachable=False, why=why)
    status.reasons.append("the private app is not reachable yet (no sign-in on HTTPS)")


def _running_definition(
    ctx: Context, status: Status, newest: dict[str, Any], service: dict[str, Any] | None
) -> None:
    """The revision the service runs (its PRIMARY deployment's) and its variable and secret
    names; the newest ACTIVE revision besides when the service runs another (`cluster` alone,
    a rollback) or a deployment is under way. One call more only when they differ."""
    running = newest
    arn = (service or {}).get("taskDefinition")
    if arn and arn != newest.get("taskDefinitionArn"):
        try:
            with translated(f"reading task definition {_revision(arn)}"):
                running = ctx.client("ecs").describe_task_definition(taskDefinition=arn)[
                    "taskDefinition"
                ]
        except DashscaleError as error:
            status.resources.append(
                Resource("task definition", _revision(arn), "unknown", error.message)
            )
            running = {}
    deployments = (service or {}).get("deployments") or []
    deploying = len(deployments) > 1 or any(
        d.get("rolloutState") not in (None, "COMPLETED") for d in deployments
    )
    shown_newest = running is not newest or deploying
    status.task_definitions = {
        "running": _revision(running.get("taskDefinitionArn")) if service else None,
        "newest": _revision(newest.get("taskDefinitionArn")),
        "deploying": deploying,
    }
    status.configuration = configuration_names(running) if running else None
    row = next(r for r in status.resources if r.kind == "task definition" and r.state == FOUND)
    if service is None:
        row.detail += " (no service runs it)"
    elif running is not newest:
        row.detail = (
            f"the service runs revision {running.get('revision', '?')}"
            f"{', deploying' if deploying else ''}; newest: {row.detail}"
        )
    elif shown_newest:
        row.detail = f"the service runs {row.detail}, deploying"
    else:
        row.detail = f"the service runs {row.detail}"


def _sign_in(ctx: Context, status: Status) -> None:
    """The sign-in mode; with AUTH=cognito the user pool and its user count (no call else)."""
    mode = ctx.config.auth
    status.sign_in = {"mode": mode}
    if mode == auth.OIDC:
        status.sign_in.update(issuer=ctx.config.oidc_issuer, client_id=ctx.config.oidc_client_id)
    if mode != auth.COGNITO:
        return
    pool = _probe(
        status,
        "user pool",
        ctx.names.user_pool,
        lambda: auth.find_user_pool(ctx),
        lambda p: f"{p['Id']}, {p.get('EstimatedNumberOfUsers', 0)} user(s)",
    )
    if pool is not None:
        status.sign_in.update(
            pool=ctx.names.user_pool,
            pool_id=pool["Id"],
            users=int(pool.get("EstimatedNumberOfUsers", 0)),
            domain=pool.get("Domain"),
            case_sensitive=auth.case_sensitive(pool),
        )
        if auth.case_sensitive(pool):
            status.sign_in["warning"] = auth.case_sensitive_warning(ctx)


def _service_view(service: dict[str, Any]) -> dict[str, Any]:
    primary = primary_deployment(service) or {}
    return {
        "status": service.get("status"),
        "desired": int(service.get("desiredCount", 0)),
        "running": int(service.get("runningCount", 0)),
        "pending": int(service.get("pendingCount", 0)),
        "task_definition": _revision(service.get("taskDefinition")),
        "deployments": [
            {
                "id": d.get("id"),
                "status": d.get("status"),
                "current": d.get("id") == primary.get("id"),
                "rollout_state": d.get("rolloutState"),
                "rollout_state_reason": d.get("rolloutStateReason"),
                "task_definition": _revision(d.get("taskDefinition")),
                "desired": int(d.get("desiredCount", 0)),
                "running": int(d.get("runningCount", 0)),
                "pending": int(d.get("pendingCount", 0)),
                "failed": int(d.get("failedTasks", 0)),
                "created_at": _when(d.get("createdAt")),
            }
            for d in service.get("deployments", [])
        ],
        "events": [
            {"at": _when(e.get("createdAt")), "message": e.get("message")}
            for e in list(service.get("events", []))[:EVENTS_SHOWN]
        ],
    }


def _decide(status: Status, has_balancer: bool, has_service: bool) -> None:
    states = [t["state"] for t in status.targets]
    healthy, unhealthy = states.count("healthy"), states.count("unhealthy")
    if not has_balancer:
        status.reasons.append("no load balancer")
    if not has_service:
        status.reasons.append("no ECS service")
    if has_balancer and has_service:
        if healthy == 0:
            status.reasons.append("no healthy target")
        if unhealthy:
            status.reasons.append(f"{unhealthy} unhealthy target(s)")
    status.serving = not status.reasons


# --- output ------------------------------------------------------------------------------------


def show(ctx: Context, status: Status, as_json: bool = False) -> None:
    """Tables on stderr and the address on stdout; or, with `as_json`, one JSON document on
    stdout and nothing else. Raises NotServing (exit 1) when the app is not serving."""
    if as_json:
        text = json.dumps(status.to_json(), indent=2, default=str)
        ctx.ui.out.print(text, markup=False, emoji=False, highlight=False, soft_wrap=True)
    else:
        _tables(ctx, status)
        if status.address:
            ctx.ui.result(status.address)
    if not status.serving:
        nothing = all(r.state != FOUND for r in status.resources)
        raise NotServing(
            f"{status.app} is not serving: {', '.join(status.reasons)}",
            "nothing is deployed: run `dashscale up`"
            if nothing
            else "see the details above; `dashscale logs --since 30m` shows what the app printed",
        )


def _tables(ctx: Context, status: Status) -> None:
    ui = ctx.ui
    ui.table(
        f"{status.app} in {status.region} (account {status.account})",
        ("resource", "name", "state", "detail"),
        [(r.kind, r.name, r.state, r.detail) for r in status.resources],
    )
    revisions = status.task_definitions or {}
    if revisions.get("running"):
        newest = revisions["newest"]
        note = "" if newest == revisions["running"] else f"; newest: {newest}"
        if newest != revisions["running"] or revisions["deploying"]:
            state = "a deployment is in progress" if revisions["deploying"] else "not deployed"
            note += f" ({state})"
        ui.info(f"the service runs task definition {revisions['running']}{note}")
    if status.configuration is not None:
        for what in ("variables", "secrets"):
            shown = ", ".join(status.configuration[what]) or "(none)"
            ui.info(f"task definition {what}: {shown}")
    service = status.service
    if service is not None:
        ui.table(
            f"Service: {service['running']} running, {service['pending']} pending, "
            f"{service['desired']} desired",
            ("deployment", "status", "rollout", "tasks", "task definition", "started"),
            [
                (
                    d["id"],
                    d["status"] + (" (current)" if d["current"] else ""),
                    d["rollout_state"] or "?",
                    f"{d['running']}/{d['desired']} running, {d['pending']} pending"
                    + (f", {d['failed']} failed" if d["failed"] else ""),
                    d["task_definition"],
                    d["created_at"] or "",
                )
                for d in service["deployments"]
            ],
        )
        for deployment in service["deployments"]:
            if deployment["rollout_state"] == "FAILED" and deployment["rollout_state_reason"]:
                ui.info(f"  {deployment['id']}: {deployment['rollout_state_reason']}")
        for event in service["events"]:
            ui.info(f"  event {event['at']}: {event['message']}")
    if status.targets:
        ui.table(
            "Targets",
            ("target", "state", "reason"),
            [(t["target"], t["state"], t["reason"]) for t in status.targets],
        )
    elif any(r.kind == "target group" and r.state == FOUND for r in status.resources):
        ui.info("no targets registered in the target group")
    if status.autoscaling is not None:
        scaling = status.autoscaling
        ui.table(
            f"Autoscaling: {scaling['min']}-{scaling['max']} tasks",
            ("policy", "type", "keeps"),
            [(p["name"], p["type"], p["target"]) for p in scaling["policies"]],
        )
    sign_in = status.sign_in
    if sign_in:
        pool = f": {sign_in['pool']}, {sign_in['users']} user(s)" if "pool" in sign_in else ""
        ui.info(f"sign-in: {sign_in['mode']}{pool}")
        if sign_in.get("reachable") is False:
            ui.info(f"private app not reachable yet (port 80 answers 503): {sign_in['why']}")
        if sign_in.get("warning"):
            ui.warn(sign_in["warning"])
    if status.certificate is not None:
        ui.info(f"certificate for {status.certificate['domain']}: {status.certificate['status']}")
    if status.serving:
        healthy = sum(1 for t in status.targets if t["state"] == "healthy")
        ui.info(f"serving: {healthy} healthy target(s)")

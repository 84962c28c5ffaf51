"""`dashscale status`: is the app there, is it serving, and what is it doing. Reads only.

Every resource of the one inventory (`up.every_resource()`) is shown as its own survey finds it
(dashscale/inventory.py, the same survey teardown reads): found, with what the resource says of
itself (`Resource.shown`), "not this app's" (under one of our names without our tag: reported,
never an error), or missing when the configuration asks for it (`Resource.when_absent`). Then the
service's counts and deployments, the target health with reasons, the autoscaling, the
certificate, the sign-in, and the address, all from what the survey found.

Serving, the exit code's meaning: the load balancer and the service exist and the target group
has at least one healthy target and none unhealthy. Targets that are starting (initial),
draining or unused do not count either way, so a rolling deploy still serves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from dashscale import inventory, model, usage
from dashscale.aws import POLICY_HINT, translated
from dashscale.context import Context
from dashscale.errors import DashscaleError
from dashscale.inventory import Inventory
from dashscale.steps import alarms, alb, auth, autoscaling, tls
from dashscale.steps.cluster import TaskDefinition
from dashscale.steps.deployment import target_health
from dashscale.steps.https import HttpsListener
from dashscale.steps.service import Service, primary_deployment
from dashscale.steps.up import every_resource

FOUND, MISSING, FOREIGN, OFF = "found", "missing", "not this app's", "off"
EVENTS_SHOWN = 3


class NotServing(DashscaleError):
    """`status` found the app not serving: exit code 1, after the report."""


@dataclass
class Resource:
    """One row of the resources table (and of `resources` in --json)."""

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
    # the background-callback workers (WORKERS): running, pending and desired tasks
    workers: dict[str, Any] | None = None
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
    # SCHEDULE: the office hours, whether the app sleeps now and until when
    schedule: dict[str, Any] | None = None
    asleep: bool = False  # the schedule keeps it at zero tasks: not serving, and not a failure
    # CPU, memory, requests, 5xx and response time over the window, and right-size advice
    usage: dict[str, Any] | None = None
    alarms: list[dict[str, str]] = field(default_factory=list)  # ALERT_EMAIL's, in ALARM
    serving: bool = False
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# The IAM actions of `dashscale status` beyond every resource's survey (dashscale/policy.py):
# the running task definition, the tasks and the targets' health.
STATUS_CALLS = (
    "ecs:DescribeTaskDefinition",
    "ecs:ListTasks",
    "ecs:DescribeTasks",
    "elasticloadbalancing:DescribeTargetHealth",
    "cloudwatch:GetMetricData",  # the usage of the last 24 hours (dashscale/usage.py)
)


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


def rows(ctx: Context, resources: Sequence[model.Resource], found: Inventory) -> list[Resource]:
    """A row for each item a resource's survey found, or for its absence when it is shown."""
    shown: list[Resource] = []
    for resource in resources:
        name = resource.name(ctx) if resource.named else resource.kind
        if resource.key in found.unreadable:
            # shown only for what the configuration uses: a permission the app does not need
            # (no DOMAIN, no ACM rights) is not a problem of its status
            if resource.when_absent(ctx, found.survey) is not None:
                why = found.unreadable[resource.key]
                shown.append(Resource(resource.kind, name, "unknown", why))
            continue
        items = found.survey.of(resource.key)
        for item in items:
            if item.action == model.FOREIGN:
                shown.append(Resource(item.kind, name, FOREIGN, "same name, without our tag"))
            else:
                label, detail = resource.shown(ctx, item)
                shown.append(Resource(item.kind, label, resource.status_state(ctx, item), detail))
        absent = resource.when_absent(ctx, found.survey)
        if absent is not None:
            shown.append(Resource(resource.kind, *absent))
    return shown


def ours(found: Inventory, key: str, field_name: str = "resource") -> Any:
    """What the survey of resource `key` found of the app's (not a stranger's), or None."""
    for item in found.survey.of(key):
        if item.action != model.FOREIGN and item.data.get(field_name) is not None:
            return item.data[field_name]
    return None


def collect(ctx: Context, since: int = 24 * 3600) -> Status:
    """Surveys everything (read-only calls only) and decides whether the app is serving;
    reads the usage of the last `since` seconds."""
    status = Status(ctx.names.app, ctx.config.aws_region, ctx.aws.account_id)
    resources = every_resource()
    found = inventory.survey(ctx, resources, everything=True, tolerant=True)
    status.resources = rows(ctx, resources, found)
    service = ours(found, Service.key)
    if service is not None and service.get("status") != "ACTIVE":
        service = None  # being deleted: not the app's service any more
    definition = ours(found, TaskDefinition.key, "newest")
    if definition is not None:
        _running_definition(ctx, status, definition, service)
    status.workers = _workers_view(ours(found, "worker service"))
    if service is not None:
        status.service = _service_view(service)
        scaling = ours(found, "scalable target", "autoscaling")
        status.autoscaling = _autoscaling_view(scaling)
        status.schedule = autoscaling.hours_view(ctx, scaling)
        status.asleep = bool(status.schedule and status.schedule["asleep"])
    group = ours(found, alb.TargetGroup.key)
    if group is not None:
        status.targets = [
            {"target": target, "state": state, "reason": reason}
            for target, state, reason in target_health(ctx, str(group["TargetGroupArn"]))
        ]
    status.certificate = _certificate_view(ctx, found)
    status.alarms = alarms.in_alarm(ctx, [i for i in found.items if i.kind == "alarm"])
    _sign_in(ctx, status, ours(found, auth.UserPool.key))
    https = ours(found, HttpsListener.key)
    if ctx.config.auth != auth.NONE:
        _private_reach(status, https)
    balancer = ours(found, alb.LoadBalancerResource.key)
    if https is not None and ctx.config.domain:
        status.address = f"https://{ctx.config.domain}"
    elif balancer is not None:
        status.address = alb.load_balancer_of(balancer).address
    if service is not None:
        arn = alb.load_balancer_of(balancer).arn if balancer is not None else None
        status.usage = _usage(ctx, since, arn)
    _decide(status, balancer is not None, service is not None)
    return status


def _workers_view(service: dict[str, Any] | None) -> dict[str, Any] | None:
    if service is None or service.get("status") != "ACTIVE":
        return None
    return {
        "service": service.get("serviceName"),
        "running": int(service.get("runningCount", 0)),
        "pending": int(service.get("pendingCount", 0)),
        "desired": int(service.get("desiredCount", 0)),
        "task_definition": _revision(service.get("taskDefinition")),
    }


def _usage(ctx: Context, since: int, balancer_arn: str | None) -> dict[str, Any]:
    """The usage, or why it could not be read (a missing permission is not a failure)."""
    try:
        return usage.read_usage(ctx, since, balancer_arn).to_json()
    except DashscaleError as error:
        return {"error": error.message}


def _autoscaling_view(scaling: autoscaling.Autoscaling | None) -> dict[str, Any] | None:
    if scaling is None:
        return None
    return {
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


def _certificate_view(ctx: Context, found: Inventory) -> dict[str, str] | None:
    """DOMAIN's live certificate: the issued one when there are several (a new one pending)."""
    certificate = tls.live_certificate_of(ctx, found.survey)
    if certificate is None:
        return None
    return {
        "domain": str(ctx.config.domain),
        "arn": str(certificate["CertificateArn"]),
        "status": str(certificate["Status"]),
    }


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


def _sign_in(ctx: Context, status: Status, pool: dict[str, Any] | None) -> None:
    """The sign-in mode; with AUTH=cognito the user pool and its user count."""
    mode = ctx.config.auth
    status.sign_in = {"mode": mode}
    if mode == auth.OIDC:
        status.sign_in.update(issuer=ctx.config.oidc_issuer, client_id=ctx.config.oidc_client_id)
    if mode != auth.COGNITO or pool is None:
        return
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
    if has_balancer and has_service and not status.asleep:
        if healthy == 0:
            status.reasons.append("no healthy target")
        if unhealthy:
            status.reasons.append(f"{unhealthy} unhealthy target(s)")
    status.serving = not status.reasons and not status.asleep


# --- output ------------------------------------------------------------------------------------


def show(ctx: Context, status: Status, as_json: bool = False) -> None:
    """Tables on stderr and the address on stdout; or, with `as_json`, one JSON document on
    stdout and nothing else. Raises NotServing (exit 1) when the app is not serving."""
    if as_json:
        text = json.dumps(status.to_json(), indent=2, default=str)
        ctx.ui.out.print(text, markup=False, emoji=False, highlight=False, soft_wrap=True)
    else:
        _tables(ctx, status)
        if any(
            r.state == "unknown" and r.detail.startswith("not allowed") for r in status.resources
        ):
            ctx.ui.warn(f"some of the app's resources could not be read: {POLICY_HINT}")
        if status.address:
            ctx.ui.result(status.address)
    if not status.serving and not status.asleep:
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
    if status.service is not None:
        _service_tables(ctx, status.service)
    if status.workers is not None:
        workers = status.workers
        ui.info(
            f"workers ({workers['service']}): {workers['running']} running, "
            f"{workers['pending']} pending, {workers['desired']} desired, "
            f"{workers['task_definition']}"
        )
    _rest(ctx, status)


def _service_tables(ctx: Context, service: dict[str, Any]) -> None:
    """The service's counts, its deployments, why a rollout failed, its last events."""
    ui = ctx.ui
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


def _rest(ctx: Context, status: Status) -> None:
    """The targets, the autoscaling, the sign-in, the certificate, and whether it serves."""
    ui = ctx.ui
    if status.targets:
        ui.table(
            "Targets",
            ("target", "state", "reason"),
            [(t["target"], t["state"], t["reason"]) for t in status.targets],
        )
    elif any(r.kind == "target group" and r.state == FOUND for r in status.resources):
        ui.info("no targets registered in the target group")
    if status.autoscaling is not None and (status.schedule is None or ctx.config.autoscaling):
        scaling = status.autoscaling
        ui.table(
            f"Autoscaling: {scaling['min']}-{scaling['max']} tasks",
            ("policy", "type", "keeps"),
            [(p["name"], p["type"], p["target"]) for p in scaling["policies"]],
        )
    if status.schedule is not None:
        ui.info(autoscaling.hours_line(status.schedule))
    if status.usage is not None:
        _usage_table(ctx, status.usage)
    for alarm in status.alarms:
        ui.warn(f"alarm {alarm['name']} is in ALARM: {alarm['reason']}")
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


def _usage_table(ctx: Context, shown: dict[str, Any]) -> None:
    if "error" in shown:
        denied = str(shown["error"]).startswith("not allowed")  # a refusal says what to do
        ctx.ui.info(f"usage not shown: {shown['error']}" + (f"; {POLICY_HINT}" if denied else ""))
        return
    start = datetime.fromisoformat(shown["start"]).strftime("%Y-%m-%d %H:%M")
    minutes = shown["period_seconds"] // 60
    ctx.ui.table(
        f"Usage since {start} UTC (one bar per {minutes} min)",
        ("metric", "", "average", "peak / total"),
        usage.rows_of(shown),
    )
    ctx.ui.info(f"size: {shown['advice']['message']}")

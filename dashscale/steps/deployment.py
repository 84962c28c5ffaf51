"""Following what `up` started until it is done: the load balancer becoming active and the
service's deployment completing; and, when a deployment does not complete, why.

The wait follows the deployment this run started, by its id, until its rolloutState is
COMPLETED; FAILED (a circuit-breaker rollback included) is a failure, explained with the stopped
tasks' reasons, the container's last log lines and the target health.
"""

from __future__ import annotations

from typing import Any, NoReturn

import botocore.exceptions

from dashscale.aws import translated
from dashscale.context import Context
from dashscale.errors import AwsError, DashscaleError, WaitTimeout
from dashscale.steps.cluster import LOG_STREAM_PREFIX

LB_POLL_SECONDS = 5.0
DEPLOYMENT_POLL_SECONDS = 5.0
LOG_LINES = 20
DIAGNOSED_TASKS = 3


# The IAM actions of following a deployment (dashscale/policy.py): the load balancer active,
# the service's rollout, the targets' health; and, only when a rollout fails, what says why
# (the stopped tasks and their last log lines).
FOLLOW_CALLS = (
    "elasticloadbalancing:DescribeLoadBalancers",
    "ecs:DescribeServices",
    "elasticloadbalancing:DescribeTargetHealth",
    "ecs:ListTasks",
    "ecs:DescribeTasks",
)
FAILURE_CALLS = (
    "ecs:ListTasks",
    "ecs:DescribeTasks",
    "logs:DescribeLogStreams",
    "logs:GetLogEvents",
)


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

    return ctx.wait(
        f"waiting for load balancer {name} to become active",
        f"load balancer {name} to become active",
        check,
        LB_POLL_SECONDS,
    )


# --- following a deployment ----------------------------------------------------------------------


def _describe_service(ctx: Context) -> dict[str, Any]:
    services = ctx.client("ecs").describe_services(
        cluster=ctx.names.cluster, services=[ctx.names.service]
    )["services"]
    if not services:
        raise AwsError(f"ECS service {ctx.names.service} disappeared while deploying")
    return dict(services[0])


def wait_for_deployment(
    ctx: Context, deployment_id: str, target_group_arn: str, drained: bool = False
) -> None:
    """Follows one deployment by id until its new tasks serve: each one healthy in the target
    group and every other target draining, so no new request reaches an old task. That is
    "serving version X"; with `drained`, the wait goes on until the old tasks are gone too
    (ECS marks the rollout COMPLETED once they have drained and stopped). A FAILED rollout (a
    circuit-breaker rollback), a missing deployment or a timeout print why and raise."""
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
            if deployment.get("rolloutState") == "FAILED":
                outcome["failure"] = deployment.get("rolloutStateReason") or "rollout FAILED"
                return service
            outcome["progress"] = _progress(name, service, deployment)
            completed = _completed(service, deployment)
            if "serving" not in outcome:
                targets = None if completed else serving_targets(ctx, deployment, target_group_arn)
                if completed or targets is not None:
                    outcome["serving"] = _serving(ctx, deployment, targets, drained)
            if completed or ("serving" in outcome and not drained):
                return service
            if "serving" in outcome:
                outcome["progress"] = f"{outcome['serving']}; the old tasks are draining"
        return None

    try:
        service = ctx.wait(
            f"deploying {name}",
            f"deployment {deployment_id} of {name} to "
            + ("complete (the old tasks drained)" if drained else "serve"),
            check,
            DEPLOYMENT_POLL_SECONDS,
            progress=lambda: outcome.get("progress", f"deploying {name}"),
            hint="ECS keeps trying (and rolls back when tasks keep failing): fix the cause "
            "above, or check again later with `dashscale alb`",
        )
    except WaitTimeout:
        explain_failure(ctx, deployment_id, target_group_arn)
        raise
    if "failure" in outcome:
        _fail(ctx, deployment_id, target_group_arn, service, outcome["failure"])
    if drained:
        ctx.ui.resource(
            "deployment",
            deployment_id,
            "passed",
            f"{service.get('runningCount')} running, the old tasks drained and stopped",
        )


def _fail(
    ctx: Context, deployment_id: str, target_group_arn: str, service: dict[str, Any], why: str
) -> NoReturn:
    explain_failure(ctx, deployment_id, target_group_arn, service)
    raise AwsError(
        f"the deployment of {ctx.names.service} failed: {why}",
        "the previous tasks keep serving (the circuit breaker rolls back); fix the cause "
        "shown above, then re-run",
    )


def _completed(service: dict[str, Any], deployment: dict[str, Any]) -> bool:
    running, wanted = int(service.get("runningCount", 0)), int(service.get("desiredCount", 0))
    return deployment.get("rolloutState") == "COMPLETED" and running >= wanted


def _progress(name: str, service: dict[str, Any], deployment: dict[str, Any]) -> str:
    return (
        f"deploying {name}: {deployment.get('runningCount', 0)}/"
        f"{deployment.get('desiredCount', service.get('desiredCount', 0))} new tasks running, "
        f"{deployment.get('pendingCount', 0)} pending"
    )


def version(deployment: dict[str, Any]) -> str:
    """The version a deployment runs, as `status` names it: its task definition revision."""
    return str(deployment.get("taskDefinition") or "?").rsplit("/", 1)[-1]


def _serving(
    ctx: Context, deployment: dict[str, Any], targets: tuple[int, int] | None, drained: bool
) -> str:
    """Says (once) that the deployment's tasks serve; returns it for the live line.
    `targets`: (new healthy, old draining), None when the rollout has completed."""
    serving = f"serving version {version(deployment)}"
    if targets is None:
        note = f"{deployment.get('runningCount', 0)} task(s) running, no old ones left"
    else:
        new, old = targets
        note = f"{new} new task(s) healthy in {ctx.names.target_group}"
        if old:
            after = "waiting until they stop" if drained else "they stop on their own"
            note += f"; {old} old one(s) draining (no new requests), {after}"
    ctx.ui.resource("ECS service", ctx.names.service, serving, note)
    return serving


def serving_targets(
    ctx: Context, deployment: dict[str, Any], target_group_arn: str
) -> tuple[int, int] | None:
    """(new, old) once each running task of the deployment is healthy in the target group and
    every other target is draining, i.e. the load balancer sends new requests to the new tasks
    only; None until then. Reads the tasks and the target health only once ECS counts all the
    deployment's tasks running."""
    wanted = int(deployment.get("desiredCount", 0))
    if wanted == 0 or int(deployment.get("runningCount", 0)) < wanted:
        return None  # (a deployment of no tasks serves nothing: it is followed to COMPLETED)
    addresses = task_addresses(ctx, str(deployment["id"]))
    if len(addresses) < wanted:
        return None
    states = target_states(ctx, target_group_arn)
    old = [state for target, state in states.items() if target not in addresses]
    if any(states.get(a) != "healthy" for a in addresses) or any(s != "draining" for s in old):
        return None
    return len(addresses), len(old)


def task_addresses(ctx: Context, deployment_id: str) -> set[str]:
    """The private IPv4 addresses (the targets, type ip) of the deployment's running tasks:
    ECS starts a service's tasks with the deployment's id as `startedBy`."""
    ecs = ctx.client("ecs")
    arns: list[str] = []
    for page in ecs.get_paginator("list_tasks").paginate(
        cluster=ctx.names.cluster, startedBy=deployment_id
    ):
        arns += page.get("taskArns", [])
    addresses = set()
    for first in range(0, len(arns), 100):
        for task in ecs.describe_tasks(cluster=ctx.names.cluster, tasks=arns[first : first + 100])[
            "tasks"
        ]:
            if task.get("desiredStatus") != "RUNNING":  # being stopped: not one that serves
                continue
            addresses |= {
                str(detail.get("value"))
                for attachment in task.get("attachments", [])
                for detail in attachment.get("details", [])
                if detail.get("name") == "privateIPv4Address"
            }
    return addresses


def target_states(ctx: Context, target_group_arn: str) -> dict[str, str]:
    """Target id (an ip) -> health state, for every target registered in the group."""
    descriptions = ctx.client("elbv2").describe_target_health(TargetGroupArn=target_group_arn)[
        "TargetHealthDescriptions"
    ]
    return {
        str(item.get("Target", {}).get("Id")): str(item.get("TargetHealth", {}).get("State"))
        for item in descriptions
    }


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


def wait_until_active(ctx: Context, balancer: Any) -> None:
    """Waits for a LoadBalancer (alb.py) that is not active yet."""
    if balancer.state != "active":
        wait_for_load_balancer(ctx, balancer.arn)

"""Following what `up` started until it is done: the load balancer becoming active and the
service's deployment completing; and, when a deployment does not complete, why.

The wait follows the deployment this run started, by its id, until its rolloutState is
COMPLETED; FAILED (a circuit-breaker rollback included) is a failure, explained with the stopped
tasks' reasons, the container's last log lines and the target health.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from dashscale.aws import translated
from dashscale.context import Context
from dashscale.errors import AwsError, DashscaleError, WaitTimeout
from dashscale.steps.cluster import LOG_STREAM_PREFIX

LB_POLL_SECONDS = 5.0
DEPLOYMENT_POLL_SECONDS = 10.0
LOG_LINES = 20
DIAGNOSED_TASKS = 3


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

    try:
        service = ctx.wait(
            f"deploying {name}",
            f"deployment {deployment_id} of {name} to complete",
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


def wait_until_active(ctx: Context, balancer: Any) -> None:
    """Waits for a LoadBalancer (alb.py) that is not active yet."""
    if balancer.state != "active":
        wait_for_load_balancer(ctx, balancer.arn)

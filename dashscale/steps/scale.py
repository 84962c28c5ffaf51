"""`dashscale scale N`: set the service's desired count, then wait until N tasks run.

A new desired count does not start a new ECS deployment: the PRIMARY deployment gains or loses
tasks. The wait therefore follows the service's counts: done when N tasks run, none is pending
and no other deployment is still rolling out (then the service's counts are the PRIMARY
deployment's). A FAILED rollout, or the scaler moving the count away from N, ends it early.

With autoscaling registered, N must lie within the scalable target's MIN..MAX: a count outside
would be undone by the scaler, so it is refused with a hint rather than silently adjusted.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from dashscale.aws import translated
from dashscale.context import Context
from dashscale.errors import AwsError, ConfigError, DashscaleError, WaitTimeout
from dashscale.steps.autoscaling import find_autoscaling
from dashscale.steps.deployment import DEPLOYMENT_POLL_SECONDS, explain_failure
from dashscale.steps.service import find_service, primary_deployment

SCALE_POLL_SECONDS = DEPLOYMENT_POLL_SECONDS


# The IAM actions of `dashscale scale` (dashscale/policy.py).
SCALE_CALLS = ("ecs:DescribeServices", "ecs:UpdateService")


def _describe(ctx: Context, name: str | None = None) -> dict[str, Any]:
    name = name or ctx.names.service
    services = ctx.client("ecs").describe_services(cluster=ctx.names.cluster, services=[name])[
        "services"
    ]
    if not services or services[0].get("status") != "ACTIVE":
        raise AwsError(f"ECS service {name} disappeared while scaling")
    return dict(services[0])


def scale(ctx: Context, count: int, wait: bool = True) -> dict[str, Any]:
    """Sets the desired count to `count` (only when it differs) and, with `wait`, waits until
    that many tasks run. Returns the service as last described."""
    name = ctx.names.service
    service = find_service(ctx)
    if service is None:
        raise AwsError(
            f"ECS service {name} does not exist, so there is nothing to scale",
            "run `dashscale up` first",
        )
    scaling = find_autoscaling(ctx)
    if scaling is not None and not scaling.min_count <= count <= scaling.max_count:
        raise ConfigError(
            f"{count} tasks is outside the autoscaling range {scaling.min_count}-"
            f"{scaling.max_count} of {name}",
            f"choose a count from {scaling.min_count} to {scaling.max_count}, or change "
            "MIN_COUNT and MAX_COUNT in .env and run `dashscale up`",
        )
    service = _set_desired_count(ctx, name, service, count)
    if scaling is not None:
        ctx.ui.info(
            f"autoscaling ({scaling.min_count}-{scaling.max_count} tasks) may change this count "
            "as the load changes"
        )
    elif count != ctx.config.desired_count:
        ctx.ui.warn(
            f"the next `dashscale up` sets the count back to DESIRED_COUNT="
            f"{ctx.config.desired_count}; set DESIRED_COUNT={count} in .env to keep it"
        )
    if not wait:
        ctx.ui.info("not waiting for the tasks (--no-wait); `dashscale status` shows them")
        return service
    return wait_for_count(ctx, count)


def wait_for_count(ctx: Context, count: int, name: str | None = None) -> dict[str, Any]:
    """Waits until `count` tasks of APP-service (or of `name`) run and none is pending, bounded
    by ctx.timeout."""
    workers = name is not None
    name = name or ctx.names.service
    progress: dict[str, str] = {}
    ended: dict[str, str] = {}

    def check() -> dict[str, Any] | None:
        with translated(f"following the scaling of {name}"):
            service = _describe(ctx, name)
        running = int(service.get("runningCount", 0))
        pending = int(service.get("pendingCount", 0))
        desired = int(service.get("desiredCount", 0))
        primary = primary_deployment(service) or {}
        others = [d for d in service.get("deployments", []) if d.get("id") != primary.get("id")]
        progress["text"] = f"scaling {name}: {running}/{count} running, {pending} pending"
        if primary.get("rolloutState") == "FAILED":
            ended["failure"] = primary.get("rolloutStateReason") or "rollout FAILED"
            return service
        if desired != count:
            ended["moved"] = f"the desired count is now {desired} (autoscaling or another run)"
            return service
        if running == count and pending == 0 and not others:
            return service
        return None

    try:
        service = ctx.wait(
            f"scaling {name} to {count}",
            f"{count} running tasks of {name}",
            check,
            SCALE_POLL_SECONDS,
            progress=lambda: progress.get("text", f"scaling {name}"),
            hint="ECS keeps starting tasks: see why above, check again with `dashscale status`",
        )
    except WaitTimeout:
        ctx.ui.info(progress.get("text", f"scaling {name}: no answer yet"))
        if not workers:
            _explain(ctx)
        raise
    if "failure" in ended:
        if not workers:
            _explain(ctx)
        raise AwsError(
            f"scaling {name} failed: {ended['failure']}",
            "fix the cause shown above (`dashscale logs --since 30m`), then re-run",
        )
    if "moved" in ended:
        ctx.ui.warn(f"stopped waiting: {ended['moved']}")
        return service
    ctx.ui.resource("ECS service", name, "passed", f"{count} running")
    return service


def _explain(ctx: Context) -> None:
    """Why the tasks did not come up, as for a deploy: events, stopped tasks, their last log
    lines, target health."""
    try:
        service = _describe(ctx)
    except (DashscaleError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return  # the explanation must never hide the original error
    primary = primary_deployment(service) or {}
    groups = [lb.get("targetGroupArn") for lb in service.get("loadBalancers", [])]
    explain_failure(ctx, str(primary.get("id", "?")), str(groups[0]) if groups else "", service)


def _set_desired_count(
    ctx: Context, name: str, service: dict[str, Any], count: int
) -> dict[str, Any]:
    """The service's desired count set to `count` (no call when it is already); the service as
    last described."""
    before = int(service.get("desiredCount", 0))
    if before == count:
        ctx.ui.resource("ECS service", name, "found", f"desired count already {count}")
        return service
    with translated(f"setting the desired count of {name}"):
        service = ctx.client("ecs").update_service(
            cluster=ctx.names.cluster, service=name, desiredCount=count
        )["service"]
    ctx.ui.resource("ECS service", name, "updated", f"desired count {before} -> {count}")
    return dict(service)


def scale_workers(ctx: Context, count: int, wait: bool = True) -> dict[str, Any]:
    """Sets the desired count of the workers (APP-worker) to `count` and, with `wait`, waits
    until that many run. The next `up` sets WORKERS again."""
    from dashscale.steps.worker import find_workers

    name = ctx.names.worker_service
    service = find_workers(ctx)
    if service is None:
        raise AwsError(
            f"ECS service {name} does not exist, so there are no workers to scale",
            "set CACHE=redis and WORKERS=N in .env, then run `dashscale up`",
        )
    service = _set_desired_count(ctx, name, service, count)
    if count != ctx.config.workers:
        ctx.ui.warn(
            f"the next `dashscale up` sets the workers back to WORKERS={ctx.config.workers}; "
            f"set WORKERS={count} in .env to keep it"
        )
    if not wait:
        return service
    return wait_for_count(ctx, count, name)

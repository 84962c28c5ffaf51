"""Autoscaling of the service: a scalable target and target-tracking policies.

With MIN_COUNT and MAX_COUNT set, Application Auto Scaling owns the service's desired count
between them: `APP-cpu` keeps the tasks' average CPU at CPU_TARGET percent, `APP-requests` keeps
each task at REQUESTS_PER_TARGET requests per minute (the load balancer's count). Without them,
whatever an earlier run registered is removed.

Application Auto Scaling has no names or tags of its own that dashscale relies on: the scalable
target is the one of this app's ECS service (resource id `service/APP-cluster/APP-service`, whose
tag is checked), and the policies are ours by their names. Removing deregisters the target, which
in AWS also removes any other policy on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from dashscale.aws import error_code, translated
from dashscale.context import Context
from dashscale.errors import AwsError, NotOwnedError
from dashscale.plan import NEW, change
from dashscale.steps.alb import find_load_balancer, find_service, find_target_group
from dashscale.steps.network import Outcome, report

NAMESPACE = "ecs"
DIMENSION = "ecs:service:DesiredCount"
CPU_METRIC = "ECSServiceAverageCPUUtilization"
REQUESTS_METRIC = "ALBRequestCountPerTarget"
SCALE_OUT_COOLDOWN = 60  # seconds: add tasks quickly when load rises
SCALE_IN_COOLDOWN = 300  # seconds: remove them slowly (AWS's default)
NOT_FOUND = "ObjectNotFoundException"  # AWS's answer for a policy or target that is not there


@dataclass(frozen=True)
class Autoscaling:
    """The service's scalable target and the policies attached to it, as AWS describes them."""

    target: dict[str, Any]
    policies: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def min_count(self) -> int:
        return int(self.target.get("MinCapacity", 0))

    @property
    def max_count(self) -> int:
        return int(self.target.get("MaxCapacity", 0))


def resource_id(ctx: Context) -> str:
    return f"service/{ctx.names.cluster}/{ctx.names.service}"


def cpu_policy_name(ctx: Context) -> str:
    return f"{ctx.names.app}-cpu"


def requests_policy_name(ctx: Context) -> str:
    return f"{ctx.names.app}-requests"


def our_policy_names(ctx: Context) -> tuple[str, str]:
    return cpu_policy_name(ctx), requests_policy_name(ctx)


def describe_policy(policy: dict[str, Any]) -> str:
    """A policy in words, such as `CPU 60 %` or `1000 requests/min per task`."""
    config = policy.get("TargetTrackingScalingPolicyConfiguration") or {}
    metric = (config.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
    value = config.get("TargetValue")
    shown = f"{float(value):g}" if value is not None else "?"
    if metric == CPU_METRIC:
        return f"CPU {shown} %"
    if metric == REQUESTS_METRIC:
        return f"{shown} requests/min per task"
    return f"{policy.get('PolicyType', 'policy')} {metric or ''}".strip()


# --- finder (no changes) -------------------------------------------------------------------------


def find_autoscaling(ctx: Context) -> Autoscaling | None:
    """The scalable target of APP-service and all its policies; None when there is none."""
    client = ctx.client("application-autoscaling")
    rid = resource_id(ctx)
    with translated(f"looking up the autoscaling of {ctx.names.service}"):
        targets = client.describe_scalable_targets(
            ServiceNamespace=NAMESPACE, ResourceIds=[rid], ScalableDimension=DIMENSION
        ).get("ScalableTargets", [])
        target = next((t for t in targets if t.get("ResourceId") == rid), None)
        if target is None:
            return None
        policies: list[dict[str, Any]] = []
        pages = client.get_paginator("describe_scaling_policies").paginate(
            ServiceNamespace=NAMESPACE, ResourceId=rid, ScalableDimension=DIMENSION
        )
        for page in pages:
            policies += [p for p in page.get("ScalingPolicies", []) if p.get("ResourceId") == rid]
    return Autoscaling(dict(target), tuple(dict(p) for p in policies))


# --- desired state -------------------------------------------------------------------------------


def resource_label(load_balancer_arn: str, target_group_arn: str) -> str:
    """ALBRequestCountPerTarget's label: app/NAME/ID/targetgroup/NAME/ID."""
    balancer = load_balancer_arn.split(":loadbalancer/", 1)[-1]
    group = target_group_arn.split(":", 5)[-1]
    return f"{balancer}/{group}"


def desired_policies(ctx: Context) -> dict[str, dict[str, Any]]:
    """Policy name -> TargetTrackingScalingPolicyConfiguration for what the configuration asks."""
    config = ctx.config
    wanted: dict[str, dict[str, Any]] = {}
    cooldowns = {"ScaleOutCooldown": SCALE_OUT_COOLDOWN, "ScaleInCooldown": SCALE_IN_COOLDOWN}
    if config.cpu_target is not None:
        wanted[cpu_policy_name(ctx)] = {
            "TargetValue": float(config.cpu_target),
            "PredefinedMetricSpecification": {"PredefinedMetricType": CPU_METRIC},
            "DisableScaleIn": False,
            **cooldowns,
        }
    if config.requests_per_target is not None:
        balancer, group = find_load_balancer(ctx), find_target_group(ctx)
        if (balancer is None or group is None) and ctx.dry_run:
            balancer, group = {"LoadBalancerArn": NEW}, {"TargetGroupArn": NEW}
        if balancer is None or group is None:
            raise AwsError(
                "REQUESTS_PER_TARGET needs the load balancer and target group, which are missing",
                "run `dashscale up` (or `dashscale alb`) to create them",
            )
        label = resource_label(balancer["LoadBalancerArn"], group["TargetGroupArn"])
        wanted[requests_policy_name(ctx)] = {
            "TargetValue": float(config.requests_per_target),
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": REQUESTS_METRIC,
                "ResourceLabel": label,
            },
            "DisableScaleIn": False,
            **cooldowns,
        }
    return wanted


def _policy_view(configuration: dict[str, Any] | None) -> tuple[Any, ...]:
    config = configuration or {}
    metric = config.get("PredefinedMetricSpecification") or {}
    return (
        metric.get("PredefinedMetricType"),
        metric.get("ResourceLabel"),
        float(config.get("TargetValue", 0.0)),
        config.get("ScaleOutCooldown"),
        config.get("ScaleInCooldown"),
        bool(config.get("DisableScaleIn", False)),
    )


# --- the step ------------------------------------------------------------------------------------


def ensure_autoscaling(ctx: Context, outcomes: list[Outcome]) -> None:
    """Registers the service's scalable target and our policies when autoscaling is on (only
    what differs); removes them when it is off. No changing call when nothing differs."""
    current = find_autoscaling(ctx)
    if ctx.dry_run:
        _plan_autoscaling(ctx, current, outcomes)
        return
    if not ctx.config.autoscaling:
        if current is not None:
            remove(ctx, current, outcomes, "autoscaling off: the service keeps DESIRED_COUNT")
        return
    low, high = ctx.config.min_count, ctx.config.max_count
    assert low is not None and high is not None
    if find_service(ctx) is None:
        raise AwsError(
            f"ECS service {ctx.names.service} does not exist, so it cannot be autoscaled",
            "run `dashscale up` to create it",
        )
    client = ctx.client("application-autoscaling")
    rid = resource_id(ctx)
    with translated(f"setting up the autoscaling of {ctx.names.service}"):
        if current is None or (current.min_count, current.max_count) != (low, high):
            client.register_scalable_target(
                ServiceNamespace=NAMESPACE,
                ResourceId=rid,
                ScalableDimension=DIMENSION,
                MinCapacity=low,
                MaxCapacity=high,
            )
            state = "created" if current is None else "updated"
        else:
            state = "found"
        report(ctx, outcomes, "scalable target", ctx.names.service, state, f"{low}-{high} tasks")

        existing = {p["PolicyName"]: p for p in (current.policies if current else ())}
        wanted = desired_policies(ctx)
        for name, configuration in wanted.items():
            policy = existing.get(name)
            detail = describe_policy({"TargetTrackingScalingPolicyConfiguration": configuration})
            have = (policy or {}).get("TargetTrackingScalingPolicyConfiguration")
            if policy is not None and _policy_view(have) == _policy_view(configuration):
                report(ctx, outcomes, "scaling policy", name, "found", detail)
                continue
            client.put_scaling_policy(
                PolicyName=name,
                ServiceNamespace=NAMESPACE,
                ResourceId=rid,
                ScalableDimension=DIMENSION,
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration=configuration,
            )
            state = "created" if policy is None else "updated"
            report(ctx, outcomes, "scaling policy", name, state, detail)
        for name in our_policy_names(ctx):
            if name in existing and name not in wanted and _delete_policy(ctx, name):
                report(ctx, outcomes, "scaling policy", name, "deleted", "no longer configured")


def _plan_autoscaling(ctx: Context, current: Autoscaling | None, outcomes: list[Outcome]) -> None:
    """What ensure_autoscaling would do, with the differing fields; changes nothing."""
    existing = {p["PolicyName"]: p for p in (current.policies if current else ())}
    if not ctx.config.autoscaling:
        if current is not None:
            for name in our_policy_names(ctx):
                if name in existing:
                    report(ctx, outcomes, "scaling policy", name, "deleted", "autoscaling off")
            report(
                ctx, outcomes, "scalable target", ctx.names.service, "deleted", "autoscaling off"
            )
        return
    low, high = ctx.config.min_count, ctx.config.max_count
    if current is None:
        report(
            ctx, outcomes, "scalable target", ctx.names.service, "created", f"{low}-{high} tasks"
        )
    elif (current.min_count, current.max_count) != (low, high):
        note = change("tasks", f"{current.min_count}-{current.max_count}", f"{low}-{high}")
        report(ctx, outcomes, "scalable target", ctx.names.service, "updated", note)
    else:
        report(ctx, outcomes, "scalable target", ctx.names.service, "found", f"{low}-{high} tasks")
    for name, configuration in desired_policies(ctx).items():
        policy = existing.get(name)
        detail = describe_policy({"TargetTrackingScalingPolicyConfiguration": configuration})
        if policy is None:
            report(ctx, outcomes, "scaling policy", name, "created", detail)
            continue
        have = policy.get("TargetTrackingScalingPolicyConfiguration")
        if _policy_view(have) == _policy_view(configuration):
            report(ctx, outcomes, "scaling policy", name, "found", detail)
        else:
            report(
                ctx,
                outcomes,
                "scaling policy",
                name,
                "updated",
                change("target", describe_policy(policy), detail),
            )
    wanted = desired_policies(ctx)
    for name in our_policy_names(ctx):
        if name in existing and name not in wanted:
            report(ctx, outcomes, "scaling policy", name, "deleted", "no longer configured")


def _delete_policy(ctx: Context, name: str) -> bool:
    """Deletes one of our policies; False when it was already gone."""
    client = ctx.client("application-autoscaling")
    try:
        client.delete_scaling_policy(
            PolicyName=name,
            ServiceNamespace=NAMESPACE,
            ResourceId=resource_id(ctx),
            ScalableDimension=DIMENSION,
        )
    except botocore.exceptions.ClientError as error:
        if error_code(error) != NOT_FOUND:
            raise
        return False  # gone already
    return True


def remove(ctx: Context, current: Autoscaling, outcomes: list[Outcome], why: str = "") -> None:
    """Deletes our policies, then deregisters the service's scalable target."""
    client = ctx.client("application-autoscaling")
    with translated(f"removing the autoscaling of {ctx.names.service}"):
        present = {p.get("PolicyName") for p in current.policies}
        for name in our_policy_names(ctx):
            if name in present and _delete_policy(ctx, name):
                report(ctx, outcomes, "scaling policy", name, "deleted")
        try:
            client.deregister_scalable_target(
                ServiceNamespace=NAMESPACE, ResourceId=resource_id(ctx), ScalableDimension=DIMENSION
            )
        except botocore.exceptions.ClientError as error:
            if error_code(error) != NOT_FOUND:
                raise
            return
    report(ctx, outcomes, "scalable target", ctx.names.service, "deleted", why)


def remove_autoscaling(ctx: Context) -> list[Outcome]:
    """For teardown: our policies and the service's scalable target, before the service goes.

    A service under our name that is not this app's keeps its autoscaling. Nothing to remove is
    not an error (a second teardown)."""
    outcomes: list[Outcome] = []
    try:
        find_service(ctx)
    except NotOwnedError:
        ctx.ui.resource("scalable target", ctx.names.service, "kept", "the service is not ours")
        return outcomes
    current = find_autoscaling(ctx)
    if current is not None:
        remove(ctx, current, outcomes)
    return outcomes

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

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from dashscale.aws import error_code, translated
from dashscale.context import Context
from dashscale.model import (
    CREATE,
    DELETE,
    FOREIGN,
    NEW,
    UPDATE,
    Change,
    Item,
    Permissions,
    Resource,
    Survey,
    absent,
    compare,
    create,
)

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


def desired_policies(
    ctx: Context, load_balancer_arn: str, target_group_arn: str
) -> dict[str, dict[str, Any]]:
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
        label = resource_label(load_balancer_arn, target_group_arn)
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


# --- the resources -------------------------------------------------------------------------------


def scaling_permissions(ctx: Context, permissions: Permissions) -> Permissions:
    """With autoscaling off, `up` registers and puts nothing (the policy is for this
    configuration: turning autoscaling on or off is a new `dashscale policy`)."""
    if ctx.config.autoscaling:
        return permissions
    return dataclasses.replace(permissions, apply=())


class ScalableTarget(Resource):
    """The service's scalable target between MIN_COUNT and MAX_COUNT; removed (with our
    policies) when autoscaling is off."""

    calls = {
        CREATE: ("application-autoscaling:RegisterScalableTarget",),
        UPDATE: ("application-autoscaling:RegisterScalableTarget",),
        DELETE: (
            "application-autoscaling:DeleteScalingPolicy",
            "application-autoscaling:DeregisterScalableTarget",
        ),
    }
    find_calls = ("application-autoscaling:DescribeScalableTargets",)
    survey_calls = find_calls
    delete_calls = calls[DELETE]

    def permissions(self, ctx: Context) -> Permissions:
        return scaling_permissions(ctx, super().permissions(ctx))

    key = kind = "scalable target"
    needs = ("ECS service",)
    named = "service"

    finder = staticmethod(find_autoscaling)

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        name = self.name(ctx)
        if not ctx.config.autoscaling:
            if current is None:
                return absent(self.kind, name)
            return Change(self.kind, name, DELETE, detail="autoscaling off")
        low, high = ctx.config.min_count, ctx.config.max_count
        wanted = f"{low}-{high} tasks"
        if current is None:
            return create(self.kind, name, wanted)
        differing = {}
        if (current.min_count, current.max_count) != (low, high):
            differing["tasks"] = (f"{current.min_count}-{current.max_count}", wanted.split()[0])
        return compare(self.kind, name, differing, wanted)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> None:
        if change.action == DELETE:
            remove(ctx, current, "autoscaling off: the service keeps DESIRED_COUNT", quiet=True)
            return
        with translated(f"setting up the autoscaling of {ctx.names.service}"):
            ctx.client("application-autoscaling").register_scalable_target(
                ServiceNamespace=NAMESPACE,
                ResourceId=resource_id(ctx),
                ScalableDimension=DIMENSION,
                MinCapacity=ctx.config.min_count,
                MaxCapacity=ctx.config.max_count,
            )

    def ref(self, ctx: Context, current: Any, change: Change) -> None:
        return None

    surveys_after = ("ECS service",)

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        """The target has no tag of its own: it is this app's when the service under this
        app's names is not someone else's."""
        current = find_autoscaling(ctx)
        if current is None:
            return []
        target_id = resource_id(ctx)
        if any(item.action == FOREIGN for item in survey.of("ECS service")):
            return [
                Item(
                    self.kind, target_id, FOREIGN, f"scales {ctx.names.service}, which is not ours"
                )
            ]
        target = current.target
        counts = f"{target.get('MinCapacity')}-{target.get('MaxCapacity')}"
        reason = f"{counts} tasks; its policies go with it"
        return [Item(self.kind, target_id, DELETE, reason, {"autoscaling": current})]

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        current: Autoscaling = item.data["autoscaling"]
        return ctx.names.service, f"{current.min_count}-{current.max_count} tasks"

    def when_absent(self, ctx: Context, survey: Survey) -> tuple[str, str, str] | None:
        """Shown for a service of the app's only: off (not configured) or missing."""
        if survey.of(self.key) or not any(i.action != FOREIGN for i in survey.of("ECS service")):
            return None
        if not ctx.config.autoscaling:
            return ctx.names.service, "off", "MIN_COUNT and MAX_COUNT unset"
        return ctx.names.service, "missing", ""

    def delete(self, ctx: Context, item: Item) -> str:
        """First, so the scaler cannot undo the service's scaling to zero."""
        remove(ctx, item.data["autoscaling"])
        return "with its scaling policies"


class ScalingPolicy(Resource):
    """One of our target-tracking policies (APP-cpu, APP-requests): put when configured,
    deleted when no longer."""

    find_calls = ("application-autoscaling:DescribeScalingPolicies",)
    survey_calls = find_calls

    def permissions(self, ctx: Context) -> Permissions:
        return scaling_permissions(ctx, super().permissions(ctx))

    calls = {
        CREATE: ("application-autoscaling:PutScalingPolicy",),
        UPDATE: ("application-autoscaling:PutScalingPolicy",),
        DELETE: ("application-autoscaling:DeleteScalingPolicy",),
    }
    kind = "scaling policy"
    reads = (ScalableTarget.key, "load balancer", "target group")
    needs = (ScalableTarget.key, "load balancer", "target group")

    def __init__(self, requests: bool) -> None:
        self.requests = requests
        self.key = "requests policy" if requests else "cpu policy"

    def name(self, ctx: Context) -> str:
        return requests_policy_name(ctx) if self.requests else cpu_policy_name(ctx)

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        current: Autoscaling | None = found[ScalableTarget.key]
        policies = current.policies if current else ()
        return next((p for p in policies if p.get("PolicyName") == self.name(ctx)), None)

    def wanted(self, ctx: Context, refs: Mapping[str, Any]) -> dict[str, Any] | None:
        if not ctx.config.autoscaling:
            return None
        balancer = refs.get("load balancer")
        return desired_policies(
            ctx, getattr(balancer, "arn", NEW), refs.get("target group") or NEW
        ).get(self.name(ctx))

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        name = self.name(ctx)
        configuration = self.wanted(ctx, refs)
        if configuration is None:
            if current is None:
                return absent(self.kind, name)
            if not ctx.config.autoscaling:  # deregistering the target deletes it
                return Change(self.kind, name, DELETE, detail="goes with the scalable target")
            return Change(self.kind, name, DELETE, detail="no longer configured")
        detail = describe_policy({"TargetTrackingScalingPolicyConfiguration": configuration})
        if current is None:
            return create(self.kind, name, detail)
        have = current.get("TargetTrackingScalingPolicyConfiguration")
        if _policy_view(have) == _policy_view(configuration):
            return compare(self.kind, name, {}, detail)
        return compare(self.kind, name, {"target": (describe_policy(current), detail)}, detail)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> None:
        if change.action == DELETE:
            if ctx.config.autoscaling:  # otherwise it went with the scalable target
                with translated(f"removing the autoscaling of {ctx.names.service}"):
                    _delete_policy(ctx, self.name(ctx))
            return
        with translated(f"setting up the autoscaling of {ctx.names.service}"):
            ctx.client("application-autoscaling").put_scaling_policy(
                PolicyName=self.name(ctx),
                ServiceNamespace=NAMESPACE,
                ResourceId=resource_id(ctx),
                ScalableDimension=DIMENSION,
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration=self.wanted(ctx, refs),
            )

    def ref(self, ctx: Context, current: Any, change: Change) -> None:
        return None


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


def remove(ctx: Context, current: Autoscaling, why: str = "", quiet: bool = False) -> None:
    """Deletes our policies, then deregisters the service's scalable target."""
    client = ctx.client("application-autoscaling")
    with translated(f"removing the autoscaling of {ctx.names.service}"):
        present = {p.get("PolicyName") for p in current.policies}
        for name in our_policy_names(ctx):
            if name in present and _delete_policy(ctx, name) and not quiet:
                ctx.ui.resource("scaling policy", name, "deleted")
        try:
            client.deregister_scalable_target(
                ServiceNamespace=NAMESPACE, ResourceId=resource_id(ctx), ScalableDimension=DIMENSION
            )
        except botocore.exceptions.ClientError as error:
            if error_code(error) != NOT_FOUND:
                raise
            return
    ctx.ui.detail(
        f"deregistered the scalable target of {ctx.names.service}{': ' + why if why else ''}"
    )


RESOURCES: tuple[Resource, ...] = (
    ScalableTarget(),
    ScalingPolicy(requests=False),
    ScalingPolicy(requests=True),
)

"""Autoscaling of the service: a scalable target and target-tracking policies.

With MIN_COUNT and MAX_COUNT set, Application Auto Scaling owns the service's desired count
between them: `APP-cpu` keeps the tasks' average CPU at CPU_TARGET percent, `APP-requests` keeps
each task at REQUESTS_PER_TARGET requests per minute (the load balancer's count). Without them,
whatever an earlier run registered is removed.

With SCHEDULE set (office hours), the scalable target exists even without MIN_COUNT and MAX_COUNT
(min = max = DESIRED_COUNT inside the hours), and two scheduled actions with the schedule's
`Timezone` move it: `APP-wake` at the start back to the configured count (or the autoscaling
range), `APP-sleep` at the end to zero. `dashscale wake --for` adds a one-time `APP-rest`.
Unset, the actions go (and the target too, when autoscaling is off).

Application Auto Scaling has no names or tags of its own that dashscale relies on: the scalable
target is the one of this app's ECS service (resource id `service/APP-cluster/APP-service`, whose
tag is checked), and the policies are ours by their names. Removing deregisters the target, which
in AWS also removes any other policy on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import botocore.exceptions

from dashscale.aws import error_code, translated
from dashscale.config import Config
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
    actions: tuple[dict[str, Any], ...] = field(default_factory=tuple)  # scheduled actions

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


WAKE, SLEEP, REST = "wake", "sleep", "rest"  # the scheduled actions: hours start, end, wake --for


def action_name(ctx: Context, role: str) -> str:
    return f"{ctx.names.app}-{role}"


def our_action_names(ctx: Context) -> tuple[str, ...]:
    return tuple(action_name(ctx, role) for role in (WAKE, SLEEP, REST))


def owns_count(config: Config) -> bool:
    """True when Application Auto Scaling sets the service's desired count: autoscaling, or
    office hours (whose actions set it to zero and back)."""
    return config.autoscaling or config.schedule is not None


def awake_range(config: Config) -> tuple[int, int]:
    """The target's min and max while the app is awake: the autoscaling range, or
    DESIRED_COUNT for both."""
    if config.autoscaling:
        return int(config.min_count or 0), int(config.max_count or 0)
    return config.desired_count, config.desired_count


def now(ctx: Context) -> datetime:
    return datetime.fromtimestamp(ctx.clock.wall(), timezone.utc)


def outside_hours(ctx: Context) -> bool:
    """True with a SCHEDULE whose hours do not include this moment."""
    hours = ctx.config.schedule
    return hours is not None and not hours.awake_at(now(ctx))


def asleep(config: Config, scaling: Autoscaling | None) -> bool:
    """True when the schedule has put the app to sleep (its target at 0 tasks)."""
    return config.schedule is not None and scaling is not None and scaling.max_count == 0


def wanted_range(ctx: Context, current: Autoscaling | None) -> tuple[int, int]:
    """The target's range `up` asks for: the awake range, except outside the hours when the
    app sleeps (or is new): then 0, which the wake action lifts at the next start. A target
    woken by `dashscale wake` keeps its range."""
    if outside_hours(ctx) and (current is None or current.max_count == 0):
        return 0, 0
    return awake_range(ctx.config)


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
        actions = client.describe_scheduled_actions(
            ServiceNamespace=NAMESPACE,
            ResourceId=rid,
            ScalableDimension=DIMENSION,
            ScheduledActionNames=list(our_action_names(ctx)),
        ).get("ScheduledActions", [])
    ours = tuple(dict(a) for a in actions if a.get("ResourceId") == rid)
    return Autoscaling(dict(target), tuple(dict(p) for p in policies), ours)


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
    find_calls = (
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DescribeScheduledActions",
    )
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
        if not owns_count(ctx.config):
            if current is None:
                return absent(self.kind, name)
            return Change(self.kind, name, DELETE, detail="autoscaling off, no SCHEDULE")
        low, high = wanted_range(ctx, current)
        wanted = f"{low}-{high} tasks"
        if (low, high) == (0, 0):
            wanted += f" (asleep: {ctx.config.schedule})"
        if current is None:
            return create(self.kind, name, wanted)
        differing = {}
        if (current.min_count, current.max_count) != (low, high):
            differing["tasks"] = (f"{current.min_count}-{current.max_count}", f"{low}-{high}")
        return compare(self.kind, name, differing, wanted)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> None:
        if change.action == DELETE:
            remove(ctx, current, "autoscaling off: the service keeps DESIRED_COUNT", quiet=True)
            return
        register(ctx, *wanted_range(ctx, current))

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
        if not owns_count(ctx.config):
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
            if not owns_count(ctx.config):  # deregistering the target deletes it
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
            if owns_count(ctx.config):  # otherwise it went with the scalable target
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


def register(ctx: Context, low: int, high: int) -> None:
    """Registers (or changes) the service's scalable target with this range."""
    with translated(f"setting up the autoscaling of {ctx.names.service}"):
        ctx.client("application-autoscaling").register_scalable_target(
            ServiceNamespace=NAMESPACE,
            ResourceId=resource_id(ctx),
            ScalableDimension=DIMENSION,
            MinCapacity=low,
            MaxCapacity=high,
        )


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
        # AWS deletes a target's scheduled actions with it; deleted here all the same, so that
        # none can outlive it
        for action in current.actions:
            if delete_action(ctx, str(action.get("ScheduledActionName"))) and not quiet:
                ctx.ui.resource("scheduled action", action["ScheduledActionName"], "deleted")
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


def delete_action(ctx: Context, name: str) -> bool:
    """Deletes one of our scheduled actions; False when it was already gone."""
    try:
        ctx.client("application-autoscaling").delete_scheduled_action(
            ServiceNamespace=NAMESPACE,
            ScheduledActionName=name,
            ResourceId=resource_id(ctx),
            ScalableDimension=DIMENSION,
        )
    except botocore.exceptions.ClientError as error:
        if error_code(error) != NOT_FOUND:
            raise
        return False
    return True


def put_action(ctx: Context, name: str, wanted: Mapping[str, Any]) -> None:
    with translated(f"setting up the office hours of {ctx.names.service}"):
        ctx.client("application-autoscaling").put_scheduled_action(
            ServiceNamespace=NAMESPACE,
            ScheduledActionName=name,
            ResourceId=resource_id(ctx),
            ScalableDimension=DIMENSION,
            **wanted,
        )


def describe_action(action: Mapping[str, Any]) -> str:
    """A scheduled action in words: `cron(0 8 ? * MON,FRI *) Europe/Berlin: 3-3 tasks`."""
    counts = action.get("ScalableTargetAction") or {}
    when = f"{action.get('Schedule')} {action.get('Timezone') or 'UTC'}"
    return f"{when}: {counts.get('MinCapacity')}-{counts.get('MaxCapacity')} tasks"


def _action_view(action: Mapping[str, Any] | None) -> tuple[Any, ...]:
    action = action or {}
    counts = action.get("ScalableTargetAction") or {}
    return (
        action.get("Schedule"),
        action.get("Timezone") or "UTC",
        counts.get("MinCapacity"),
        counts.get("MaxCapacity"),
    )


class ScheduledAction(Resource):
    """One of the office hours' scheduled actions: `APP-wake` at the start of the hours,
    `APP-sleep` at the end, and `APP-rest`, the one-time end that `dashscale wake --for` puts
    (`up` keeps it while SCHEDULE is set and never makes it)."""

    calls = {
        CREATE: ("application-autoscaling:PutScheduledAction",),
        UPDATE: ("application-autoscaling:PutScheduledAction",),
        DELETE: ("application-autoscaling:DeleteScheduledAction",),
    }
    kind = "scheduled action"
    delete_calls = ("application-autoscaling:DeleteScheduledAction",)
    reads = (ScalableTarget.key,)
    needs = (ScalableTarget.key,)
    surveys_after = (ScalableTarget.key,)

    def __init__(self, role: str) -> None:
        self.role = role
        self.key = f"{role} action"

    def name(self, ctx: Context) -> str:
        return action_name(ctx, self.role)

    def configured(self, ctx: Context) -> bool:
        return ctx.config.schedule is not None

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        current: Autoscaling | None = found[ScalableTarget.key]
        actions = current.actions if current else ()
        return next((a for a in actions if a.get("ScheduledActionName") == self.name(ctx)), None)

    def wanted(self, ctx: Context) -> dict[str, Any] | None:
        hours = ctx.config.schedule
        if hours is None or self.role == REST:
            return None
        low, high = awake_range(ctx.config) if self.role == WAKE else (0, 0)
        return {
            "Schedule": hours.start_cron if self.role == WAKE else hours.end_cron,
            "Timezone": hours.timezone,
            "ScalableTargetAction": {"MinCapacity": low, "MaxCapacity": high},
        }

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        name = self.name(ctx)
        wanted = self.wanted(ctx)
        if wanted is None:
            if current is None:
                return absent(self.kind, name)
            if self.role == REST and ctx.config.schedule is not None:
                return compare(self.kind, name, {}, f"wake --for: {describe_action(current)}")
            return Change(self.kind, name, DELETE, detail="SCHEDULE unset")
        detail = describe_action(wanted)
        if current is None:
            return create(self.kind, name, detail)
        if _action_view(current) == _action_view(wanted):
            return compare(self.kind, name, {}, detail)
        return compare(self.kind, name, {"action": (describe_action(current), detail)}, detail)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> None:
        if change.action == DELETE:
            if owns_count(ctx.config):  # otherwise it went with the scalable target
                with translated(f"removing the office hours of {ctx.names.service}"):
                    delete_action(ctx, self.name(ctx))
            return
        wanted = self.wanted(ctx)
        assert wanted is not None, "only a configured action is created or updated"
        put_action(ctx, self.name(ctx), wanted)

    def ref(self, ctx: Context, current: Any, change: Change) -> None:
        return None

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        """Found with the target (its survey reads the actions): deleted before it."""
        for item in survey.of(ScalableTarget.key):
            if item.action == FOREIGN:
                return []
            scaling: Autoscaling = item.data["autoscaling"]
            for action in scaling.actions:
                if action.get("ScheduledActionName") == self.name(ctx):
                    detail = describe_action(action)
                    return [Item(self.kind, self.name(ctx), DELETE, detail, {"resource": action})]
        return []

    def when_absent(self, ctx: Context, survey: Survey) -> tuple[str, str, str] | None:
        if survey.of(self.key) or self.wanted(ctx) is None:
            return None
        if not any(i.action != FOREIGN for i in survey.of("ECS service")):
            return None
        return self.name(ctx), "missing", "run `dashscale up`"

    def delete(self, ctx: Context, item: Item) -> str:
        return "" if delete_action(ctx, item.name) else "already gone"


RESOURCES: tuple[Resource, ...] = (
    ScalableTarget(),
    ScalingPolicy(requests=False),
    ScalingPolicy(requests=True),
    ScheduledAction(WAKE),
    ScheduledAction(SLEEP),
    ScheduledAction(REST),
)


def hours_view(ctx: Context, scaling: Autoscaling | None) -> dict[str, Any] | None:
    """The office hours as `status` shows them: the schedule, whether the app sleeps now, and
    when that changes (the next start, or the end of the hours or of a `wake --for`)."""
    hours = ctx.config.schedule
    if hours is None:
        return None
    moment = now(ctx)
    sleeping = asleep(ctx.config, scaling)
    actions = scaling.actions if scaling else ()
    rest_name = action_name(ctx, REST)
    rest = next((a for a in actions if a.get("ScheduledActionName") == rest_name), None)
    change = hours.next_start(moment) if sleeping else hours.next_end(moment)
    view: dict[str, Any] = {
        "schedule": str(hours),
        "asleep": sleeping,
        "inside_hours": hours.awake_at(moment),
        "woken": not sleeping and not hours.awake_at(moment) and scaling is not None,
        "until": change.isoformat(),
        "rest": (rest or {}).get("Schedule"),
        "actions": [
            {"name": a.get("ScheduledActionName"), "action": describe_action(a)} for a in actions
        ],
    }
    return view


def hours_line(view: Mapping[str, Any]) -> str:
    """One line for `status`: asleep until when, awake until when (woken, or in the hours)."""
    until = datetime.fromisoformat(view["until"]).strftime("%a %Y-%m-%d %H:%M")
    if view["asleep"]:
        return f"office hours {view['schedule']}: asleep until {until} (`dashscale wake` starts it)"
    state = "woken by `dashscale wake`" if view["woken"] else "awake"
    rest = f" or {view['rest']} (wake --for)" if view["rest"] else ""
    return f"office hours {view['schedule']}: {state} until {until}{rest}"

"""`dashscale wake [--for 2h]`: the app up now, outside its office hours (SCHEDULE).

The scalable target goes back to the awake range (min = max = DESIRED_COUNT, or MIN_COUNT to
MAX_COUNT) and the service to DESIRED_COUNT tasks (Application Auto Scaling would raise it to the
new minimum by itself, within a minute; set here so the wait starts at once). The next scheduled
end (`APP-sleep`) puts the app back to sleep; with `--for`, a one-time action `APP-rest` does so
at that time (or the scheduled end, whichever comes first).
"""

from __future__ import annotations

import zoneinfo
from datetime import timedelta, timezone

from dashscale.aws import translated
from dashscale.context import Context
from dashscale.errors import AwsError, ConfigError
from dashscale.steps import autoscaling, scale
from dashscale.steps.autoscaling import REST, SLEEP, action_name
from dashscale.steps.logs import parse_since
from dashscale.steps.service import find_service


def parse_duration(text: str) -> int:
    """`--for 2h` in seconds (the same units as `logs --since`)."""
    try:
        return parse_since(text)
    except ConfigError:
        raise ConfigError(
            f"--for {text!r} is invalid: expected a number and a unit (s, m, h or d), such as "
            "30m or 2h"
        ) from None


# The IAM actions of `dashscale wake` (dashscale/policy.py): the autoscaling reads, the range
# and the one-time end, the service's count and the wait for its tasks.
WAKE_CALLS = (
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:DescribeScalingPolicies",
    "application-autoscaling:DescribeScheduledActions",
    "application-autoscaling:RegisterScalableTarget",
    "application-autoscaling:PutScheduledAction",
    "application-autoscaling:DeleteScheduledAction",
    "ecs:DescribeServices",
    "ecs:UpdateService",
)


def wake(ctx: Context, duration: str | None = None, wait: bool = True) -> str:
    """Wakes the app; returns when it sleeps again, in words."""
    hours = ctx.config.schedule
    seconds = parse_duration(duration) if duration else None  # refused before any call
    if hours is None:
        raise ConfigError(
            f"SCHEDULE is not set: {ctx.names.app} runs all the time and never sleeps",
            "set SCHEDULE (office hours) in .env and run `dashscale up` to have it sleep",
        )
    if find_service(ctx) is None:
        raise AwsError(
            f"ECS service {ctx.names.service} does not exist, so there is nothing to wake",
            "run `dashscale up` first",
        )
    scaling = autoscaling.find_autoscaling(ctx)
    names = {str(a.get("ScheduledActionName")) for a in (scaling.actions if scaling else ())}
    if scaling is None or action_name(ctx, SLEEP) not in names:
        raise AwsError(
            f"the office hours of {ctx.names.service} are not set up yet",
            "run `dashscale up` first: it creates the scheduled actions of SCHEDULE",
        )
    moment = autoscaling.now(ctx)
    ends = hours.next_end(moment)
    low, high = autoscaling.awake_range(ctx.config)
    autoscaling.register(ctx, low, high)
    rest = action_name(ctx, REST)
    if seconds is not None and moment + timedelta(seconds=seconds) < ends:
        ends = moment + timedelta(seconds=seconds)
        at = ends.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        autoscaling.put_action(
            ctx,
            rest,
            {
                "Schedule": f"at({at})",
                "Timezone": "UTC",
                "ScalableTargetAction": {"MinCapacity": 0, "MaxCapacity": 0},
            },
        )
    elif rest in names:  # an earlier --for: this wake lasts until the scheduled end
        with translated(f"changing the office hours of {ctx.names.service}"):
            autoscaling.delete_action(ctx, rest)
    local = ends.astimezone(zoneinfo.ZoneInfo(hours.timezone))
    until = f"{local.strftime('%a %Y-%m-%d %H:%M')} {hours.timezone}"
    ctx.ui.resource("scalable target", ctx.names.service, "awake", f"{low}-{high} tasks")
    ctx.ui.info(f"{ctx.names.app} sleeps again at {until}")
    count = ctx.config.desired_count
    with translated(f"setting the desired count of {ctx.names.service}"):
        service = ctx.client("ecs").update_service(
            cluster=ctx.names.cluster, service=ctx.names.service, desiredCount=count
        )["service"]
    if wait:
        service = scale.wait_for_count(ctx, count)
    else:
        ctx.ui.info("not waiting for the tasks (--no-wait); `dashscale status` shows them")
    ctx.ui.result(f"{service.get('runningCount', 0)}/{count} running until {until}")
    return until

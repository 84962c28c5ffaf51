"""Office hours against moto's server: the scheduled actions `up` puts (with their time zone),
keeps, changes and removes; a deploy outside the hours that neither waits nor fails; what
`status` says of a sleeping app; the next start and end across a daylight-saving change.

"Now" is injected (dashscale.aws.wall_time), never waited for. moto never runs a scheduled
action: a test that needs the app asleep does what the sleep action does in AWS (the target's
range to 0, and with it the service's desired count)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from dashscale.schedule import parse
from tests.support.operating import IMAGE, on_answer, said, wide_terminal
from tests.support.recording import recording

__all__ = ["wide_terminal"]

RESOURCE = "service/demo-cluster/demo-service"
DIMENSION = "ecs:service:DesiredCount"
HOURS = "Mon-Fri 08:00-19:00 Europe/Berlin"
WITH_HOURS = ("--set", f"SCHEDULE={HOURS}")
# Monday 7 December 2026 in Berlin (UTC+1): 10:00 is inside the hours, 22:00 outside
MONDAY_MORNING = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
MONDAY_NIGHT = datetime(2026, 12, 7, 21, 0, tzinfo=timezone.utc)


def at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setattr("dashscale.aws.wall_time", lambda: moment.timestamp())


def actions(boto) -> dict[str, dict[str, Any]]:
    answer = boto("application-autoscaling").describe_scheduled_actions(ServiceNamespace="ecs")
    return {a["ScheduledActionName"]: a for a in answer["ScheduledActions"]}


def target_range(boto) -> tuple[int, int] | None:
    targets = boto("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")[
        "ScalableTargets"
    ]
    return (targets[0]["MinCapacity"], targets[0]["MaxCapacity"]) if targets else None


def service(boto) -> dict[str, Any]:
    (found,) = boto("ecs").describe_services(cluster="demo-cluster", services=["demo-service"])[
        "services"
    ]
    return found


def fall_asleep(boto) -> None:
    """What APP-sleep does in AWS at the end of the hours (moto never runs it)."""
    boto("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=RESOURCE,
        ScalableDimension=DIMENSION,
        MinCapacity=0,
        MaxCapacity=0,
    )
    boto("ecs").update_service(cluster="demo-cluster", service="demo-service", desiredCount=0)


def test_up_puts_the_wake_and_sleep_actions_with_the_time_zone_and_a_rerun_changes_nothing(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, MONDAY_MORNING)
    result = run("up", "--image", IMAGE, *WITH_HOURS)
    assert result.exit_code == 0, result.output
    found = actions(boto)
    assert set(found) == {"demo-wake", "demo-sleep"}
    wake, sleep = found["demo-wake"], found["demo-sleep"]
    assert wake["Schedule"] == "cron(0 8 ? * MON,TUE,WED,THU,FRI *)"
    assert sleep["Schedule"] == "cron(0 19 ? * MON,TUE,WED,THU,FRI *)"
    assert wake["Timezone"] == sleep["Timezone"] == "Europe/Berlin"
    assert (wake["ResourceId"], wake["ScalableDimension"]) == (RESOURCE, DIMENSION)
    # no MIN_COUNT/MAX_COUNT: the target exists all the same, min = max = DESIRED_COUNT (3)
    assert wake["ScalableTargetAction"] == {"MinCapacity": 3, "MaxCapacity": 3}
    assert sleep["ScalableTargetAction"] == {"MinCapacity": 0, "MaxCapacity": 0}
    assert target_range(boto) == (3, 3)
    assert service(boto)["desiredCount"] == 3
    err = said(result.stderr)
    assert "scheduled action demo-wake created" in err and "Europe/Berlin" in err

    with recording(aws) as calls:
        again = run("up", "--image", IMAGE, *WITH_HOURS)
    assert again.exit_code == 0, again.output
    assert calls.operations and calls.changing == []

    # the hours change: one action updated; autoscaling on: the wake action lifts the range
    changed = run(
        "up",
        "--image",
        IMAGE,
        "--set",
        "SCHEDULE=Mon-Sat 07:30-18:00 Europe/Berlin",
        "--set",
        "MIN_COUNT=2",
        "--set",
        "MAX_COUNT=6",
    )
    assert changed.exit_code == 0, changed.output
    found = actions(boto)
    assert found["demo-wake"]["Schedule"] == "cron(30 7 ? * MON,TUE,WED,THU,FRI,SAT *)"
    assert found["demo-wake"]["ScalableTargetAction"] == {"MinCapacity": 2, "MaxCapacity": 6}
    assert found["demo-sleep"]["Schedule"] == "cron(0 18 ? * MON,TUE,WED,THU,FRI,SAT *)"
    assert target_range(boto) == (2, 6)

    # SCHEDULE unset: the actions go, and without autoscaling the target with them
    unset = run("up", "--image", IMAGE)
    assert unset.exit_code == 0, unset.output
    assert actions(boto) == {} and target_range(boto) is None
    assert "scheduled action demo-wake deleted" in said(unset.stderr)


def test_schedule_unset_with_autoscaling_keeps_the_target_and_removes_only_the_actions(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, MONDAY_MORNING)
    scaling = ("--set", "MIN_COUNT=2", "--set", "MAX_COUNT=6")
    assert run("up", "--image", IMAGE, *scaling, *WITH_HOURS).exit_code == 0
    assert set(actions(boto)) == {"demo-wake", "demo-sleep"}
    result = run("up", "--image", IMAGE, *scaling)
    assert result.exit_code == 0, result.output
    assert actions(boto) == {} and target_range(boto) == (2, 6)
    policies = boto("application-autoscaling").describe_scaling_policies(ServiceNamespace="ecs")
    assert [p["PolicyName"] for p in policies["ScalingPolicies"]] == ["demo-cpu"]


def test_a_first_deploy_at_night_starts_no_task_and_waits_for_none(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, MONDAY_NIGHT)
    result = run("up", "--image", IMAGE, *WITH_HOURS)
    assert result.exit_code == 0, result.output
    assert service(boto)["desiredCount"] == 0
    assert target_range(boto) == (0, 0)
    assert set(actions(boto)) == {"demo-wake", "demo-sleep"}
    err = said(result.stderr)
    assert "asleep" in err and "Tue 08:00 Europe/Berlin" in err and "dashscale wake" in err


def test_a_deploy_at_night_deploys_the_new_revision_without_waiting_or_failing(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, MONDAY_MORNING)
    assert run("up", "--image", IMAGE, *WITH_HOURS).exit_code == 0
    fall_asleep(boto)
    at(monkeypatch, MONDAY_NIGHT)

    # what ECS shows for a deployment of no task that has not finished: a wait on it would time
    # out after the 5 s of --timeout
    def unfinished(parsed: dict[str, Any]) -> None:
        for found in parsed.get("services", []):
            for deployment in found.get("deployments", []):
                deployment.update(rolloutState="IN_PROGRESS", runningCount=0)

    on_answer(monkeypatch, "after-call.ecs.DescribeServices", unfinished)
    new_image = IMAGE.replace(":v1", ":v2")
    result = run("up", "--image", new_image, *WITH_HOURS, "--timeout", "5")
    assert result.exit_code == 0, result.output
    found = service(boto)
    assert found["desiredCount"] == 0 and found["taskDefinition"].endswith(":2")
    assert target_range(boto) == (0, 0)  # the deploy did not wake it
    err = said(result.stderr)
    assert "ECS service demo-service asleep" in err and "not waiting" in err

    # status: asleep, until the next start, and that is not a failure (exit 0)
    shown = run("status", *WITH_HOURS)
    assert shown.exit_code == 0, shown.output
    assert "asleep until Tue 2026-12-08 08:00" in said(shown.stderr)
    document = json.loads(run("status", "--json", *WITH_HOURS).stdout)
    assert document["asleep"] is True and document["serving"] is False
    assert document["schedule"]["schedule"] == HOURS
    assert document["schedule"]["until"] == "2026-12-08T08:00:00+01:00"


def test_teardown_removes_the_scheduled_actions(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, MONDAY_MORNING)
    assert run("up", "--image", IMAGE, *WITH_HOURS).exit_code == 0
    listed = run("teardown", "--dry-run", *WITH_HOURS)
    assert "demo-sleep" in said(listed.stderr + listed.stdout)
    result = run("teardown", "--yes", *WITH_HOURS)
    assert result.exit_code == 0, result.output
    assert actions(boto) == {} and target_range(boto) is None


def test_the_next_start_and_end_keep_the_local_hour_across_daylight_saving() -> None:
    hours = parse(HOURS)
    # Friday 27 March 2026, 20:00 in Berlin (UTC+1); clocks go forward on Sunday 29 March
    friday_night = datetime(2026, 3, 27, 19, 0, tzinfo=timezone.utc)
    start = hours.next_start(friday_night)
    assert start.isoformat() == "2026-03-30T08:00:00+02:00"  # Monday, summer time
    assert start.astimezone(timezone.utc).hour == 6
    assert hours.next_end(friday_night).isoformat() == "2026-03-30T19:00:00+02:00"
    inside = datetime(2026, 3, 30, 7, 0, tzinfo=timezone.utc)  # 09:00 summer time
    assert hours.awake_at(inside) and hours.next_end(inside).astimezone(timezone.utc).hour == 17
    # a window ending at midnight ends at the next day's 00:00
    late = parse("Sat 20:00-24:00 UTC")
    saturday = datetime(2026, 12, 12, 21, 0, tzinfo=timezone.utc)
    assert late.next_end(saturday) == datetime(2026, 12, 13, 0, 0, tzinfo=timezone.utc)

"""`dashscale wake [--for AGE]` against moto's server: outside the office hours it lifts the
scalable target back to the awake range and starts the tasks; `--for` puts a one-time action
that ends it earlier than the scheduled end; it refuses clearly when there is nothing to wake.
"Now" is injected (dashscale.aws.wall_time)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.operating import IMAGE, installed_command, said, wide_terminal
from tests.test_schedule_actions import (
    MONDAY_NIGHT,
    WITH_HOURS,
    actions,
    at,
    fall_asleep,
    service,
    target_range,
)

__all__ = ["wide_terminal"]


@pytest.fixture
def asleep_at_night(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An app with office hours, deployed, then put to sleep; "now" is Monday 22:00 Berlin."""
    at(monkeypatch, MONDAY_NIGHT - timedelta(hours=12))
    assert run("up", "--image", IMAGE, *WITH_HOURS).exit_code == 0
    fall_asleep(boto)
    at(monkeypatch, MONDAY_NIGHT)


def test_wake_for_two_hours_starts_the_tasks_and_puts_the_one_time_end(
    asleep_at_night: None, boto, run
) -> None:
    result = run("wake", "--for", "2h", *WITH_HOURS)
    assert result.exit_code == 0, result.output
    assert target_range(boto) == (3, 3)
    assert service(boto)["desiredCount"] == 3
    rest = actions(boto)["demo-rest"]
    ends = MONDAY_NIGHT + timedelta(hours=2)
    assert rest["Schedule"] == f"at({ends.strftime('%Y-%m-%dT%H:%M:%S')})"
    assert rest["Timezone"] == "UTC"
    assert rest["ScalableTargetAction"] == {"MinCapacity": 0, "MaxCapacity": 0}
    assert "sleeps again at Tue 2026-12-08 00:00 Europe/Berlin" in said(result.stderr)
    assert "3/3 running" in result.stdout

    # status: awake, woken, until the --for end
    document = json.loads(run("status", "--json", *WITH_HOURS).stdout)
    assert document["asleep"] is False and document["schedule"]["woken"] is True
    assert document["schedule"]["rest"] == rest["Schedule"]

    # a wake without --for lasts until the scheduled end: the one-time end goes
    again = run("wake", *WITH_HOURS)
    assert again.exit_code == 0, again.output
    assert "demo-rest" not in actions(boto)
    assert "sleeps again at Tue 2026-12-08 19:00 Europe/Berlin" in said(again.stderr)


def test_wake_for_longer_than_the_hours_ends_at_the_scheduled_end(
    asleep_at_night: None, boto, run
) -> None:
    result = run("wake", "--for", "1d", *WITH_HOURS)  # Tuesday 19:00 comes first
    assert result.exit_code == 0, result.output
    assert "demo-rest" not in actions(boto)
    assert "sleeps again at Tue 2026-12-08 19:00 Europe/Berlin" in said(result.stderr)


def test_wake_with_autoscaling_lifts_the_target_to_the_range(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    scaling = ("--set", "MIN_COUNT=2", "--set", "MAX_COUNT=6")
    at(monkeypatch, MONDAY_NIGHT)
    assert run("up", "--image", IMAGE, *scaling, *WITH_HOURS).exit_code == 0
    assert target_range(boto) == (0, 0)  # a first deploy at night sleeps
    result = run("wake", "--no-wait", *scaling, *WITH_HOURS)
    assert result.exit_code == 0, result.output
    assert target_range(boto) == (2, 6) and service(boto)["desiredCount"] == 3


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ((), "SCHEDULE is not set: demo runs all the time"),
        (("--for", "soon", *WITH_HOURS), "--for 'soon' is invalid"),
        (WITH_HOURS, "ECS service demo-service does not exist"),
    ],
)
def test_wake_refuses_with_a_clear_message(
    aws: str, project: Path, run, no_docker: None, arguments: tuple[str, ...], says: str
) -> None:
    result = run("wake", *arguments)
    assert result.exit_code != 0
    assert says in said(result.stderr)
    assert "Traceback" not in result.output


def test_the_installed_command_wakes_for_thirty_minutes(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    """As users run it: the installed `dashscale`, in its own process, at the real time of day.
    The hours are put two hours ahead of now (every day, UTC), so the app sleeps now and the
    scheduled end is far enough away for --for to come first."""
    now = datetime.now(timezone.utc)
    start = (now.hour + 2) % 24
    hours = f"SCHEDULE=Mon-Sun {start:02d}:00-{start + 1:02d}:00 UTC"
    env = {**os.environ, "AWS_ENDPOINT_URL": aws}
    command = installed_command()
    for args in (["up", "--image", IMAGE], ["wake", "--for", "30m"]):
        done = subprocess.run(
            [*command, *args, "--set", hours],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert target_range(boto) == (3, 3) and service(boto)["desiredCount"] == 3
    rest = actions(boto)["demo-rest"]["Schedule"]
    ends = datetime.strptime(rest, "at(%Y-%m-%dT%H:%M:%S)").replace(tzinfo=timezone.utc)
    assert abs((ends - now - timedelta(minutes=30)).total_seconds()) < 120
    assert "sleeps again at" in said(done.stderr) and "3/3 running" in done.stdout

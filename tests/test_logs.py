"""`dashscale logs` against moto's server with seeded log events: --since, --filter, --follow,
the line format, and the errors a user can make."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dashscale.steps import logs as logs_step
from tests.support.operating import Captured, FakeClock, context, said, wide_terminal
from tests.support.recording import recording

__all__ = ["wide_terminal"]  # the fixture, imported for pytest

TASK_A = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
TASK_B = "ffee0011223344556677889900aabbcc"
GROUP = "/ecs/demo"


def stream(task: str) -> str:
    return f"ecs/demo-container/{task}"


def stamp(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@pytest.fixture
def log_group(aws: str, boto, project: Path) -> dict[str, int]:
    """The app's log group as `cluster` makes it, two task streams, and events from 20 minutes,
    3 minutes, 2 minutes and 1 minute ago. Returns the timestamps by name."""
    logs = boto("logs")
    logs.create_log_group(logGroupName=GROUP, tags={"dashscale:app": "demo"})
    now = int(time.time() * 1000)
    when = {
        "old": now - 20 * 60_000,
        "a-start": now - 3 * 60_000 + 123,
        "b-error": now - 2 * 60_000 + 7,
        "a-request": now - 60_000,
    }
    for task in (TASK_A, TASK_B):
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream(task))
    seed = {
        TASK_A: [
            (when["old"], "Booting worker with pid: 7"),
            (when["a-start"], "Dash is running on http://0.0.0.0:8050/ [bold]not markup[/bold]"),
            (when["a-request"], 'GET / 200 ":smile:" 12ms'),
        ],
        TASK_B: [(when["b-error"], "ERROR Traceback (most recent call last):")],
    }
    for task, events in seed.items():
        logs.put_log_events(
            logGroupName=GROUP,
            logStreamName=stream(task),
            logEvents=[{"timestamp": ts, "message": message} for ts, message in events],
        )
    return when


def test_logs_since_prints_recent_lines_in_order_with_time_and_task(
    aws: str, log_group: dict[str, int], run
) -> None:
    with recording(aws) as calls:
        result = run("logs", "--since", "5m")
    assert result.exit_code == 0, result.output
    assert "FilterLogEvents" in calls.operations
    assert calls.changing == []
    assert result.stdout.splitlines() == [
        f"{stamp(log_group['a-start'])} 0a1b2c3d Dash is running on http://0.0.0.0:8050/ "
        "[bold]not markup[/bold]",
        f"{stamp(log_group['b-error'])} ffee0011 ERROR Traceback (most recent call last):",
        f'{stamp(log_group["a-request"])} 0a1b2c3d GET / 200 ":smile:" 12ms',
    ]

    wider = run("logs", "--since", "1h")
    assert wider.exit_code == 0
    assert len(wider.stdout.splitlines()) == 4
    assert wider.stdout.splitlines()[0].endswith("0a1b2c3d Booting worker with pid: 7")


def test_logs_filter_pattern(log_group: dict[str, int], run) -> None:
    result = run("logs", "--since", "2h", "--filter", "ERROR")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{stamp(log_group['b-error'])} ffee0011 ERROR Traceback (most recent call last):"
    ]
    nothing = run("logs", "--since", "30s")
    assert nothing.exit_code == 0 and nothing.stdout == ""
    assert "no log lines in /ecs/demo in the last 30s" in said(nothing.stderr)


def test_logs_follow_prints_new_lines_once_until_ctrl_c(
    aws: str, boto, log_group: dict[str, int]
) -> None:
    logs = boto("logs")
    now = int(time.time() * 1000)

    def world(sleeps: int) -> None:
        if sleeps == 1:  # a new line arrives between the first and the second poll
            logs.put_log_events(
                logGroupName=GROUP,
                logStreamName=stream(TASK_B),
                logEvents=[{"timestamp": now, "message": "GET /_dash-layout 200"}],
            )
        if sleeps == 2:  # and one that reached CloudWatch late, stamped before the newest
            logs.put_log_events(
                logGroupName=GROUP,
                logStreamName=stream(TASK_A),
                logEvents=[{"timestamp": now - 5_000, "message": "late line"}],
            )
        if sleeps == 4:
            raise KeyboardInterrupt

    clock = FakeClock(on_sleep=world)
    captured = Captured()
    printed = logs_step.show_logs(context(captured, clock), since="5m", follow=True)
    lines = captured.out.splitlines()
    assert printed == len(lines) == 5
    assert [line.split(" ", 2)[2] for line in lines] == [
        "Dash is running on http://0.0.0.0:8050/ [bold]not markup[/bold]",
        "ERROR Traceback (most recent call last):",
        'GET / 200 ":smile:" 12ms',
        "GET /_dash-layout 200",
        "late line",
    ]
    assert clock.sleeps == [logs_step.FOLLOW_POLL_SECONDS] * 4
    assert "stopped following after 5 line(s)" in captured.err


def test_logs_without_a_log_group(aws: str, project: Path, run) -> None:
    result = run("logs", "--since", "5m")
    assert result.exit_code == 1
    err = said(result.stderr)
    assert "there are no logs yet: the log group /ecs/demo does not exist" in err
    assert "hint: deploy the app first with `dashscale up`" in err
    assert result.stdout == "" and "Traceback" not in result.output


@pytest.mark.parametrize("since", ["5", "10x", "m", "0m", "-5m", "1.5h"])
def test_logs_invalid_since_is_refused_before_any_call(
    aws: str, project: Path, run, since: str
) -> None:
    with recording(aws) as calls:
        result = run("logs", "--since", since)
    assert result.exit_code == 2
    assert f"--since {since!r} is invalid" in said(result.stderr)
    assert "10m, 2h or 1d" in result.stderr
    assert calls.operations == []


def test_logs_of_a_foreign_log_group_are_not_read(aws: str, boto, project: Path, run) -> None:
    boto("logs").create_log_group(logGroupName=GROUP)  # someone else's, no tag
    with recording(aws) as calls:
        result = run("logs")
    assert result.exit_code == 1
    assert "log group /ecs/demo exists but is not tagged dashscale:app=demo" in said(result.stderr)
    assert "FilterLogEvents" not in calls.operations


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("5M", 300)]
)
def test_parse_since(text: str, seconds: int) -> None:
    assert logs_step.parse_since(text) == seconds

"""`dashscale logs`: what the app printed, from its CloudWatch log group `/ecs/APP`.

Each line goes to stdout as `TIMESTAMP TASK MESSAGE`: the event's time in UTC (ISO 8601, to the
millisecond), the first 8 characters of the ECS task id that wrote it (its stream is
`ecs/APP-container/TASK-ID`), and the message as the app printed it. Events are read with
FilterLogEvents from `--since` ago, optionally matching a CloudWatch filter pattern; `--follow`
keeps polling for new ones until Ctrl-C.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from dashscale.aws import translated
from dashscale.context import Context
from dashscale.errors import AwsError, ConfigError
from dashscale.steps.cluster import LOG_STREAM_PREFIX, find_log_group

WORKER_STREAM_PREFIX = "worker"  # worker.LOG_STREAM_PREFIX: streams worker/APP-worker/TASK-ID

DEFAULT_SINCE = "1h"
FOLLOW_POLL_SECONDS = 2.0
# Events can reach CloudWatch seconds after their timestamp: each poll of --follow looks back this
# far behind the newest event seen, and skips the events it already printed.
FOLLOW_OVERLAP_MS = 30_000
TASK_ID_CHARS = 8
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SINCE = re.compile(r"([0-9]+)([smhd])")


# The IAM actions of `dashscale logs` (dashscale/policy.py).
LOGS_CALLS = ("logs:FilterLogEvents",)


def parse_since(text: str) -> int:
    """`30s`, `10m`, `2h`, `1d` -> seconds; ConfigError naming --since otherwise."""
    match = _SINCE.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise ConfigError(
            f"--since {text!r} is invalid: expected a number and a unit (s, m, h or d), "
            "such as 10m, 2h or 1d",
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


def task_of(stream: str, container: str) -> str:
    """The short task id of a stream `ecs/CONTAINER/TASK-ID` (other streams: their last part)."""
    prefix = f"{LOG_STREAM_PREFIX}/{container}/"
    task = stream[len(prefix) :] if stream.startswith(prefix) else stream.rsplit("/", 1)[-1]
    return task[:TASK_ID_CHARS]


def format_event(event: dict[str, Any], container: str) -> str:
    stamp = datetime.fromtimestamp(int(event["timestamp"]) / 1000, tz=timezone.utc)
    when = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
    task = task_of(str(event.get("logStreamName", "")), container)
    message = str(event.get("message", "")).rstrip("\n")
    return f"{when} {task:<{TASK_ID_CHARS}} {message}"


def streams(ctx: Context, worker: bool = False) -> tuple[str, str]:
    """The stream prefix and container of the app's tasks, or of its workers (`worker`)."""
    if worker:
        return WORKER_STREAM_PREFIX, ctx.names.worker_container
    return LOG_STREAM_PREFIX, ctx.names.container


def read_events(
    ctx: Context, start_ms: int, pattern: str | None, worker: bool = False
) -> list[dict[str, Any]]:
    """Every event of the app's container streams (or the workers') from `start_ms` on, oldest
    first."""
    logs = ctx.client("logs")
    prefix, container = streams(ctx, worker)
    request: dict[str, Any] = {
        "logGroupName": ctx.names.log_group,
        "logStreamNamePrefix": f"{prefix}/{container}/",
        "startTime": start_ms,
    }
    if pattern:
        request["filterPattern"] = pattern
    events: list[dict[str, Any]] = []
    with translated(f"reading the log group {ctx.names.log_group}"):
        try:
            for page in logs.get_paginator("filter_log_events").paginate(**request):
                events += page.get("events", [])
        except logs.exceptions.ResourceNotFoundException:
            raise _no_log_group(ctx) from None
    # streams come one after another: interleave them by time
    events.sort(key=lambda e: (int(e["timestamp"]), int(e.get("ingestionTime", 0))))
    return events


def _no_log_group(ctx: Context) -> AwsError:
    return AwsError(
        f"there are no logs yet: the log group {ctx.names.log_group} does not exist",
        "deploy the app first with `dashscale up`",
    )


def new_lines(
    ctx: Context,
    since_seconds: int,
    pattern: str | None,
    follow: bool,
    now: Callable[[], float] = time.time,
    worker: bool = False,
) -> Iterator[str]:
    """The formatted lines, oldest first; with `follow`, keeps polling (ctx.clock.sleep between
    polls) and yields each new event once, until the caller stops or Ctrl-C."""
    start_ms = int((now() - since_seconds) * 1000)
    seen: dict[str, int] = {}  # eventId -> timestamp, of events within the overlap window
    while True:
        newest = start_ms
        for event in read_events(ctx, start_ms, pattern, worker):
            event_id = str(event.get("eventId", ""))
            if event_id in seen:
                continue
            seen[event_id] = int(event["timestamp"])
            newest = max(newest, int(event["timestamp"]))
            yield format_event(event, ctx.names.container)
        if not follow:
            return
        start_ms = max(start_ms, newest - FOLLOW_OVERLAP_MS)
        seen = {key: stamp for key, stamp in seen.items() if stamp >= start_ms}
        ctx.clock.sleep(FOLLOW_POLL_SECONDS)


def show_logs(
    ctx: Context,
    since: str = DEFAULT_SINCE,
    follow: bool = False,
    pattern: str | None = None,
    now: Callable[[], float] = time.time,
    worker: bool = False,
) -> int:
    """Prints the app's log lines (or its workers', `worker`) to stdout; returns how many.
    Ctrl-C ends --follow cleanly."""
    since_seconds = parse_since(since)
    if find_log_group(ctx) is None:
        raise _no_log_group(ctx)
    printed = 0
    if follow:
        ctx.ui.info(f"following {ctx.names.log_group} from {since} ago (Ctrl-C stops)")
    try:
        for line in new_lines(ctx, since_seconds, pattern, follow, now, worker):
            ctx.ui.out.print(line, markup=False, emoji=False, highlight=False, soft_wrap=True)
            printed += 1
    except KeyboardInterrupt:
        if not follow:
            raise
        ctx.ui.info(f"stopped following after {printed} line(s)")
        return printed
    if printed == 0:
        matching = f" matching {pattern!r}" if pattern else ""
        ctx.ui.info(f"no log lines{matching} in {ctx.names.log_group} in the last {since}")
    return printed

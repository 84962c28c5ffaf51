"""`dashscale scale N` against moto's server: the desired count, the wait for running tasks (moto
runs them at once; the gradual start and a start that never finishes are shown to the code by
changing DescribeServices answers), and the refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dashscale.errors import WaitTimeout
from dashscale.steps import scale as scale_step
from tests.support.operating import (
    IMAGE,
    Captured,
    FakeClock,
    context,
    on_answer,
    said,
    wide_terminal,
)
from tests.support.recording import recording

__all__ = ["wide_terminal"]  # the fixture, imported for pytest


def service(boto) -> dict[str, Any]:
    (found,) = boto("ecs").describe_services(cluster="demo-cluster", services=["demo-service"])[
        "services"
    ]
    return found


def test_scale_sets_the_count_and_waits_for_the_tasks(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE).exit_code == 0
    with recording(aws) as calls:
        result = run("scale", "5")
    assert result.exit_code == 0, result.output
    assert calls.changing == ["UpdateService"]
    after = service(boto)
    assert (after["desiredCount"], after["runningCount"]) == (5, 5)
    assert result.stdout == "5/5 running\n"
    err = said(result.stderr)
    assert "desired count 3 -> 5" in err and "passed" in err
    assert "the next `dashscale up` sets the count back to DESIRED_COUNT=3" in err

    status = json.loads(run("status", "--json").stdout)
    assert (status["service"]["desired"], status["service"]["running"]) == (5, 5)

    with recording(aws) as calls:
        again = run("scale", "5")
    assert again.exit_code == 0
    assert calls.changing == []
    assert "desired count already 5" in said(again.stderr)


def test_scale_follows_the_tasks_until_all_run(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In AWS new tasks start over a minute or two; moto starts them at once. The first two
    answers after the update say 3 then 4 of 5 run."""
    assert run("up", "--image", IMAGE).exit_code == 0
    starting = [(3, 2), (4, 1)]

    def gradually(parsed: dict[str, Any]) -> None:
        for item in parsed.get("services", []):
            if item["desiredCount"] == 5 and starting:
                item["runningCount"], item["pendingCount"] = starting.pop(0)

    on_answer(monkeypatch, "after-call.ecs.DescribeServices", gradually)
    captured, clock = Captured(), FakeClock()
    result = scale_step.scale(context(captured, clock), 5)
    assert (result["runningCount"], result["pendingCount"]) == (5, 0)
    assert clock.sleeps == [scale_step.SCALE_POLL_SECONDS] * 2
    assert starting == []
    assert "5 running" in captured.err


def test_scale_that_never_completes_times_out_and_says_why(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("up", "--image", IMAGE).exit_code == 0

    def stuck(parsed: dict[str, Any]) -> None:
        for item in parsed.get("services", []):
            if item["desiredCount"] == 5:
                item["runningCount"], item["pendingCount"] = 3, 2
                item["events"] = [{"message": "(service demo-service) was unable to place a task"}]

    on_answer(monkeypatch, "after-call.ecs.DescribeServices", stuck)
    captured, clock = Captured(), FakeClock()
    with pytest.raises(WaitTimeout) as error:
        scale_step.scale(context(captured, clock, timeout=120), 5)
    assert "5 running tasks of demo-service" in error.value.message
    assert 120 <= clock.time < 120 + scale_step.SCALE_POLL_SECONDS
    err = said(captured.err)
    assert "scaling demo-service: 3/5 running, 2 pending" in err
    assert "event: (service demo-service) was unable to place a task" in err


def test_scale_without_a_service(aws: str, project: Path, run) -> None:
    with recording(aws) as calls:
        result = run("scale", "2")
    assert result.exit_code == 1
    assert calls.changing == []
    err = said(result.stderr)
    assert "ECS service demo-service does not exist, so there is nothing to scale" in err
    assert "hint: run `dashscale up` first" in err and "Traceback" not in result.output


def test_scale_within_autoscaling_limits_only(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    limits = ("--set", "MIN_COUNT=2", "--set", "MAX_COUNT=6")
    assert run("up", "--image", IMAGE, *limits).exit_code == 0
    with recording(aws) as calls:
        refused = run("scale", "10")
    assert refused.exit_code == 2
    assert calls.changing == []
    err = said(refused.stderr)
    assert "10 tasks is outside the autoscaling range 2-6 of demo-service" in err
    assert "MIN_COUNT and MAX_COUNT" in err
    assert service(boto)["desiredCount"] == 3

    allowed = run("scale", "6", *limits)
    assert allowed.exit_code == 0, allowed.output
    assert service(boto)["desiredCount"] == 6
    assert "autoscaling (2-6 tasks) may change this count" in said(allowed.stderr)


def test_scale_no_wait(aws: str, boto, project: Path, run, no_docker: None) -> None:
    assert run("up", "--image", IMAGE).exit_code == 0
    result = run("scale", "1", "--no-wait")
    assert result.exit_code == 0, result.output
    assert "--no-wait" in result.stderr and "passed" not in result.stderr
    assert service(boto)["desiredCount"] == 1

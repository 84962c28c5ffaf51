"""Usage in `status`: metric data put into moto's CloudWatch through the real API, in the shapes
of real days (a busy office day, an idle app, a spiky one, one that is always busy, one with
almost no data), then read back by `status` as sparklines, numbers in --json and right-size
advice. Expected savings are worked out here by hand from Fargate's published unit prices
(us-east-1, Linux x86: $0.04048 per vCPU-hour, $0.004445 per GB-hour; 730 hours a month).
"Now" is injected (dashscale.aws.wall_time)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest

from tests.support.operating import IMAGE, said, wide_terminal

__all__ = ["wide_terminal"]

NOW = datetime(2026, 12, 7, 18, 0, tzinfo=timezone.utc)  # Monday 18:00 UTC
VCPU_HOUR, GB_HOUR, MONTH = 0.04048, 0.004445, 730
STEP = timedelta(minutes=5)  # one data point every 5 minutes, as a 24 h window sees them

Shape = Callable[[datetime], dict[str, float]]  # metric -> value at that moment


def office_day(moment: datetime) -> dict[str, float]:
    """Busy 08:00-18:00 UTC on weekdays: CPU up to 30 %, memory up to 20 %, no one at night."""
    busy = moment.weekday() < 5 and 8 <= moment.hour < 18
    wiggle = (moment.minute // 5) % 3  # 0, 1, 2
    return {
        "CPUUtilization": 24.0 + 3 * wiggle if busy else 6.0 + wiggle,
        "MemoryUtilization": 18.0 + wiggle if busy else 15.0,
        "RequestCount": 300.0 if busy else 0.0,
        "HTTPCode_Target_5XX_Count": 1.0
        if busy and moment.hour == 11 and moment.minute < 10
        else 0,
        "TargetResponseTime": 0.25 if busy else 0.1,
    }


def idle(moment: datetime) -> dict[str, float]:
    return {
        "CPUUtilization": 1.0 + (moment.minute // 5) % 2,
        "MemoryUtilization": 10.0,
        "RequestCount": 2.0,
        "HTTPCode_Target_5XX_Count": 0.0,
        "TargetResponseTime": 0.05,
    }


def spiky(moment: datetime) -> dict[str, float]:
    """Mostly quiet, with a burst to 95 % CPU for five minutes every third hour."""
    burst = moment.hour % 3 == 0 and moment.minute < 5
    return {
        "CPUUtilization": 95.0 if burst else 12.0,
        "MemoryUtilization": 35.0,
        "RequestCount": 900.0 if burst else 60.0,
        "HTTPCode_Target_5XX_Count": 0.0,
        "TargetResponseTime": 1.5 if burst else 0.2,
    }


def always_busy(moment: datetime) -> dict[str, float]:
    return {
        "CPUUtilization": 84.0 + (moment.minute // 5) % 3,
        "MemoryUtilization": 40.0,
        "RequestCount": 1000.0,
        "HTTPCode_Target_5XX_Count": 0.0,
        "TargetResponseTime": 0.8,
    }


def put_day(boto, shape: Shape, hours: float = 24, end: datetime = NOW) -> None:
    """The shape's data points, every 5 minutes for `hours` before `end`, with the dimensions
    AWS publishes them under (the service's, the load balancer's)."""
    (balancer,) = boto("elbv2").describe_load_balancers(Names=["demo-alb"])["LoadBalancers"]
    lb = balancer["LoadBalancerArn"].split(":loadbalancer/")[1]
    ecs = [{"Name": "ClusterName", "Value": "demo-cluster"}]
    ecs.append({"Name": "ServiceName", "Value": "demo-service"})
    elb = [{"Name": "LoadBalancer", "Value": lb}]
    data: dict[str, list[dict[str, Any]]] = {"AWS/ECS": [], "AWS/ApplicationELB": []}
    moment = end - timedelta(hours=hours)
    while moment < end:
        for metric, value in shape(moment).items():
            namespace = "AWS/ECS" if metric.endswith("Utilization") else "AWS/ApplicationELB"
            dims = ecs if namespace == "AWS/ECS" else elb
            data[namespace].append(
                {"MetricName": metric, "Dimensions": dims, "Timestamp": moment, "Value": value}
            )
        moment += STEP
    cloudwatch = boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        # botocore gzips a large PutMetricData body; moto's request recorder then waits for
        # the plain length and never answers
        config=botocore.config.Config(disable_request_compression=True),
    )
    for namespace, items in data.items():
        for first in range(0, len(items), 500):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=items[first : first + 500])


@pytest.fixture
def deployed(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dashscale.aws.wall_time", lambda: NOW.timestamp())
    assert run("up", "--image", IMAGE).exit_code == 0


def row(stderr: str, label: str) -> list[str]:
    """The cells of the usage table's row for `label`."""
    line = next(line for line in stderr.splitlines() if line.startswith(f"│ {label} "))
    return [cell.strip() for cell in line.strip("│").split("│")]


def status_json(run, *args: str) -> dict[str, Any]:
    result = run("status", "--json", *args)
    return json.loads(result.stdout)


def test_a_busy_office_day_shows_its_shape_and_a_smaller_size_with_the_saving(
    deployed: None, boto, run
) -> None:
    put_day(boto, office_day)
    usage = status_json(run)["usage"]
    assert usage["period_seconds"] == 3600 and len(usage["times"]) == 24
    assert usage["start"] == "2026-12-06T18:00:00+00:00"  # Sunday 18:00: 14 quiet hours first
    metrics = usage["metrics"]
    assert metrics["cpu_peak"]["peak"] == 30.0 and metrics["memory_peak"]["peak"] == 20.0
    assert metrics["requests"]["total"] == 10 * 12 * 300  # ten busy hours of 12 points
    assert metrics["requests"]["values"] == [0.0] * 14 + [3600.0] * 10
    assert metrics["errors_5xx"]["total"] == 2
    assert metrics["response_time"]["peak"] == pytest.approx(0.25)
    # a smaller valid size keeps the peaks under 70 %: 1024 x 0.30 / 0.7 = 439 units of CPU,
    # 3072 x 0.20 / 0.7 = 878 MiB: 512 CPU units with 1024 MiB, Fargate's smallest such size
    now = 1.0 * VCPU_HOUR + 3 * GB_HOUR
    smaller = 0.5 * VCPU_HOUR + 1 * GB_HOUR
    saving = round((now - smaller) * 3 * MONTH, 2)
    assert saving == 63.79
    advice = usage["advice"]
    assert (advice["kind"], advice["task_cpu"], advice["task_memory"]) == ("smaller", 512, 1024)
    assert advice["monthly_saving"] == saving

    shown = run("status")
    text = said(shown.stderr)
    assert "Usage since 2026-12-06 18:00 UTC (one bar per 60 min)" in text
    requests = row(shown.stderr, "requests")
    assert requests[1] == "▁" * 14 + "█" * 10  # quiet night, busy day, scaled to the peak
    assert requests[3] == "total 36000"
    cpu = row(shown.stderr, "CPU")
    assert len(cpu[1]) == 24 and max(cpu[1][:14]) < min(cpu[1][14:])  # the day stands out
    assert cpu[3] == "peak 30 %"
    assert "TASK_CPU=512 / TASK_MEMORY=1024 would save about $63.79/month" in text


def test_an_idle_app_gets_the_smallest_size(deployed: None, boto, run) -> None:
    put_day(boto, idle)
    advice = status_json(run)["usage"]["advice"]
    # 1024 x 0.02 / 0.7 = 29 units, 3072 x 0.10 / 0.7 = 439 MiB: 256 CPU units with 512 MiB
    saving = round(
        (1.0 * VCPU_HOUR + 3 * GB_HOUR - 0.25 * VCPU_HOUR - 0.5 * GB_HOUR) * 3 * MONTH, 2
    )
    assert saving == 90.82
    assert (advice["kind"], advice["task_cpu"], advice["task_memory"]) == ("smaller", 256, 512)
    assert advice["monthly_saving"] == saving


def test_an_idle_app_with_office_hours_saves_only_in_the_hours(
    deployed: None, boto, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_day(boto, idle)
    hours = ("--set", "SCHEDULE=Mon-Fri 08:00-18:00 UTC")
    advice = status_json(run, *hours)["usage"]["advice"]
    per_hour = 1.0 * VCPU_HOUR + 3 * GB_HOUR - 0.25 * VCPU_HOUR - 0.5 * GB_HOUR
    month_of_hours = 50 * MONTH / 168  # 50 hours a week
    assert advice["monthly_saving"] == round(per_hour * 3 * month_of_hours, 2) == 27.03


def test_spiky_cpu_keeps_the_size(deployed: None, boto, run) -> None:
    put_day(boto, spiky)
    usage = status_json(run)["usage"]
    assert usage["metrics"]["cpu_peak"]["peak"] == 95.0
    assert usage["metrics"]["cpu"]["peak"] < 20  # the hourly average hides the bursts
    assert usage["advice"]["kind"] == "fits" and "CPU 95 %" in usage["advice"]["message"]


def test_cpu_that_stays_high_asks_for_a_larger_size_or_autoscaling(
    deployed: None, boto, run
) -> None:
    put_day(boto, always_busy)
    advice = status_json(run)["usage"]["advice"]
    assert advice["kind"] == "larger" and advice["task_cpu"] == 2048
    assert "TASK_CPU=2048 / TASK_MEMORY=4096" in advice["message"]
    assert "autoscaling (MIN_COUNT and MAX_COUNT)" in advice["message"]


def test_too_few_data_points_give_no_advice(deployed: None, boto, run) -> None:
    put_day(boto, always_busy, hours=3)  # a new app: three hours of data
    usage = status_json(run)["usage"]
    assert usage["advice"]["kind"] == "none"
    assert "too few data points" in usage["advice"]["message"]
    assert "3 of 24" in usage["advice"]["message"]
    assert sum(v is not None for v in usage["metrics"]["cpu"]["values"]) == 3
    assert "too few data points" in said(run("status").stderr)


def test_since_changes_the_window_and_the_period(deployed: None, boto, run) -> None:
    put_day(boto, office_day, hours=2, end=NOW - timedelta(hours=1))  # 15:00 to 17:00
    usage = status_json(run, "--since", "2h")["usage"]
    assert usage["period_seconds"] == 300 and len(usage["times"]) == 24
    assert usage["start"] == "2026-12-07T16:00:00+00:00"
    requests = usage["metrics"]["requests"]["values"]
    assert requests == [300.0] * 12 + [None] * 12  # the last hour has no data
    bad = run("status", "--since", "yesterday")
    assert bad.exit_code == 2 and "--since 'yesterday' is invalid" in said(bad.stderr)

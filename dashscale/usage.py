"""Usage in `status`: what the app did over the last 24 hours (`--since`), from CloudWatch, and
right-size advice from it.

One GetMetricData call reads, per period (so that the window is about 24 periods): the service's
CPU and memory utilisation (`AWS/ECS`, average and maximum over its tasks) and the load
balancer's request count, target 5xx count and target response time (`AWS/ApplicationELB`).
The terminal shows each as a sparkline with its average and peak (or total); `--json` carries
the numbers period by period.

The advice reads the peaks against the task size: when peak CPU and memory stay well below it (a
smaller valid Fargate size still keeps them under HEADROOM), it names that size and the monthly
saving; when the CPU stays high, a larger size or autoscaling; nothing with too few data points.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from dashscale import cost
from dashscale.aws import translated
from dashscale.config import FARGATE_CPUS, Config, fargate_memory_options
from dashscale.context import Context

DEFAULT_SINCE = "24h"
PERIODS = 24  # about this many points per sparkline
BARS = "▁▂▃▄▅▆▇█"
HEADROOM = 0.7  # a size fits when the peak stays under 70 % of it
HIGH_CPU = 75.0  # average CPU above this: the tasks are busy all the time
MIN_POINTS = 12  # periods with data that advice needs (half the window)
HOURS_PER_MONTH = 730

# (namespace, metric, statistic, key, unit); ECS per service, ALB per load balancer
ECS_METRICS = (
    ("CPUUtilization", "Average", "cpu", "%"),
    ("CPUUtilization", "Maximum", "cpu_peak", "%"),
    ("MemoryUtilization", "Average", "memory", "%"),
    ("MemoryUtilization", "Maximum", "memory_peak", "%"),
)
ALB_METRICS = (
    ("RequestCount", "Sum", "requests", "requests"),
    ("HTTPCode_Target_5XX_Count", "Sum", "errors_5xx", "responses"),
    ("TargetResponseTime", "Average", "response_time", "s"),
)
LABELS = {
    "cpu": "CPU",
    "memory": "memory",
    "requests": "requests",
    "errors_5xx": "5xx responses",
    "response_time": "response time",
}


@dataclass
class Series:
    """One metric over the window: a value per period, None where CloudWatch has no data."""

    unit: str
    values: list[float | None]

    @property
    def present(self) -> list[float]:
        return [v for v in self.values if v is not None]

    @property
    def average(self) -> float | None:
        return sum(self.present) / len(self.present) if self.present else None

    @property
    def peak(self) -> float | None:
        return max(self.present) if self.present else None

    @property
    def total(self) -> float:
        return sum(self.present)


@dataclass
class Usage:
    start: datetime
    end: datetime
    period: int  # seconds
    series: dict[str, Series] = field(default_factory=dict)
    advice: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        times = [self.start + timedelta(seconds=self.period * i) for i in range(self.periods)]
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "period_seconds": self.period,
            "times": [t.isoformat() for t in times],
            "metrics": {
                key: {
                    "unit": s.unit,
                    "values": [None if v is None else round(v, 3) for v in s.values],
                    "average": _rounded(s.average),
                    "peak": _rounded(s.peak),
                    "total": round(s.total, 3),
                }
                for key, s in self.series.items()
            },
            "advice": self.advice,
        }

    @property
    def periods(self) -> int:
        return math.ceil((self.end - self.start).total_seconds() / self.period)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def period_for(seconds: int) -> int:
    """A CloudWatch period (a multiple of 60 s) giving about PERIODS points over `seconds`."""
    return max(60, math.ceil(seconds / PERIODS / 60) * 60)


def sparkline(values: list[float | None], top: float | None = None) -> str:
    """One bar per value, scaled to `top` (the largest value when None); a gap where no data."""
    present = [v for v in values if v is not None]
    top = top if top is not None else max(present, default=0.0)
    bars = []
    for value in values:
        if value is None:
            bars.append(" ")
        elif top <= 0:
            bars.append(BARS[0])
        else:
            index = round(min(value, top) / top * (len(BARS) - 1))
            bars.append(BARS[index])
    return "".join(bars)


# --- reading CloudWatch --------------------------------------------------------------------------


def _queries(ctx: Context, balancer: str | None, period: int) -> list[dict[str, Any]]:
    service = [
        {"Name": "ClusterName", "Value": ctx.names.cluster},
        {"Name": "ServiceName", "Value": ctx.names.service},
    ]
    wanted = [("AWS/ECS", m, stat, key, service) for m, stat, key, _ in ECS_METRICS]
    if balancer:
        dims = [{"Name": "LoadBalancer", "Value": balancer}]
        wanted += [("AWS/ApplicationELB", m, stat, key, dims) for m, stat, key, _ in ALB_METRICS]
    return [
        {
            "Id": key,
            "MetricStat": {
                "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dims},
                "Period": period,
                "Stat": stat,
            },
            "ReturnData": True,
        }
        for namespace, metric, stat, key, dims in wanted
    ]


def balancer_dimension(arn: str) -> str:
    """The load balancer as CloudWatch names it: app/NAME/ID."""
    return arn.split(":loadbalancer/", 1)[-1]


def read_usage(ctx: Context, seconds: int, balancer_arn: str | None) -> Usage:
    """The window ending now (ctx.clock.wall), `seconds` long, read in one GetMetricData
    call (paged)."""
    period = period_for(seconds)
    end = datetime.fromtimestamp(ctx.clock.wall(), timezone.utc).replace(microsecond=0)
    end = end.replace(second=0)
    start = end - timedelta(seconds=math.ceil(seconds / period) * period)
    usage = Usage(start, end, period)
    balancer = balancer_dimension(balancer_arn) if balancer_arn else None
    queries = _queries(ctx, balancer, period)
    found: dict[str, dict[datetime, float]] = {q["Id"]: {} for q in queries}
    client = ctx.client("cloudwatch")
    with translated("reading the app's metrics from CloudWatch"):
        for page in client.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
        ):
            for result in page.get("MetricDataResults", []):
                points = zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
                found[result["Id"]].update(points)
    units = {key: unit for _, _, key, unit in (*ECS_METRICS, *ALB_METRICS)}
    for key, points in found.items():
        values: list[float | None] = [None] * usage.periods
        for moment, value in points.items():
            index = int((moment - start).total_seconds() // period)
            if 0 <= index < usage.periods:
                values[index] = float(value)
        usage.series[key] = Series(units[key], values)
    usage.advice = advise(ctx.config, usage)
    return usage


# --- advice --------------------------------------------------------------------------------------


def fargate_hourly(region: str, cpu: int, memory: int, architecture: str) -> float:
    """USD per task-hour of a Fargate size (Linux) in `region`: vCPU-hours plus GB-hours, from
    the cost estimate's price table (dashscale/prices.json). A region the table lacks (China,
    GovCloud) is ranked at us-east-1's prices, and the advice says so."""
    values = _fargate_prices(region)
    prefix = "fargate_arm_" if architecture == "ARM64" else "fargate_"
    vcpu_hour, gb_hour = float(values[f"{prefix}vcpu_hour"]), float(values[f"{prefix}gb_hour"])
    return cpu / 1024 * vcpu_hour + memory / 1024 * gb_hour


def _fargate_prices(region: str) -> Mapping[str, Any]:
    return _priced_regions().get(region) or _priced_regions()[PRICED_FALLBACK]


@functools.cache
def _priced_regions() -> Mapping[str, Any]:
    """The table's regions, read once (the advice ranks every Fargate size)."""
    return cost.load_table()["regions"]


PRICED_FALLBACK = "us-east-1"


def monthly(config: Config, cpu: int, memory: int) -> float:
    """What DESIRED_COUNT tasks of that size cost a month (the schedule's hours when set)."""
    hours = config.schedule.hours_per_month if config.schedule else HOURS_PER_MONTH
    hourly = fargate_hourly(config.aws_region, cpu, memory, config.architecture)
    return hourly * hours * config.desired_count


def smallest_fitting(
    config: Config, cpu_needed: float, memory_needed: float
) -> tuple[int, int] | None:
    """The cheapest valid Fargate size with at least that CPU (units) and memory (MiB)."""
    sizes = [
        (cpu, memory)
        for cpu in FARGATE_CPUS
        for memory in fargate_memory_options(cpu)
        if cpu >= cpu_needed and memory >= memory_needed
    ]
    return min(sizes, key=lambda size: monthly(config, *size), default=None)


def advise(config: Config, usage: Usage) -> dict[str, Any]:
    """Right-size advice: {"kind": smaller | larger | fits | none, "message", ...}."""
    cpu, cpu_peak = usage.series.get("cpu"), usage.series.get("cpu_peak")
    memory_peak = usage.series.get("memory_peak")
    points = len(cpu.present) if cpu else 0
    if not cpu or not cpu_peak or not memory_peak or points < MIN_POINTS:
        return {
            "kind": "none",
            "message": f"too few data points for advice ({points} of {usage.periods} periods "
            f"with CPU data; at least {MIN_POINTS})",
        }
    size = f"TASK_CPU={config.task_cpu} / TASK_MEMORY={config.task_memory}"
    peak_cpu, peak_memory = cpu_peak.peak or 0.0, (memory_peak.peak or 0.0)
    average_cpu = cpu.average or 0.0
    if average_cpu >= HIGH_CPU:
        return _larger(config, average_cpu, size)
    fitting = smallest_fitting(
        config,
        config.task_cpu * peak_cpu / 100 / HEADROOM,
        config.task_memory * peak_memory / 100 / HEADROOM,
    )
    now = monthly(config, config.task_cpu, config.task_memory)
    if fitting is not None and monthly(config, *fitting) < now - 0.005:
        saving = round(now - monthly(config, *fitting), 2)
        return {
            "kind": "smaller",
            "task_cpu": fitting[0],
            "task_memory": fitting[1],
            "monthly_saving": saving,
            "message": f"peaks stay well below {size} (CPU {peak_cpu:.0f} %, memory "
            f"{peak_memory:.0f} %): TASK_CPU={fitting[0]} / TASK_MEMORY={fitting[1]} would "
            f"save about ${saving:.2f}/month{_priced_where(config)}",
        }
    return {
        "kind": "fits",
        "message": f"{size} fits (peaks: CPU {peak_cpu:.0f} %, memory {peak_memory:.0f} %)",
    }


def _priced_where(config: Config) -> str:
    if config.aws_region in _priced_regions():
        return ""
    return f" (at {PRICED_FALLBACK}'s prices: dashscale's table has none for {config.aws_region})"


def _larger(config: Config, average_cpu: float, size: str) -> dict[str, Any]:
    bigger = next((c for c in FARGATE_CPUS if c > config.task_cpu), None)
    options = []
    if bigger is not None:
        memory = min(m for m in fargate_memory_options(bigger) if m >= config.task_memory)
        options.append(f"TASK_CPU={bigger} / TASK_MEMORY={memory}")
    if config.autoscaling:
        options.append(f"a higher MAX_COUNT than {config.max_count}")
    else:
        options.append("autoscaling (MIN_COUNT and MAX_COUNT)")
    return {
        "kind": "larger",
        "task_cpu": bigger,
        "message": f"CPU stays high ({average_cpu:.0f} % on average with {size}): consider "
        + " or ".join(options),
    }


def rows_of(document: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(metric, sparkline, average, peak or total) for the terminal, from `Usage.to_json`."""
    metrics = document["metrics"]
    shown = []
    for key in ("cpu", "memory", "requests", "errors_5xx", "response_time"):
        metric = metrics.get(key)
        if metric is None:
            continue
        unit = metric["unit"]
        if unit == "%":
            peak = metrics.get(f"{key}_peak", metric)["peak"]
            numbers = _number(metric["average"], " %"), f"peak {_number(peak, ' %')}"
        elif unit == "s":
            numbers = _number(metric["average"], " s"), f"peak {_number(metric['peak'], ' s')}"
        else:
            per = f"{_number(metric['average'], '')} per bar"
            numbers = per, f"total {metric['total']:.0f}"
        top = 100.0 if unit == "%" else None
        shown.append((LABELS[key], sparkline(metric["values"], top), *numbers))
    return shown


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}{unit}" if unit == " s" else f"{value:.0f}{unit}"

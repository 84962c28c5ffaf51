"""The cache nodes and worker tasks in the estimate (CACHE=redis, CACHE_NODE_TYPE, WORKERS,
WORKER_CPU, WORKER_MEMORY), worked out by hand from us-east-1's published prices, with
`dashscale cost` run as users run it."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

FARGATE_VCPU_HOUR = Decimal("0.04048")
FARGATE_GB_HOUR = Decimal("0.004445")
PUBLIC_IPV4_HOUR = Decimal("0.005")
CACHE_T4G_SMALL_HOUR = Decimal("0.0256")  # ElastiCache for Valkey, on-demand
HOURS = Decimal(730)
FEATURES = {
    "CACHE": "redis",
    "CACHE_NODE_TYPE": "cache.t4g.small",
    "WORKERS": "2",
    "WORKER_CPU": "512",
    "WORKER_MEMORY": "1024",
}


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def lines_with_features(tmp_path: Path) -> dict[str, Decimal]:
    (tmp_path / ".env").write_text("APP_NAME=demo\nAWS_REGION=us-east-1\n")
    sets = [arg for name, value in FEATURES.items() for arg in ("--set", f"{name}={value}")]
    done = subprocess.run(
        [str(Path(sys.executable).with_name("dashscale")), "cost", "--json", *sets],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    return {line["item"]: Decimal(str(line["monthly"])) for line in document["lines"]}


def test_cache_nodes_and_worker_tasks_are_lines_of_their_own(tmp_path: Path) -> None:
    lines = lines_with_features(tmp_path)
    worker_hours = 2 * HOURS
    assert lines["ElastiCache node cache.t4g.small (x1)"] == cents(HOURS * CACHE_T4G_SMALL_HOUR)
    assert lines["Fargate vCPU (workers: 2 x 0.5 vCPU)"] == cents(
        worker_hours * Decimal("0.5") * FARGATE_VCPU_HOUR
    )
    assert lines["Fargate memory (workers: 2 x 1 GB)"] == cents(worker_hours * FARGATE_GB_HOUR)
    assert lines["Public IPv4 addresses of the workers (2)"] == cents(
        worker_hours * PUBLIC_IPV4_HOUR
    )
    # the app's own tasks are unchanged by them
    assert lines["Fargate vCPU (3 tasks x 1 vCPU, x86)"] == cents(3 * HOURS * FARGATE_VCPU_HOUR)

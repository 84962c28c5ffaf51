"""`up` and `up --dry-run` show the monthly estimate and, when a change alters it, the
difference from what the run found in AWS (moto's server): the service's desired count, the
task definition's size. Expected figures are worked out by hand from published unit prices
(us-east-1), each line rounded to the cent.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from tests.support.operating import said
from tests.test_up import IMAGE

FARGATE_VCPU_HOUR = Decimal("0.04048")
FARGATE_GB_HOUR = Decimal("0.004445")
PUBLIC_IPV4_HOUR = Decimal("0.005")
ALB_HOUR = Decimal("0.0225")
LCU_HOUR = Decimal("0.008")
LOGS_INGESTED_GB = Decimal("0.50")
LOGS_STORED_GB_MONTH = Decimal("0.03")
ECR_GB_MONTH = Decimal("0.10")
HOSTED_ZONE_MONTH = Decimal("0.50")
HOURS = Decimal(730)


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def tasks(count: int, vcpu: Decimal, gb: Decimal) -> Decimal:
    """The task lines of `count` tasks all month: vCPU, memory, their public addresses."""
    hours = count * HOURS
    return (
        cents(hours * vcpu * FARGATE_VCPU_HOUR)
        + cents(hours * gb * FARGATE_GB_HOUR)
        + cents(hours * PUBLIC_IPV4_HOUR)
    )


def zones_of_default_vpc(boto) -> int:
    subnets = boto("ec2").describe_subnets(
        Filters=[{"Name": "default-for-az", "Values": ["true"]}]
    )["Subnets"]
    return len({subnet["AvailabilityZone"] for subnet in subnets})


def test_up_shows_the_estimate_and_the_difference_a_change_makes(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    first = run("up", "--image", IMAGE)
    assert first.exit_code == 0, first.output
    zones = zones_of_default_vpc(boto)
    assert zones >= 2
    rest = (
        cents(HOURS * ALB_HOUR)
        + cents(HOURS * LCU_HOUR)
        + cents(zones * HOURS * PUBLIC_IPV4_HOUR)  # the load balancer's, one per zone it spans
        + cents(LOGS_INGESTED_GB)
        + cents(Decimal(30 * 24) / HOURS * LOGS_STORED_GB_MONTH)
        + cents(Decimal("0.2") * 30 * ECR_GB_MONTH)
    )
    three = tasks(3, Decimal(1), Decimal(3)) + rest
    assert f"estimated cost: ${three}/month" in said(first.stderr)
    assert "/month: DESIRED_COUNT" not in said(first.stderr)  # nothing ran before

    dry = run("up", "--image", IMAGE, "--set", "DESIRED_COUNT=4", "--dry-run")
    assert dry.exit_code == 0, dry.output
    four = tasks(4, Decimal(1), Decimal(3)) + rest
    assert f"estimated cost: ${four}/month" in said(dry.stderr)
    assert f"+${four - three}/month: DESIRED_COUNT 3 → 4" in said(dry.stderr)

    real = run("up", "--image", IMAGE, "--set", "DESIRED_COUNT=4")
    assert real.exit_code == 0, real.output
    assert f"+${four - three}/month: DESIRED_COUNT 3 → 4" in said(real.stderr)

    again = run("up", "--image", IMAGE, "--set", "DESIRED_COUNT=4")
    assert f"estimated cost: ${four}/month" in said(again.stderr)
    assert "/month: DESIRED_COUNT" not in said(again.stderr)

    smaller = run(
        "up",
        "--image",
        IMAGE,
        "--dry-run",
        "--set",
        "DESIRED_COUNT=4",
        "--set",
        "TASK_CPU=512",
        "--set",
        "TASK_MEMORY=1024",
    )
    small = tasks(4, Decimal("0.5"), Decimal(1)) + rest
    assert f"-${four - small}/month: TASK_CPU 1024 → 512, TASK_MEMORY 3072 → 1024" in said(
        smaller.stderr
    )


def test_the_hosted_zone_counts_only_when_dashscale_makes_it(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    """DOMAIN in a company zone that exists already adds nothing; a zone of its own, $0.50."""
    zones = zones_of_default_vpc(boto)
    without_zone = (
        tasks(3, Decimal(1), Decimal(3))
        + cents(HOURS * ALB_HOUR)
        + cents(HOURS * LCU_HOUR)
        + cents(zones * HOURS * PUBLIC_IPV4_HOUR)
        + cents(LOGS_INGESTED_GB)
        + cents(Decimal(30 * 24) / HOURS * LOGS_STORED_GB_MONTH)
        + cents(Decimal("0.2") * 30 * ECR_GB_MONTH)
    )
    own = run("up", "--image", IMAGE, "--dry-run", "--set", "DOMAIN=sales.example.com")
    assert own.exit_code == 0, own.output
    assert f"estimated cost: ${without_zone + HOSTED_ZONE_MONTH}/month" in said(own.stderr)

    boto("route53").create_hosted_zone(Name="example.com", CallerReference="company")
    company = run("up", "--image", IMAGE, "--dry-run", "--set", "DOMAIN=sales.example.com")
    assert company.exit_code == 0, company.output
    assert f"estimated cost: ${without_zone}/month" in said(company.stderr)

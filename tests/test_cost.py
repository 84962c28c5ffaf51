"""`dashscale cost`, run as users run it, against figures worked out by hand.

Every expected figure is computed here from AWS's published on-demand unit prices, written as
literals below (not read from dashscale's table or estimator): the month is 730 hours, each
line is rounded to the cent (half up) and the total is the sum of the lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import botocore.session
import pytest

from tests.support.operating import said
from tests.support.servers import free_port

DASHSCALE = str(Path(sys.executable).with_name("dashscale"))

# Published on-demand prices (USD), us-east-1
USE1_FARGATE_VCPU_HOUR = Decimal("0.04048")
USE1_FARGATE_GB_HOUR = Decimal("0.004445")
USE1_ALB_HOUR = Decimal("0.0225")
USE1_LOGS_INGESTED_GB = Decimal("0.50")
# eu-west-1 (Ireland), Fargate on ARM (Graviton)
EUW1_FARGATE_ARM_VCPU_HOUR = Decimal("0.03238")
EUW1_FARGATE_ARM_GB_HOUR = Decimal("0.00356")
EUW1_ALB_HOUR = Decimal("0.0252")
EUW1_LOGS_INGESTED_GB = Decimal("0.57")
# the same in both regions
LCU_HOUR = Decimal("0.008")
PUBLIC_IPV4_HOUR = Decimal("0.005")
LOGS_STORED_GB_MONTH = Decimal("0.03")
ECR_GB_MONTH = Decimal("0.10")
SECRET_MONTH = Decimal("0.40")
HOSTED_ZONE_MONTH = Decimal("0.50")  # Route 53, the first 25 zones

HOURS = Decimal(730)


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def cost(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DASHSCALE, "cost", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def estimate(project: Path, *args: str) -> dict:
    done = cost(project, "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def monthly(document: dict) -> dict[str, Decimal]:
    return {line["item"]: Decimal(str(line["monthly"])) for line in document["lines"]}


def write_env(folder: Path, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / ".env").write_text(text)
    return folder


def test_the_guides_default_in_us_east_1_with_a_domain(tmp_path: Path) -> None:
    """3 tasks of 1 vCPU / 3 GB on x86, all month, behind a load balancer in the default VPC
    (us-east-1 has six availability zones: one address each), HTTPS on a zone dashscale makes."""
    project = write_env(tmp_path, "APP_NAME=demo\nAWS_REGION=us-east-1\nDOMAIN=dash.example.com\n")
    task_hours = 3 * HOURS
    expected = {
        "Fargate vCPU (3 tasks x 1 vCPU, x86)": cents(task_hours * 1 * USE1_FARGATE_VCPU_HOUR),
        "Fargate memory (3 tasks x 3 GB, x86)": cents(task_hours * 3 * USE1_FARGATE_GB_HOUR),
        "Public IPv4 addresses of the tasks (3)": cents(task_hours * PUBLIC_IPV4_HOUR),
        "Load balancer": cents(HOURS * USE1_ALB_HOUR),
        "Load balancer capacity units (LCU)": cents(1 * HOURS * LCU_HOUR),
        "Public IPv4 addresses of the load balancer (6, one per zone)": cents(
            6 * HOURS * PUBLIC_IPV4_HOUR
        ),
        "Route 53 hosted zone dash.example.com": HOSTED_ZONE_MONTH,
        "CloudWatch Logs ingestion": cents(1 * USE1_LOGS_INGESTED_GB),
        # 1 GB a month kept 30 days: 30 days of a 730-hour month
        "CloudWatch Logs storage": cents(Decimal(30 * 24) / HOURS * LOGS_STORED_GB_MONTH),
        "ECR image storage": cents(Decimal("0.2") * 30 * ECR_GB_MONTH),
    }
    document = estimate(project)
    assert document["currency"] == "USD"
    assert document["region"] == "us-east-1"
    assert monthly(document) == expected
    total = sum(expected.values())
    assert total == Decimal("174.60")  # 88.65 + 29.20 + 10.95 + 16.43 + 5.84 + 21.90 + ...
    assert Decimal(str(document["total"])) == total
    assumed = {line["item"] for line in document["lines"] if line["assumption"]}
    assert {"Load balancer capacity units (LCU)", "CloudWatch Logs ingestion"} <= assumed
    assert "Fargate vCPU (3 tasks x 1 vCPU, x86)" not in assumed

    text = cost(project)
    assert text.returncode == 0, text.stderr
    assert f"about ${total} a month" in text.stdout
    assert f"as of {document['prices_as_of']}" in text.stdout
    assert "2,190 vCPU-hours × $0.04048" in text.stdout  # noqa: RUF001


def test_an_arm_app_in_eu_west_1_with_secrets(tmp_path: Path) -> None:
    """2 tasks of 0.5 vCPU / 1 GB on ARM, logs kept 14 days, 10 images kept, two Secrets
    Manager secrets (one read for two of its keys), no domain."""
    project = write_env(
        tmp_path,
        "APP_NAME=demo\nAWS_REGION=eu-west-1\nPLATFORM=linux/arm64\nDESIRED_COUNT=2\n"
        "TASK_CPU=512\nTASK_MEMORY=1024\nLOG_RETENTION_DAYS=14\nECR_KEEP_IMAGES=10\n",
    )
    (project / "app.env").write_text(
        "DB_USER=secretsmanager:prod/db:username\nDB_PASSWORD=secretsmanager:prod/db:password\n"
        "API_KEY=secretsmanager:api-key\nGREETING=hello\nTOKEN=ssm:/shared/token\n"
    )
    task_hours = 2 * HOURS
    expected = {
        "Fargate vCPU (2 tasks x 0.5 vCPU, ARM)": cents(
            task_hours * Decimal("0.5") * EUW1_FARGATE_ARM_VCPU_HOUR
        ),
        "Fargate memory (2 tasks x 1 GB, ARM)": cents(task_hours * 1 * EUW1_FARGATE_ARM_GB_HOUR),
        "Public IPv4 addresses of the tasks (2)": cents(task_hours * PUBLIC_IPV4_HOUR),
        "Load balancer": cents(HOURS * EUW1_ALB_HOUR),
        "Load balancer capacity units (LCU)": cents(HOURS * LCU_HOUR),
        "Public IPv4 addresses of the load balancer (3, one per zone)": cents(
            3 * HOURS * PUBLIC_IPV4_HOUR
        ),
        "CloudWatch Logs ingestion": cents(EUW1_LOGS_INGESTED_GB),
        "CloudWatch Logs storage": cents(Decimal(14 * 24) / HOURS * LOGS_STORED_GB_MONTH),
        "ECR image storage": cents(Decimal("0.2") * 10 * ECR_GB_MONTH),
        "Secrets Manager secrets": cents(2 * SECRET_MONTH),
    }
    document = estimate(project)
    assert document["region"] == "eu-west-1"
    assert monthly(document) == expected
    total = sum(expected.values())
    assert total == Decimal("72.91")
    assert Decimal(str(document["total"])) == total


def test_an_office_hours_schedule_and_its_saving(tmp_path: Path) -> None:
    """Mon-Fri 08:00-19:00: 55 hours a week, 55 x 730 / 168 hours a month for the tasks (and
    the load balancer's capacity units); the load balancer and its addresses stay all month."""
    project = write_env(
        tmp_path,
        "APP_NAME=demo\nAWS_REGION=us-east-1\nSCHEDULE=Mon-Fri 08:00-19:00 Europe/Berlin\n",
    )
    awake = Decimal(5 * 11) * HOURS / 168
    fixed = {
        "Load balancer": cents(HOURS * USE1_ALB_HOUR),
        "Public IPv4 addresses of the load balancer (6, one per zone)": cents(
            6 * HOURS * PUBLIC_IPV4_HOUR
        ),
        "CloudWatch Logs ingestion": cents(USE1_LOGS_INGESTED_GB),
        "CloudWatch Logs storage": cents(Decimal(30 * 24) / HOURS * LOGS_STORED_GB_MONTH),
        "ECR image storage": cents(Decimal("0.2") * 30 * ECR_GB_MONTH),
    }

    def sleeping(hours: Decimal) -> dict[str, Decimal]:
        return {
            "Fargate vCPU (3 tasks x 1 vCPU, x86)": cents(3 * hours * USE1_FARGATE_VCPU_HOUR),
            "Fargate memory (3 tasks x 3 GB, x86)": cents(9 * hours * USE1_FARGATE_GB_HOUR),
            "Public IPv4 addresses of the tasks (3)": cents(3 * hours * PUBLIC_IPV4_HOUR),
            "Load balancer capacity units (LCU)": cents(hours * LCU_HOUR),
        }

    expected = {**sleeping(awake), **fixed}
    document = estimate(project)
    assert monthly(document) == expected
    total = sum(expected.values())
    assert total == Decimal("83.53")
    assert Decimal(str(document["total"])) == total
    saving = sum({**sleeping(HOURS), **fixed}.values()) - total
    assert saving == Decimal("90.57")
    assert Decimal(str(document["schedule_saving"])) == saving
    text = cost(project)
    assert f"SCHEDULE saves ${saving} a month" in text.stdout
    assert "238.99 h awake a month" in text.stdout


def test_the_table_covers_every_region_ecs_runs_in_the_standard_partition() -> None:
    """The rule: dashscale estimates the regions of AWS's standard partition where ECS runs
    (botocore's list); any other region is refused with a message (next test)."""
    from dashscale.cost import load_table

    table = load_table()
    regions = set(botocore.session.get_session().get_available_regions("ecs", "aws"))
    assert regions, "botocore lists no ECS region: the check below would prove nothing"
    assert regions <= set(table["regions"])
    prices = (
        "fargate_vcpu_hour",
        "fargate_gb_hour",
        "fargate_arm_vcpu_hour",
        "fargate_arm_gb_hour",
        "alb_hour",
        "alb_lcu_hour",
        "public_ipv4_hour",
        "logs_ingested_gb",
        "logs_stored_gb_month",
        "ecr_stored_gb_month",
        "secret_month",
    )
    for region, values in table["regions"].items():
        assert all(values[key] > 0 for key in prices), region
        assert values["availability_zones"] >= 2, region
        assert values["fargate_arm_vcpu_hour"] < values["fargate_vcpu_hour"], region
    assert table["prices_as_of"][:2] == "20" and len(table["prices_as_of"]) == 10


@pytest.mark.parametrize("region", ["cn-north-1", "us-gov-west-1", "xx-nowhere-1"])
def test_a_region_without_prices_is_refused_with_a_message(tmp_path: Path, region: str) -> None:
    project = write_env(tmp_path, f"APP_NAME=demo\nAWS_REGION={region}\n")
    done = cost(project)
    assert done.returncode == 2, done.stdout
    assert f"no prices for {region}" in said(done.stderr)
    assert "--live" in done.stderr
    assert "$" not in done.stdout


def test_live_falls_back_to_the_table_when_the_price_list_api_cannot_be_reached(
    tmp_path: Path,
) -> None:
    project = write_env(tmp_path, "APP_NAME=demo\nAWS_REGION=us-east-1\n")
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {
        "AWS_ENDPOINT_URL_PRICING": closed,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    table = estimate(project)
    done = cost(project, "--live", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert "cannot reach the AWS Price List API" in said(done.stderr)
    assert "using dashscale's price table of" in said(done.stderr)
    assert json.loads(done.stdout) == table


def test_a_cache_node_type_without_a_price_is_refused_not_guessed() -> None:
    """Cache and worker variables arrive with that feature; the estimator reads them by name,
    so a configuration that has them is estimated (see test_cost_features.py)."""
    from dashscale.cost import table_prices
    from dashscale.errors import ConfigError

    prices = table_prices("eu-west-1")
    with pytest.raises(ConfigError, match=r"no price for cache node type cache\.x9\.huge"):
        prices.cache_node("cache.x9.huge")

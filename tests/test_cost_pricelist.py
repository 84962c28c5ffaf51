"""Reading prices from the AWS Price List API (`dashscale cost --live`, scripts/refresh-prices).

moto has no Price List API, so these tests use botocore's Stubber on a real `pricing` client: it
checks each GetProducts request exactly (service code, filters, paging) and answers with
products in the Price List's own format (each a JSON string: the product's attributes, its
on-demand terms with their price dimensions), as AWS returns them, including the products a
region also lists that are not the one wanted (Windows, ephemeral storage, Network Load
Balancers' usage, tiers).
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from dashscale import pricelist

REPO = Path(__file__).resolve().parent.parent

# One product exactly as GetProducts returns it (eu-west-1, Fargate on x86, per vCPU-hour).
FARGATE_VCPU_EU = json.dumps(
    {
        "product": {
            "productFamily": "Compute",
            "attributes": {
                "memorytype": "perCPU",
                "regionCode": "eu-west-1",
                "servicecode": "AmazonECS",
                "usagetype": "EU-Fargate-vCPU-Hours:perCPU",
                "locationType": "AWS Region",
                "location": "EU (Ireland)",
                "servicename": "Amazon Elastic Container Service",
                "operation": "",
                "cputype": "perCPU",
            },
            "sku": "8CESGAFWKAJ98PME",
        },
        "serviceCode": "AmazonECS",
        "terms": {
            "OnDemand": {
                "8CESGAFWKAJ98PME.JRTCKXETXF": {
                    "priceDimensions": {
                        "8CESGAFWKAJ98PME.JRTCKXETXF.6YS6EN2CT7": {
                            "unit": "hours",
                            "endRange": "Inf",
                            "description": "AWS Fargate - vCPU - EU (Ireland)",
                            "appliesTo": [],
                            "rateCode": "8CESGAFWKAJ98PME.JRTCKXETXF.6YS6EN2CT7",
                            "beginRange": "0",
                            "pricePerUnit": {"USD": "0.0404800000"},
                        }
                    },
                    "sku": "8CESGAFWKAJ98PME",
                    "effectiveDate": "2024-11-01T00:00:00Z",
                    "offerTermCode": "JRTCKXETXF",
                    "termAttributes": {},
                }
            }
        },
        "version": "20241115201155",
        "publicationDate": "2024-11-15T20:11:55Z",
    }
)


def product(
    service: str, usagetype: str, usd: str | list[tuple[str, str]], family: str = "", **extra: str
) -> str:
    """A product in the same format; `usd` may be tiers as (begin range, price)."""
    tiers = [("0", usd)] if isinstance(usd, str) else usd
    sku = f"SKU{abs(hash((service, usagetype, family))) % 10**12:012d}"
    dimensions = {
        f"{sku}.JRTCKXETXF.{index}": {
            "unit": "Hrs",
            "endRange": "Inf",
            "description": usagetype,
            "appliesTo": [],
            "rateCode": f"{sku}.JRTCKXETXF.{index}",
            "beginRange": begin,
            "pricePerUnit": {"USD": price},
        }
        for index, (begin, price) in enumerate(tiers)
    }
    return json.dumps(
        {
            "product": {
                "productFamily": family,
                "attributes": {"usagetype": usagetype, "servicecode": service, **extra},
                "sku": sku,
            },
            "serviceCode": service,
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": dimensions,
                        "sku": sku,
                        "effectiveDate": "2024-11-01T00:00:00Z",
                        "offerTermCode": "JRTCKXETXF",
                        "termAttributes": {},
                    }
                }
            },
            "version": "20241115201155",
            "publicationDate": "2024-11-15T20:11:55Z",
        }
    )


def request(service: str, region: str, token: str | None = None, **extra: str) -> dict[str, Any]:
    filters = {"regionCode": region, **extra}
    params: dict[str, Any] = {
        "ServiceCode": service,
        "Filters": [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters.items()],
        "FormatVersion": "aws_v1",
        "MaxResults": 100,
    }
    if token:
        params["NextToken"] = token
    return params


def answer(*products: str, token: str | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"FormatVersion": "aws_v1", "PriceList": list(products)}
    if token:
        reply["NextToken"] = token
    return reply


def pricing_client() -> Any:
    session = botocore.session.get_session()
    return session.create_client(
        "pricing",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def stub_eu_west_1(
    stubber: Stubber, node_types: tuple[str, ...], vcpu: str = FARGATE_VCPU_EU
) -> None:
    """eu-west-1's answers, in the order dashscale asks: ECS over two pages, then the rest."""
    ecs_first = answer(
        vcpu,
        product("AmazonECS", "EU-Fargate-GB-Hours", "0.0044450000", "Compute"),
        product("AmazonECS", "EU-Fargate-Windows-vCPU-Hours:perCPU", "0.0912500000", "Compute"),
        token="page-2",
    )
    ecs_second = answer(
        product("AmazonECS", "EU-Fargate-ARM-vCPU-Hours:perCPU", "0.0323800000", "Compute"),
        product("AmazonECS", "EU-Fargate-ARM-GB-Hours", "0.0035600000", "Compute"),
        product("AmazonECS", "EU-Fargate-EphemeralStorage-GB-Hours", "0.0001110000", "Compute"),
    )
    stubber.add_response("get_products", ecs_first, request("AmazonECS", "eu-west-1"))
    stubber.add_response(
        "get_products", ecs_second, request("AmazonECS", "eu-west-1", token="page-2")
    )
    family = {"productFamily": "Load Balancer-Application"}
    stubber.add_response(
        "get_products",
        answer(
            product("AWSELB", "EU-LoadBalancerUsage", "0.0252000000", family["productFamily"]),
            product("AWSELB", "EU-LCUUsage", "0.0080000000", family["productFamily"]),
        ),
        request("AWSELB", "eu-west-1", **family),
    )
    stubber.add_response(
        "get_products",
        answer(
            product("AmazonVPC", "EU-PublicIPv4:IdleAddress", "0.0050000000"),
            product("AmazonVPC", "EU-PublicIPv4:InUseAddress", "0.0050000000"),
        ),
        request("AmazonVPC", "eu-west-1"),
    )
    stubber.add_response(
        "get_products",
        answer(
            product("AmazonCloudWatch", "EU-DataProcessingIA-Bytes", "0.2850000000"),
            product("AmazonCloudWatch", "EU-DataProcessing-Bytes", "0.5700000000"),
            product(
                "AmazonCloudWatch",
                "EU-VendedLog-Bytes",
                [("0", "0.5700000000"), ("10", "0.2850000000")],
            ),
            product("AmazonCloudWatch", "EU-TimedStorage-ByteHrs", "0.0300000000"),
        ),
        request("AmazonCloudWatch", "eu-west-1"),
    )
    stubber.add_response(
        "get_products",
        answer(product("AmazonECR", "EU-TimedStorage-ByteHrs", "0.1000000000")),
        request("AmazonECR", "eu-west-1"),
    )
    stubber.add_response(
        "get_products",
        answer(
            product("AWSSecretsManager", "EU-AWSSecretsManager-Secrets", "0.4000000000"),
            product("AWSSecretsManager", "EU-AWSSecretsManager-APIRequest", "0.0000050000"),
        ),
        request("AWSSecretsManager", "eu-west-1"),
    )
    for node_type in node_types:
        stubber.add_response(
            "get_products",
            answer(product("AmazonElastiCache", f"EU-NodeUsage:{node_type}", "0.0180000000")),
            request("AmazonElastiCache", "eu-west-1", instanceType=node_type, cacheEngine="Valkey"),
        )


EXPECTED_EU_WEST_1 = {
    "fargate_vcpu_hour": Decimal("0.04048"),
    "fargate_gb_hour": Decimal("0.004445"),
    "fargate_arm_vcpu_hour": Decimal("0.03238"),
    "fargate_arm_gb_hour": Decimal("0.00356"),
    "alb_hour": Decimal("0.0252"),
    "alb_lcu_hour": Decimal("0.008"),
    "public_ipv4_hour": Decimal("0.005"),
    "logs_ingested_gb": Decimal("0.57"),
    "logs_stored_gb_month": Decimal("0.03"),
    "ecr_stored_gb_month": Decimal("0.1"),
    "secret_month": Decimal("0.4"),
}


def test_a_regions_prices_are_read_from_the_price_list_format() -> None:
    client = pricing_client()
    with Stubber(client) as stubber:
        stub_eu_west_1(stubber, ("cache.t3.micro",))
        prices = pricelist.region_prices(client, "eu-west-1", ("cache.t3.micro",))
        stubber.assert_no_pending_responses()
    nodes = prices.pop("cache_node_hour")
    assert prices == EXPECTED_EU_WEST_1
    assert nodes == {"cache.t3.micro": Decimal("0.018")}


def test_a_price_the_api_does_not_publish_is_left_out_not_taken_from_a_neighbour() -> None:
    client = pricing_client()
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_products",
            answer(
                product("AmazonECS", "EUC1-Fargate-Windows-vCPU-Hours:perCPU", "0.1"),
                product("AmazonECS", "EUC1-Fargate-GB-Hours", "0.0051100000"),
            ),
            request("AmazonECS", "eu-central-1"),
        )
        for service, extra in (
            ("AWSELB", {"productFamily": "Load Balancer-Application"}),
            ("AmazonVPC", {}),
            ("AmazonCloudWatch", {}),
            ("AmazonECR", {}),
            ("AWSSecretsManager", {}),
        ):
            stubber.add_response(
                "get_products", answer(), request(service, "eu-central-1", **extra)
            )
        prices = pricelist.region_prices(client, "eu-central-1")
    assert prices == {"fargate_gb_hour": Decimal("0.00511"), "cache_node_hour": {}}


def test_refresh_rewrites_a_region_dates_the_table_and_marks_it_checked(tmp_path: Path) -> None:
    from dashscale.cost import load_table

    table = load_table()
    table["regions"]["eu-west-1"]["checked"] = False
    table["regions"]["eu-west-1"]["alb_hour"] = Decimal("9.99")  # a stale figure
    client = pricing_client()
    with Stubber(client) as stubber:
        stub_eu_west_1(stubber, pricelist.CACHE_NODE_TYPES)
        table, kept = pricelist.refresh(client, table, ["eu-west-1"], "2031-02-03")
        stubber.assert_no_pending_responses()
    assert kept == []
    assert table["prices_as_of"] == "2031-02-03"
    region = table["regions"]["eu-west-1"]
    assert region["checked"] is True
    assert {key: region[key] for key in EXPECTED_EU_WEST_1} == EXPECTED_EU_WEST_1
    assert region["cache_node_hour"]["cache.t4g.micro"] == Decimal("0.018")
    written = tmp_path / "prices.json"
    written.write_text(pricelist.to_json(table))
    again = json.loads(written.read_text(), parse_float=Decimal)
    assert again["regions"]["eu-west-1"]["alb_hour"] == Decimal("0.0252")
    assert (
        again["regions"]["us-east-1"]
        == json.loads(pricelist.to_json(load_table()), parse_float=Decimal)["regions"]["us-east-1"]
    )


def test_refresh_prices_script_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "refresh-prices"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Price List API" in done.stdout


def test_live_prices_are_used_for_the_estimate_and_dated_today(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cost --live` with the Price List API answering (stubbed: moto has none): the figures
    it gives are the estimate's, the source and today's date are printed with it."""
    from dashscale import cost
    from dashscale.config import load_config
    from dashscale.context import Context
    from dashscale.ui import UI

    (tmp_path / ".env").write_text("APP_NAME=demo\nAWS_REGION=eu-west-1\n")
    ctx = Context(config=load_config(project_dir=tmp_path, environ={}), ui=UI())
    client = pricing_client()
    stubber = Stubber(client)
    # a price of its own, so the test tells the API's figures from the table's
    stub_eu_west_1(stubber, (), FARGATE_VCPU_EU.replace("0.0404800000", "0.0500000000"))
    monkeypatch.setattr(
        cost, "read_live", lambda ctx, nodes: pricelist.region_prices(client, "eu-west-1", nodes)
    )
    with stubber:
        result = cost.for_config(ctx, live=True)
    assert result.prices.source == "AWS Price List API"
    assert result.prices.as_of == datetime.date.today().isoformat()
    vcpu = next(line for line in result.lines if line.item.startswith("Fargate vCPU"))
    assert vcpu.unit_price == Decimal("0.05")
    assert vcpu.monthly == Decimal("109.50")  # 3 tasks x 1 vCPU x 730 h x $0.05
    assert "from the AWS Price List API" in cost.render("demo", result)[0]

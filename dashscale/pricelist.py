"""One region's unit prices read from the AWS Price List API (the `pricing` service), in the
shape of dashscale/prices.json: for `dashscale cost --live` and scripts/refresh-prices.

The API answers `GetProducts` with each product as a JSON string: its attributes (`usagetype`,
`regionCode`, ...) and its on-demand terms, whose price dimensions carry `pricePerUnit.USD`.
A usage type starts with a region prefix (`USE1-`, `EU-`, `EUC1-`), except for some products in
us-east-1; prices are matched on what follows it. The endpoint is in us-east-1 whatever the
region priced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

PRICING_REGION = "us-east-1"

# table key -> (service code, usage type without the region prefix, extra filters)
WANTED: dict[str, tuple[str, str, Mapping[str, str]]] = {
    "fargate_vcpu_hour": ("AmazonECS", "Fargate-vCPU-Hours:perCPU", {}),
    "fargate_gb_hour": ("AmazonECS", "Fargate-GB-Hours", {}),
    "fargate_arm_vcpu_hour": ("AmazonECS", "Fargate-ARM-vCPU-Hours:perCPU", {}),
    "fargate_arm_gb_hour": ("AmazonECS", "Fargate-ARM-GB-Hours", {}),
    "alb_hour": ("AWSELB", "LoadBalancerUsage", {"productFamily": "Load Balancer-Application"}),
    "alb_lcu_hour": ("AWSELB", "LCUUsage", {"productFamily": "Load Balancer-Application"}),
    "public_ipv4_hour": ("AmazonVPC", "PublicIPv4:InUseAddress", {}),
    "logs_ingested_gb": ("AmazonCloudWatch", "DataProcessing-Bytes", {}),
    "logs_stored_gb_month": ("AmazonCloudWatch", "TimedStorage-ByteHrs", {}),
    "ecr_stored_gb_month": ("AmazonECR", "TimedStorage-ByteHrs", {}),
    "secret_month": ("AWSSecretsManager", "AWSSecretsManager-Secrets", {}),
}
CACHE_ENGINE = "Valkey"  # the engine dashscale/steps/cache.py creates
_PREFIX = re.compile(r"^[A-Z]{2,4}[0-9]?-")


def usage(usagetype: str) -> str:
    """The usage type without its region prefix: USE1-Fargate-GB-Hours -> Fargate-GB-Hours."""
    return _PREFIX.sub("", usagetype, count=1)


def filters(region: str, extra: Mapping[str, str]) -> list[dict[str, str]]:
    wanted = {"regionCode": region, **extra}
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in wanted.items()]


def products(client: Any, service: str, region: str, extra: Mapping[str, str]) -> Iterator[dict]:
    """Every product of `service` in `region` (and `extra`), decoded, page after page."""
    request: dict[str, Any] = {
        "ServiceCode": service,
        "Filters": filters(region, extra),
        "FormatVersion": "aws_v1",
        "MaxResults": 100,
    }
    while True:
        answer = client.get_products(**request)
        for text in answer.get("PriceList", []):
            yield json.loads(text) if isinstance(text, str) else text
        token = answer.get("NextToken")
        if not token:
            return
        request["NextToken"] = token


def on_demand_price(product: Mapping[str, Any]) -> Decimal | None:
    """The product's first-tier on-demand price in USD (the tier that starts at 0)."""
    for term in (product.get("terms", {}).get("OnDemand") or {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            if str(dimension.get("beginRange", "0")) == "0":
                return Decimal(dimension["pricePerUnit"]["USD"])
    return None


def region_prices(client: Any, region: str, cache_nodes: tuple[str, ...] = ()) -> dict[str, Any]:
    """The prices of dashscale's table for `region`, read from the Price List API; a price it
    does not publish for the region is left out (the caller says so). One query per service
    and filter set, however many prices come from it."""
    queries: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[str, str]]] = {}
    for key, (service, usagetype, extra) in WANTED.items():
        queries.setdefault((service, tuple(sorted(extra.items()))), []).append((key, usagetype))
    prices: dict[str, Any] = {}
    for (service, extra), wanted in queries.items():
        found = {
            usage(p["product"]["attributes"].get("usagetype", "")): p
            for p in products(client, service, region, dict(extra))
        }
        for key, usagetype in wanted:
            price = on_demand_price(found[usagetype]) if usagetype in found else None
            if price is not None:
                prices[key] = price
    nodes = {}
    for node_type in cache_nodes:
        extra = {"instanceType": node_type, "cacheEngine": CACHE_ENGINE}
        for product in products(client, "AmazonElastiCache", region, extra):
            if usage(product["product"]["attributes"].get("usagetype", "")).startswith("NodeUsage"):
                price = on_demand_price(product)
                if price is not None:
                    nodes[node_type] = price
                    break
    prices["cache_node_hour"] = nodes
    return prices


# ElastiCache node types whose prices the table keeps (others: `dashscale cost --live`).
CACHE_NODE_TYPES = (
    "cache.t4g.micro",
    "cache.t4g.small",
    "cache.t4g.medium",
    "cache.t3.micro",
    "cache.t3.small",
    "cache.t3.medium",
    "cache.m6g.large",
    "cache.m7g.large",
    "cache.r6g.large",
    "cache.r7g.large",
)


def refresh(
    client: Any, table: dict[str, Any], regions: list[str], today: str
) -> tuple[dict[str, Any], list[str]]:
    """The table with `regions` read again from the Price List API and dated `today`; a price
    the API does not give keeps its old figure and leaves the region unchecked. Returns the
    table and a line per price left as it was."""
    kept: list[str] = []
    for region in regions:
        old = dict(table["regions"].get(region) or {})
        read = region_prices(client, region, CACHE_NODE_TYPES)
        missing = [key for key in WANTED if key not in read]
        kept += [f"{region}: {key} not published, kept {old.get(key)}" for key in missing]
        nodes = {**(old.get("cache_node_hour") or {}), **read.pop("cache_node_hour")}
        table["regions"][region] = {**old, **read, "cache_node_hour": nodes}
        table["regions"][region]["checked"] = not missing
    table["prices_as_of"] = today
    return table, kept


def to_json(table: Mapping[str, Any]) -> str:
    """The table as prices.json holds it: decimals as plain JSON numbers."""

    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return (
                int(value)
                if value == value.to_integral_value() and "." not in str(value)
                else float(value)
            )
        raise TypeError(f"not JSON: {value!r}")

    return json.dumps(table, indent=1, default=plain) + "\n"

"""What the app costs a month: `dashscale cost`, and the estimate `up` shows with a change's
difference.

Each line is a quantity times a unit price from AWS's published on-demand prices: the dated
table inside the package (dashscale/prices.json, refreshed by scripts/refresh-prices), or the
Price List API with `--live` (dashscale/pricelist.py). What the configuration cannot tell (log
volume, image size, load balancer capacity units) is a stated assumption, marked as such. A
month is 730 hours (AWS's convention), or the awake hours of SCHEDULE for what sleeps with it.
Amounts are exact decimals, each line rounded to the cent, and the total is the sum of the lines
as printed.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Any

import botocore.exceptions
from botocore.config import Config as BotoConfig

from dashscale import driver, model, pricelist
from dashscale.config import Config
from dashscale.context import Context
from dashscale.errors import ConfigError, DashscaleError

HOURS_PER_MONTH = Decimal(730)
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
CENT = Decimal("0.01")
MIB_PER_GB = Decimal(1024)

# What the configuration cannot tell; each line that uses one says so.
ASSUMED_LCU = Decimal(1)  # load balancer capacity units while awake: a dashboard's traffic
ASSUMED_LOG_GB = Decimal(1)  # log lines ingested a month
ASSUMED_IMAGE_GB = Decimal("0.2")  # one image as ECR stores it (compressed)
COGNITO_FREE_USERS = 10_000


def load_table() -> dict[str, Any]:
    """The dated price table shipped with the package; prices as exact decimals."""
    text = resources.files("dashscale").joinpath("prices.json").read_text()
    return dict(json.loads(text, parse_float=Decimal, parse_int=Decimal))


@dataclass(frozen=True)
class Prices:
    """One region's unit prices, where they come from and as of when."""

    region: str
    currency: str
    as_of: str
    values: Mapping[str, Any]
    checked: bool = True  # False: transcribed, not yet read back from the Price List API
    source: str = "table"

    def __getitem__(self, key: str) -> Decimal:
        return Decimal(self.values[key])

    def cache_node(self, node_type: str) -> Decimal:
        hourly = (self.values.get("cache_node_hour") or {}).get(node_type)
        if hourly is None:
            raise ConfigError(
                f"no price for cache node type {node_type} in {self.region} in dashscale's "
                f"price table (as of {self.as_of})",
                "run `dashscale cost --live` to read it from the AWS Price List API, or look it "
                "up on the ElastiCache pricing page",
            )
        return Decimal(hourly)


def table_prices(region: str, table: Mapping[str, Any] | None = None) -> Prices:
    """The table's prices for `region`; a region without them is refused, never guessed."""
    table = table or load_table()
    values = table["regions"].get(region)
    if values is None:
        raise ConfigError(
            f"dashscale's price table (as of {table['prices_as_of']}) has no prices for "
            f"{region}: it covers the {len(table['regions'])} regions of AWS's standard "
            "partition where ECS runs",
            "run `dashscale cost --live` to read the region's prices from the AWS Price List "
            "API (where it publishes them)",
        )
    values = {**values, **table["global"]}
    return Prices(
        region, table["currency"], table["prices_as_of"], values, bool(values.get("checked"))
    )


@dataclass(frozen=True)
class Sizing:
    """What the estimate depends on: from the configuration, or from what a run found in AWS."""

    desired_count: int
    task_cpu: int  # CPU units (1024 = 1 vCPU)
    task_memory: int  # MiB
    arm: bool
    awake_hours: Decimal  # the tasks' hours in a month: 730, or the schedule's
    schedule: str | None
    autoscaling: str | None  # "MIN..MAX" when the count follows load
    zones: int  # availability zones the load balancer spans
    zones_known: bool  # False: the default VPC's count in the region, assumed
    domain: str | None
    hosted_zone: bool | None  # True: dashscale's; None: not known yet (assumed dashscale's)
    log_retention_days: int
    ecr_keep_images: int
    secrets: int  # Secrets Manager secrets app.env refers to
    cognito: bool
    cache_node_type: str | None
    cache_nodes: int
    workers: int
    worker_cpu: int
    worker_memory: int


def sizing(
    config: Config,
    zones: int | None = None,
    secrets: int = 0,
    hosted_zone: bool | None = None,
) -> Sizing:
    """The sizing the configuration asks for."""
    return Sizing(
        desired_count=config.desired_count,
        task_cpu=config.task_cpu,
        task_memory=config.task_memory,
        arm=config.architecture == "ARM64",
        awake_hours=_awake_hours(config),
        schedule=str(config.schedule) if config.schedule else None,
        autoscaling=f"{config.min_count}..{config.max_count}" if config.autoscaling else None,
        zones=zones if zones is not None else len(config.subnet_ids or ()),
        zones_known=zones is not None or bool(config.subnet_ids),
        domain=config.domain,
        hosted_zone=hosted_zone,
        log_retention_days=config.log_retention_days,
        ecr_keep_images=config.ecr_keep_images,
        secrets=secrets,
        cognito=config.auth == "cognito",
        cache_node_type=config.cache_node_type if config.cache == "redis" else None,
        cache_nodes=1,  # the replication group has one node (dashscale/steps/cache.py)
        workers=config.workers,
        worker_cpu=config.worker_cpu,
        worker_memory=config.worker_memory,
    )


def _awake_hours(config: Config) -> Decimal:
    """730 hours, or the schedule's awake hours in a month of 730 (dashscale/schedule.py)."""
    if config.schedule is None:
        return HOURS_PER_MONTH
    return Decimal(repr(config.schedule.hours_per_month))


@dataclass(frozen=True)
class Line:
    item: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    assumption: str | None = None

    @property
    def monthly(self) -> Decimal:
        return (self.quantity * self.unit_price).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Estimate:
    prices: Prices
    lines: tuple[Line, ...]
    saving: Decimal | None = None  # what SCHEDULE saves against running all month

    @property
    def total(self) -> Decimal:
        return sum((line.monthly for line in self.lines), Decimal(0))

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "currency": self.prices.currency,
            "region": self.prices.region,
            "prices_as_of": self.prices.as_of,
            "lines": [
                {
                    "item": line.item,
                    "quantity": float(line.quantity.quantize(Decimal("0.0001"))),
                    "unit": line.unit,
                    "unit_price": float(line.unit_price),
                    "monthly": float(line.monthly),
                    "assumption": line.assumption,
                }
                for line in self.lines
            ],
            "total": float(self.total),
        }
        if self.saving is not None:
            document["schedule_saving"] = float(self.saving)
        return document


def estimate(size: Sizing, prices: Prices) -> Estimate:
    """The monthly estimate, line by line; with a schedule, its saving against 730 hours."""
    lines = tuple(_lines(size, prices))
    saving = None
    if size.schedule is not None:
        always = dataclasses.replace(size, awake_hours=HOURS_PER_MONTH, schedule=None)
        full = sum((line.monthly for line in _lines(always, prices)), Decimal(0))
        saving = full - sum((line.monthly for line in lines), Decimal(0))
    return Estimate(prices, lines, saving)


def _lines(size: Sizing, prices: Prices) -> list[Line]:
    lines = [*_fargate(size, prices), *_load_balancer(size, prices)]
    if size.domain and size.hosted_zone is not False:
        lines.append(_hosted_zone(size, prices))
    lines += _logs_and_images(size, prices)
    if size.secrets:
        lines.append(
            Line(
                "Secrets Manager secrets",
                Decimal(size.secrets),
                "secret-months",
                prices["secret_month"],
                None,
            )
        )
    if size.cognito:
        lines.append(
            Line(
                "Cognito user pool (sign-in)",
                Decimal(0),
                "monthly active users above the free tier",
                prices["cognito_user_month"],
                f"assumed: within the free tier, the first {COGNITO_FREE_USERS:,} monthly active "
                "users (Essentials and Lite tiers); each user beyond is charged",
            )
        )
    lines += _cache_and_workers(size, prices)
    return lines


def _fargate(size: Sizing, prices: Prices) -> list[Line]:
    arch = "ARM" if size.arm else "x86"
    prefix = "fargate_arm_" if size.arm else "fargate_"
    notes = []
    if size.schedule:
        notes.append(f"SCHEDULE {size.schedule}: {_number(size.awake_hours)} h awake a month")
    if size.autoscaling:
        notes.append(f"autoscaling {size.autoscaling} tasks: estimated at DESIRED_COUNT")
    note = "; ".join(notes) or None
    task_hours = size.desired_count * size.awake_hours
    vcpus = Decimal(size.task_cpu) / 1024
    memory_gb = Decimal(size.task_memory) / MIB_PER_GB
    return [
        Line(
            f"Fargate vCPU ({size.desired_count} tasks x {_number(vcpus)} vCPU, {arch})",
            task_hours * vcpus,
            "vCPU-hours",
            prices[f"{prefix}vcpu_hour"],
            note,
        ),
        Line(
            f"Fargate memory ({size.desired_count} tasks x {_number(memory_gb)} GB, {arch})",
            task_hours * memory_gb,
            "GB-hours",
            prices[f"{prefix}gb_hour"],
            note,
        ),
        Line(
            f"Public IPv4 addresses of the tasks ({size.desired_count})",
            task_hours,
            "address-hours",
            prices["public_ipv4_hour"],
            note,
        ),
    ]


def _load_balancer(size: Sizing, prices: Prices) -> list[Line]:
    zones = size.zones or int(prices["availability_zones"])
    where = (
        None
        if size.zones_known
        else f"assumed: the default VPC's {zones} availability zones in {prices.region}, one "
        "subnet each (set SUBNET_IDS to choose)"
    )
    return [
        Line("Load balancer", HOURS_PER_MONTH, "hours", prices["alb_hour"], None),
        Line(
            "Load balancer capacity units (LCU)",
            ASSUMED_LCU * size.awake_hours,
            "LCU-hours",
            prices["alb_lcu_hour"],
            f"assumed: {_number(ASSUMED_LCU)} LCU on average while the app is awake (an "
            "internal dashboard's traffic)",
        ),
        Line(
            f"Public IPv4 addresses of the load balancer ({zones}, one per zone)",
            zones * HOURS_PER_MONTH,
            "address-hours",
            prices["public_ipv4_hour"],
            where,
        ),
    ]


def _hosted_zone(size: Sizing, prices: Prices) -> Line:
    note = "queries for the alias records of the load balancer are free"
    if size.hosted_zone is None:
        note = (
            f"assumed: dashscale creates the zone (nothing when {size.domain} lies in a zone "
            f"you already have); {note}"
        )
    return Line(
        f"Route 53 hosted zone {size.domain}",
        Decimal(1),
        "zone-months",
        prices["route53_hosted_zone_month"],
        note,
    )


def _logs_and_images(size: Sizing, prices: Prices) -> list[Line]:
    stored = ASSUMED_LOG_GB * size.log_retention_days / DAYS_PER_MONTH
    return [
        Line(
            "CloudWatch Logs ingestion",
            ASSUMED_LOG_GB,
            "GB",
            prices["logs_ingested_gb"],
            f"assumed: {_number(ASSUMED_LOG_GB)} GB of log lines a month",
        ),
        Line(
            "CloudWatch Logs storage",
            stored,
            "GB-months",
            prices["logs_stored_gb_month"],
            f"assumed: {_number(ASSUMED_LOG_GB)} GB a month, kept LOG_RETENTION_DAYS="
            f"{size.log_retention_days} days",
        ),
        Line(
            "ECR image storage",
            ASSUMED_IMAGE_GB * size.ecr_keep_images,
            "GB-months",
            prices["ecr_stored_gb_month"],
            f"assumed: {_number(ASSUMED_IMAGE_GB)} GB an image (compressed), "
            f"ECR_KEEP_IMAGES={size.ecr_keep_images} kept",
        ),
    ]


def _cache_and_workers(size: Sizing, prices: Prices) -> list[Line]:
    lines = []
    if size.cache_node_type:
        lines.append(
            Line(
                f"ElastiCache node {size.cache_node_type} (x{size.cache_nodes})",
                size.cache_nodes * HOURS_PER_MONTH,
                "node-hours",
                prices.cache_node(size.cache_node_type),
                None,
            )
        )
    if size.workers:
        prefix = "fargate_arm_" if size.arm else "fargate_"
        hours = size.workers * HOURS_PER_MONTH
        vcpus = Decimal(size.worker_cpu) / 1024
        memory_gb = Decimal(size.worker_memory) / MIB_PER_GB
        lines += [
            Line(
                f"Fargate vCPU (workers: {size.workers} x {_number(vcpus)} vCPU)",
                hours * vcpus,
                "vCPU-hours",
                prices[f"{prefix}vcpu_hour"],
                None,
            ),
            Line(
                f"Fargate memory (workers: {size.workers} x {_number(memory_gb)} GB)",
                hours * memory_gb,
                "GB-hours",
                prices[f"{prefix}gb_hour"],
                None,
            ),
            Line(
                f"Public IPv4 addresses of the workers ({size.workers})",
                hours,
                "address-hours",
                prices["public_ipv4_hour"],
                "assumed: each worker task gets one, as the app's tasks do",
            ),
        ]
    return lines


def _number(value: Decimal) -> str:
    """A quantity as people write it: 2,190 or 238.99 or 0.2."""
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP).normalize():,f}"


def _price(value: Decimal) -> str:
    """A unit price in full ($0.004445), with at least cents ($0.50)."""
    text = f"{value.normalize():f}"
    return f"${value:.2f}" if len(text.partition(".")[2]) < 2 else f"${text}"


def money(value: Decimal, sign: bool = False) -> str:
    text = f"${abs(value).quantize(CENT, rounding=ROUND_HALF_UP):,}"
    if sign:
        return f"+{text}" if value >= 0 else f"-{text}"
    return text


# --- `dashscale cost` ---------------------------------------------------------------------------


def secrets_manager_count(ctx: Context) -> int:
    """The Secrets Manager secrets app.env refers to (SSM parameters, `dashscale secret`'s
    standard SecureStrings, cost nothing); several fields of one secret count once."""
    from dashscale.steps.appconfig import read_app_env

    return len({ref.secret for ref in read_app_env(ctx).secrets_manager.values()})


def prices_for(ctx: Context, live: bool = False, cache_nodes: tuple[str, ...] = ()) -> Prices:
    """The table's prices, or with `live` the Price List API's (the table when it cannot be
    reached, saying so)."""
    region = ctx.config.aws_region
    if not live:
        return table_prices(region)
    table = load_table()
    try:
        read = read_live(ctx, cache_nodes)
    except (
        botocore.exceptions.BotoCoreError,
        botocore.exceptions.ClientError,
        DashscaleError,
    ) as error:
        ctx.ui.warn(
            f"cannot reach the AWS Price List API ({error}): using dashscale's price table "
            f"of {table['prices_as_of']} instead"
        )
        return table_prices(region, table)
    known = dict(table["regions"].get(region) or {})
    missing = [key for key in pricelist.WANTED if key not in read and key not in known]
    if missing:
        raise ConfigError(
            f"the AWS Price List API has no price for {', '.join(missing)} in {region}",
            "check AWS_REGION; dashscale estimates regions where ECS and the load balancer run",
        )
    nodes = {**(known.get("cache_node_hour") or {}), **read.pop("cache_node_hour", {})}
    values = {**known, **read, "cache_node_hour": nodes, **table["global"]}
    today = datetime.date.today().isoformat()
    return Prices(region, "USD", today, values, True, "AWS Price List API")


LIVE_CONFIG = BotoConfig(
    retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=30
)


def read_live(ctx: Context, cache_nodes: tuple[str, ...]) -> dict[str, Any]:
    """The region's prices from the Price List API, with the run's credentials."""
    from dashscale.aws import Aws

    aws = Aws(pricelist.PRICING_REGION, ctx.config.aws_profile, read_only=True)
    # a price is not worth a long wait: a machine offline falls back to the table in seconds
    client = aws.session.client("pricing", config=LIVE_CONFIG)
    ctx.ui.info("reading prices from the AWS Price List API")
    return pricelist.region_prices(client, ctx.config.aws_region, cache_nodes)


def for_config(ctx: Context, live: bool = False) -> Estimate:
    """The estimate for the configuration as it stands, before any AWS call (but --live's)."""
    size = sizing(ctx.config, secrets=secrets_manager_count(ctx))
    nodes = (size.cache_node_type,) if size.cache_node_type else ()
    return estimate(size, prices_for(ctx, live, nodes))


def show(ctx: Context, result: Estimate, as_json: bool = False) -> None:
    """The estimate on stdout: a line per item, or one JSON document."""
    if as_json:
        text = json.dumps(result.as_json(), indent=2)
        ctx.ui.out.print(text, markup=False, emoji=False, highlight=False, soft_wrap=True)
        return
    for text in render(ctx.names.app, result):
        ctx.ui.result(text)


def render(app: str, result: Estimate) -> list[str]:
    prices = result.prices
    source = "the AWS Price List API" if prices.source != "table" else "dashscale's table"
    lines = [
        f"{app} in {prices.region}: about {money(result.total)} a month ({prices.currency}, "
        f"on-demand prices as of {prices.as_of}, from {source})"
    ]
    for line in result.lines:
        amount = f"{_number(line.quantity)} {line.unit} × {_price(line.unit_price)}"  # noqa: RUF001
        lines.append(f"  {line.item:<60} {money(line.monthly):>10}  {amount}")
        if line.assumption:
            lines.append(f"      * {line.assumption}")
    lines.append(f"  {'total':<60} {money(result.total):>10}  a month")
    if result.saving is not None:
        lines.append(
            f"  SCHEDULE saves {money(result.saving)} a month against running all month "
            f"({_number(HOURS_PER_MONTH)} h)"
        )
    lines.append("  * marks an assumption; taxes, data transfer and support plans not included")
    if not prices.checked:
        lines.append(
            f"  note: the table's prices for {prices.region} are transcribed and not yet read "
            "back from the AWS Price List API: `dashscale cost --live` reads them"
        )
    return lines


# --- in `up` ------------------------------------------------------------------------------------


class UpEstimate(driver.Hooks):
    """`up`'s estimate, after a dry run's plan and after the summary of a run: the monthly
    figure for the configuration, and the difference from what the run found in AWS when a
    change alters it ("+$42.93/month: DESIRED_COUNT 3 → 4")."""

    def __init__(self) -> None:
        self.planned: model.Plan | None = None

    def shown(self, ctx: Context, planned: model.Plan) -> None:
        show_change(ctx, planned)

    def extras(self, ctx: Context, planned: model.Plan) -> list[model.Extra]:
        self.planned = planned  # what was found before the run changed anything
        return []

    def after(self, ctx: Context, done: driver.Done) -> None:
        if self.planned is not None:
            show_change(ctx, self.planned)


def show_change(ctx: Context, planned: model.Plan) -> None:
    """The estimate and a change's difference; an estimate it cannot make is said, never
    failing the run."""
    try:
        wanted = up_sizing(ctx, planned)
        prices = table_prices(ctx.config.aws_region)
        new = estimate(wanted, prices)
        ctx.ui.info(
            f"estimated cost: {money(new.total)}/month at the prices of {prices.as_of} "
            "(`dashscale cost` shows it line by line)"
        )
        current, differences = found_sizing(ctx, planned, wanted)
        if current is None or not differences:
            return
        delta = new.total - estimate(current, prices).total
        ctx.ui.info(f"{money(delta, sign=True)}/month: {', '.join(differences)}")
    except ConfigError as error:
        ctx.ui.info(f"no cost estimate: {error.message}")


def up_sizing(ctx: Context, planned: model.Plan) -> Sizing:
    """The configuration's sizing, with what the run found: the load balancer's zones and
    whether the hosted zone is (or will be) dashscale's."""
    from dashscale.steps.tls import HostedZone

    network = planned.found.get("network")
    zone = planned.found.get(HostedZone.key)
    change = planned.changes.get(HostedZone.key)
    ours = None
    if change is not None and change.action == model.CREATE:
        ours = True
    elif zone is not None:
        ours = bool(zone.owned or zone.made_by_us)
    return sizing(
        ctx.config,
        zones=len(network.subnet_ids) if network is not None else None,
        secrets=secrets_manager_count(ctx),
        hosted_zone=ours,
    )


def found_sizing(
    ctx: Context, planned: model.Plan, wanted: Sizing
) -> tuple[Sizing | None, list[str]]:
    """The sizing the service runs now (its desired count, its task definition's size and
    architecture) and what differs, as "VARIABLE old → new"; None before the first deploy.
    The count is not compared where the configuration does not set it: with autoscaling (the
    scaler's), or at zero with a schedule (asleep)."""
    from dashscale.steps.cluster import TaskDefinition
    from dashscale.steps.service import Service

    service = planned.found.get(Service.key)
    definition = planned.found.get(TaskDefinition.key)
    if not service or not definition:
        return None, []
    count = int(service.get("desiredCount", wanted.desired_count))
    if wanted.autoscaling or (wanted.schedule and count == 0):
        count = wanted.desired_count
    platform = (definition.get("runtimePlatform") or {}).get("cpuArchitecture", "X86_64")
    current = dataclasses.replace(
        wanted,
        desired_count=count,
        task_cpu=int(definition.get("cpu") or wanted.task_cpu),
        task_memory=int(definition.get("memory") or wanted.task_memory),
        arm=platform == "ARM64",
    )
    compared = (
        ("DESIRED_COUNT", current.desired_count, wanted.desired_count),
        ("TASK_CPU", current.task_cpu, wanted.task_cpu),
        ("TASK_MEMORY", current.task_memory, wanted.task_memory),
        ("PLATFORM", _platform(current.arm), _platform(wanted.arm)),
    )
    return current, [model.change(name, old, new) for name, old, new in compared if old != new]


def _platform(arm: bool) -> str:
    return "linux/arm64" if arm else "linux/amd64"

"""The network the app runs in: a VPC, its subnets (two or more availability zones) and the two
security groups of the guide, the load balancer's and the tasks'.

The tasks' group is tighter than the guide's "All TCP": it admits only APP_PORT, and only from
the load balancer's group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from dashscale.aws import already_exists, require_owned, translated
from dashscale.context import Context
from dashscale.errors import AwsError, ConfigError
from dashscale.plan import NEW, change, is_new

NETWORK_HINT = (
    "set VPC_ID and SUBNET_IDS in .env (subnets in two or more availability zones, with a route "
    "to an internet gateway), or create a default VPC with `aws ec2 create-default-vpc`"
)

# (protocol, from port, to port, source): source is a CIDR block or a security group id.
Rule = tuple[str, int, int, str]


@dataclass(frozen=True)
class Outcome:
    """One line of a step's report: what a resource is and what the run did to it."""

    kind: str
    name: str
    state: str  # found, created, updated, kept
    detail: str = ""


def report(
    ctx: Context, outcomes: list[Outcome], kind: str, name: str, state: str, detail: str = ""
) -> None:
    ctx.ui.resource(kind, name, state, detail)
    outcomes.append(Outcome(kind, name, state, detail))


@dataclass(frozen=True)
class Network:
    vpc_id: str
    subnet_ids: tuple[str, ...]


@dataclass(frozen=True)
class SecurityGroups:
    alb: str  # group id of APP-alb-sg
    tasks: str  # group id of APP-from-alb-sg


# --- VPC and subnets ------------------------------------------------------------------------


def find_network(ctx: Context) -> Network:
    """VPC_ID and SUBNET_IDS when set, otherwise the default VPC and one default subnet per
    availability zone. Makes no change."""
    ec2 = ctx.client("ec2")
    with translated("looking up the VPC and its subnets"):
        if ctx.config.vpc_id:
            vpc_id = ctx.config.vpc_id
            subnets = _describe_subnets(ec2, list(ctx.config.subnet_ids or ()))
            wrong = [s["SubnetId"] for s in subnets if s["VpcId"] != vpc_id]
            if wrong:
                raise ConfigError(
                    f"SUBNET_IDS: {', '.join(wrong)} not in VPC_ID={vpc_id}",
                    "list subnets of that VPC only (`aws ec2 describe-subnets`)",
                )
        else:
            vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
            if not vpcs:
                raise ConfigError(
                    f"this account has no default VPC in {ctx.config.aws_region}", NETWORK_HINT
                )
            vpc_id = vpcs[0]["VpcId"]
            subnets = ec2.describe_subnets(
                Filters=[
                    {"Name": "vpc-id", "Values": [vpc_id]},
                    {"Name": "default-for-az", "Values": ["true"]},
                ]
            )["Subnets"]
    by_zone: dict[str, str] = {}
    for subnet in sorted(subnets, key=lambda s: (s["AvailabilityZone"], s["SubnetId"])):
        by_zone.setdefault(subnet["AvailabilityZone"], subnet["SubnetId"])
    if len(by_zone) < 2:
        where = "SUBNET_IDS are" if ctx.config.vpc_id else f"the default VPC {vpc_id} has subnets"
        raise ConfigError(
            f"{where} in {len(by_zone)} availability zone(s); the load balancer needs two or more",
            NETWORK_HINT,
        )
    if ctx.config.vpc_id:  # the user's choice, in the user's order
        return Network(vpc_id, tuple(ctx.config.subnet_ids or ()))
    return Network(vpc_id, tuple(by_zone.values()))


def _describe_subnets(ec2: Any, subnet_ids: list[str]) -> list[dict[str, Any]]:
    try:
        return list(ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"])
    except botocore.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") == "InvalidSubnetID.NotFound":
            raise ConfigError(
                f"SUBNET_IDS: {error.response['Error'].get('Message', 'a subnet does not exist')}",
                "check SUBNET_IDS against `aws ec2 describe-subnets` in AWS_REGION",
            ) from None
        raise


# --- security groups ------------------------------------------------------------------------


def find_security_group(ctx: Context, name: str, vpc_id: str) -> dict[str, Any] | None:
    """The group with this exact name in the VPC, checked to be this app's; None when missing."""
    with translated(f"looking up security group {name}"):
        groups = ctx.client("ec2").describe_security_groups(
            Filters=[
                {"Name": "group-name", "Values": [name]},
                {"Name": "vpc-id", "Values": [vpc_id]},
            ]
        )["SecurityGroups"]
    if not groups:
        return None
    require_owned(ctx.names, "security group", name, groups[0].get("Tags"))
    return dict(groups[0])


def find_security_groups(ctx: Context, network: Network) -> SecurityGroups | None:
    """Both groups when both exist; None otherwise. Either one not this app's raises."""
    alb = find_security_group(ctx, ctx.names.alb_sg, network.vpc_id)
    tasks = find_security_group(ctx, ctx.names.task_sg, network.vpc_id)
    if alb is None or tasks is None:
        return None
    return SecurityGroups(alb["GroupId"], tasks["GroupId"])


def desired_alb_rules() -> set[Rule]:
    return {("tcp", 80, 80, "0.0.0.0/0"), ("tcp", 443, 443, "0.0.0.0/0")}


def desired_task_rules(ctx: Context, alb_group_id: str) -> set[Rule]:
    port = ctx.config.app_port
    return {("tcp", port, port, alb_group_id)}


def ingress_rules(group: dict[str, Any]) -> set[Rule]:
    """A group's inbound rules, one tuple per source."""
    return set(rule_descriptions(group))


def rule_descriptions(group: dict[str, Any]) -> dict[Rule, str | None]:
    """A group's inbound rules with their descriptions."""
    rules: dict[Rule, str | None] = {}
    for permission in group.get("IpPermissions", []):
        protocol = str(permission.get("IpProtocol"))
        low = int(permission.get("FromPort", -1))
        high = int(permission.get("ToPort", -1))
        for cidr in permission.get("IpRanges", []):
            rules[(protocol, low, high, cidr["CidrIp"])] = cidr.get("Description")
        for cidr in permission.get("Ipv6Ranges", []):
            rules[(protocol, low, high, cidr["CidrIpv6"])] = cidr.get("Description")
        for pair in permission.get("UserIdGroupPairs", []):
            rules[(protocol, low, high, pair["GroupId"])] = pair.get("Description")
        for prefix in permission.get("PrefixListIds", []):
            rules[(protocol, low, high, prefix["PrefixListId"])] = prefix.get("Description")
    return rules


def _permission(rule: Rule, description: str | None = None) -> dict[str, Any]:
    protocol, low, high, source = rule
    permission: dict[str, Any] = {"IpProtocol": protocol, "FromPort": low, "ToPort": high}
    described = {"Description": description} if description else {}
    if source.startswith("sg-"):
        permission["UserIdGroupPairs"] = [{"GroupId": source, **described}]
    elif source.startswith("pl-"):
        permission["PrefixListIds"] = [{"PrefixListId": source}]
    elif ":" in source:
        permission["Ipv6Ranges"] = [{"CidrIpv6": source, **described}]
    else:
        permission["IpRanges"] = [{"CidrIp": source, **described}]
    return permission


def ensure_security_groups(
    ctx: Context, network: Network, outcomes: list[Outcome]
) -> SecurityGroups:
    """Both groups, created when missing, their inbound rules made exactly the desired ones."""
    alb_id = _ensure_group(
        ctx,
        network,
        ctx.names.alb_sg,
        f"{ctx.names.app} load balancer: HTTP and HTTPS from anywhere",
        lambda _: desired_alb_rules(),
        outcomes,
    )
    tasks_id = _ensure_group(
        ctx,
        network,
        ctx.names.task_sg,
        f"{ctx.names.app} tasks: APP_PORT from the load balancer only",
        lambda _: desired_task_rules(ctx, alb_id),
        outcomes,
    )
    return SecurityGroups(alb_id, tasks_id)


def _ensure_group(
    ctx: Context,
    network: Network,
    name: str,
    description: str,
    rules_for: Callable[[str], set[Rule]],
    outcomes: list[Outcome],
) -> str:
    ec2 = ctx.client("ec2")
    group = find_security_group(ctx, name, network.vpc_id)
    state = "found"
    if group is None and ctx.dry_run:
        desired_rules = sorted(rules_for(NEW))
        detail = ", ".join(_describe_rule(rule, ctx) for rule in desired_rules)
        report(ctx, outcomes, "security group", name, "created", detail)
        return NEW
    if group is None:
        with translated(f"creating security group {name}"):
            try:
                ec2.create_security_group(
                    GroupName=name,
                    Description=description,
                    VpcId=network.vpc_id,
                    TagSpecifications=[
                        {"ResourceType": "security-group", "Tags": ctx.names.tags()}
                    ],
                )
            except botocore.exceptions.ClientError as error:
                if not already_exists(error, "InvalidGroup.Duplicate"):
                    raise
        group = find_security_group(ctx, name, network.vpc_id)
        if group is None:
            raise AwsError(
                f"security group {name} was created but cannot be found",
                "re-run the same command in a minute",
            )
        state = "created"
    group_id = str(group["GroupId"])
    desired: set[Rule] = rules_for(group_id)
    current = ingress_rules(group)
    missing = sorted(desired - current)
    extra = sorted(current - desired)
    if ctx.dry_run:
        state = "updated" if missing or extra else "found"
        detail = change(
            "inbound rules",
            [_describe_rule(rule, ctx) for rule in sorted(current)],
            [_describe_rule(rule, ctx) for rule in sorted(desired)],
        )
        report(ctx, outcomes, "security group", name, state, detail if missing or extra else "")
        return group_id
    with translated(f"setting the inbound rules of security group {name}"):
        if missing:
            try:
                ec2.authorize_security_group_ingress(
                    GroupId=group_id,
                    IpPermissions=[_permission(rule, "dashscale") for rule in missing],
                )
            except botocore.exceptions.ClientError as error:
                if not already_exists(error, "InvalidPermission.Duplicate"):
                    raise
        if extra:
            # AWS ignores a description in a revoke; moto requires the rule's own to match it
            described = rule_descriptions(group)
            ec2.revoke_security_group_ingress(
                GroupId=group_id,
                IpPermissions=[_permission(rule, described.get(rule)) for rule in extra],
            )
    if state == "found" and (missing or extra):
        state = "updated"
    detail = ", ".join(_describe_rule(rule, ctx) for rule in sorted(desired))
    report(ctx, outcomes, "security group", name, state, f"{group_id}: {detail}")
    return group_id


def _describe_rule(rule: Rule, ctx: Context) -> str:
    _, low, high, source = rule
    ports = str(low) if low == high else f"{low}-{high}"
    if source == "0.0.0.0/0":
        source = "anywhere"
    elif source.startswith("sg-") or is_new(source):
        source = ctx.names.alb_sg
    return f"TCP {ports} from {source}"

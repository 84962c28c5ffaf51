"""The network the app runs in: a VPC, its subnets (two or more availability zones) and the two
security groups of the guide, the load balancer's and the tasks'.

The tasks' group is tighter than the guide's "All TCP": it admits only APP_PORT, and only from
the load balancer's group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from dashscale import model
from dashscale.aws import already_exists, create_or_find, require_owned, translated
from dashscale.context import Context
from dashscale.errors import ConfigError
from dashscale.inventory import retrying
from dashscale.model import (
    CREATE,
    DELETE,
    FOREIGN,
    NEW,
    UPDATE,
    Change,
    Item,
    Reading,
    Resource,
    Survey,
    compare,
    create,
    is_new,
    not_ours,
)

NETWORK_HINT = (
    "set VPC_ID and SUBNET_IDS in .env (subnets in two or more availability zones, with a route "
    "to an internet gateway), or create a default VPC with `aws ec2 create-default-vpc`"
)

# (protocol, from port, to port, source): source is a CIDR block or a security group id.
Rule = tuple[str, int, int, str]


@dataclass(frozen=True)
class Network:
    vpc_id: str
    subnet_ids: tuple[str, ...]


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
            # Default subnets exist only in the default VPC: one call finds both.
            subnets = ec2.describe_subnets(
                Filters=[{"Name": "default-for-az", "Values": ["true"]}]
            )["Subnets"]
            if not subnets:
                vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])
                if not vpcs["Vpcs"]:
                    raise ConfigError(
                        f"this account has no default VPC in {ctx.config.aws_region}",
                        NETWORK_HINT,
                    )
                vpc_id = vpcs["Vpcs"][0]["VpcId"]
            else:
                vpc_id = sorted(subnets, key=lambda s: s["SubnetId"])[0]["VpcId"]
                subnets = [s for s in subnets if s["VpcId"] == vpc_id]
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
    return SecurityGroupsReading().groups(ctx, vpc_id).get(name)


class SecurityGroupsReading(Reading):
    """The app's groups in one call (the cache's too): name -> group, each checked to be this
    app's."""

    find_calls = ("ec2:DescribeSecurityGroups",)

    key = "security groups"
    reads = ("network",)

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        return self.groups(ctx, found["network"].vpc_id)

    def groups(self, ctx: Context, vpc_id: str) -> dict[str, dict[str, Any]]:
        names = [ctx.names.alb_sg, ctx.names.task_sg, ctx.names.cache_sg]
        with translated("looking up the security groups"):
            groups = ctx.client("ec2").describe_security_groups(
                Filters=[
                    {"Name": "group-name", "Values": names},
                    {"Name": "vpc-id", "Values": [vpc_id]},
                ]
            )["SecurityGroups"]
        by_name = {}
        for group in groups:
            require_owned(ctx.names, "security group", group["GroupName"], group.get("Tags"))
            by_name[group["GroupName"]] = dict(group)
        return by_name


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


class SecurityGroup(Resource):
    """A security group of the app with exactly the desired inbound rules."""

    survey_calls = ("ec2:DescribeSecurityGroups",)
    delete_calls = ("ec2:DeleteSecurityGroup",)

    calls = {
        CREATE: (
            "ec2:CreateSecurityGroup",
            "ec2:CreateTags",
            "ec2:AuthorizeSecurityGroupIngress",
        ),
        UPDATE: (
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupIngress",
        ),
    }
    kind = "security group"
    reads = ("security groups",)
    source_named = "alb_sg"  # the attribute of ctx.names naming the group its rules admit

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        return found["security groups"].get(self.name(ctx))

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        """Every group of this exact name, in whatever VPC it is (VPC_ID may have changed)."""
        name = self.name(ctx)
        with translated("looking up the security groups"):
            pages = (
                ctx.client("ec2")
                .get_paginator("describe_security_groups")
                .paginate(Filters=[{"Name": "group-name", "Values": [name]}])
            )
            groups = [g for page in pages for g in page["SecurityGroups"] if g["GroupName"] == name]
        items = []
        for group in sorted(groups, key=lambda g: g["GroupId"]):
            label = f"{name} ({group['GroupId']})"
            if ctx.names.owns(group.get("Tags")):
                reason = f"in {group['VpcId']}"
                items.append(Item(self.kind, label, DELETE, reason, {"resource": group}))
            else:
                items.append(Item(self.kind, label, FOREIGN, not_ours(ctx)))
        return items

    missing_shown = True
    # Both groups go once the load balancer is gone (the tasks' one too, though nothing of the
    # load balancer uses it): the network interfaces of both are released late, and one
    # retrying wait for them after the load balancer costs nothing extra.
    deleted_after = ("load balancer",)

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        group = item.data.get("resource") or {}
        return self.name(ctx), str(group.get("GroupId", ""))

    def delete(self, ctx: Context, item: Item) -> str:
        """Network interfaces of the load balancer and the tasks hold a group for minutes after
        they are deleted: retried while AWS answers DependencyViolation."""
        ec2 = ctx.client("ec2")
        group_id = item.data["resource"]["GroupId"]
        return retrying(
            ctx,
            f"deleting security group {item.name}",
            lambda: ec2.delete_security_group(GroupId=group_id),
            ("DependencyViolation",),
            gone="InvalidGroup.NotFound",
        )

    def description(self, ctx: Context) -> str:
        raise NotImplementedError

    def lookup(self, ctx: Context, vpc_id: str) -> dict[str, Any] | None:
        """The group in the VPC, checked to be this app's; None when missing."""
        return find_security_group(ctx, self.name(ctx), vpc_id)

    def rules(self, ctx: Context, refs: Mapping[str, Any]) -> set[Rule]:
        raise NotImplementedError

    def ref(self, ctx: Context, current: dict[str, Any] | None, change: Change) -> str:
        return str(current["GroupId"]) if current else NEW

    def plan(self, ctx: Context, current: dict[str, Any] | None, refs: Mapping[str, Any]) -> Change:
        desired = sorted(self.rules(ctx, refs))
        shown = ", ".join(_describe_rule(rule, ctx, self.source_named) for rule in desired)
        if current is None:
            return create(self.kind, self.name(ctx), shown)
        have = sorted(ingress_rules(current))
        differing = {}
        if set(have) != set(desired):
            differing["inbound rules"] = (
                [_describe_rule(rule, ctx, self.source_named) for rule in have],
                [_describe_rule(rule, ctx, self.source_named) for rule in desired],
            )
        return compare(self.kind, self.name(ctx), differing, f"{current['GroupId']}: {shown}")

    def apply(
        self, ctx: Context, current: dict[str, Any] | None, refs: Mapping[str, Any], change: Change
    ) -> str:
        ec2 = ctx.client("ec2")
        name = self.name(ctx)
        network: Network = refs["network"]
        if current is None:
            with translated(f"creating security group {name}"):
                current = create_or_find(
                    lambda: ec2.create_security_group(
                        GroupName=name,
                        Description=self.description(ctx),
                        VpcId=network.vpc_id,
                        TagSpecifications=[
                            {"ResourceType": "security-group", "Tags": ctx.names.tags()}
                        ],
                    ),
                    "InvalidGroup.Duplicate",
                    lambda: self.lookup(ctx, network.vpc_id),
                    f"security group {name}",
                )
        group_id = str(current["GroupId"])
        desired = self.rules(ctx, refs)
        have = ingress_rules(current)
        missing, extra = sorted(desired - have), sorted(have - desired)
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
                described = rule_descriptions(current)
                ec2.revoke_security_group_ingress(
                    GroupId=group_id,
                    IpPermissions=[_permission(rule, described.get(rule)) for rule in extra],
                )
        return group_id


class AlbSecurityGroup(SecurityGroup):
    """The load balancer's group: with AUTH it also keeps outbound HTTPS open."""

    calls = {
        **SecurityGroup.calls,
        UPDATE: (*SecurityGroup.calls[UPDATE], "ec2:AuthorizeSecurityGroupEgress"),
    }
    key = "load balancer security group"
    named = "alb_sg"

    def description(self, ctx: Context) -> str:
        return f"{ctx.names.app} load balancer: HTTP and HTTPS from anywhere"

    def rules(self, ctx: Context, refs: Mapping[str, Any]) -> set[Rule]:
        return desired_alb_rules()

    def plan(self, ctx: Context, current: dict[str, Any] | None, refs: Mapping[str, Any]) -> Change:
        """With AUTH, the load balancer calls the identity provider over HTTPS: outbound 443
        must be open (a new group's default all-outbound rule is)."""
        decided = super().plan(ctx, current, refs)
        if current is None or ctx.config.auth == "none" or reaches_https(current):
            return decided
        return Change(
            decided.kind,
            decided.name,
            UPDATE,
            (*decided.differences, model.change(OUTBOUND, "(none)", "TCP 443 to anywhere")),
            decided.detail,
            decided.fields | {OUTBOUND},
        )

    def apply(
        self, ctx: Context, current: dict[str, Any] | None, refs: Mapping[str, Any], change: Change
    ) -> str:
        group_id = super().apply(ctx, current, refs, change)
        if OUTBOUND in change.fields:
            with translated(f"opening outbound HTTPS of security group {self.name(ctx)}"):
                ctx.client("ec2").authorize_security_group_egress(
                    GroupId=group_id, IpPermissions=[_permission(HTTPS_OUT, "dashscale sign-in")]
                )
        return group_id


OUTBOUND = "outbound rules"
HTTPS_OUT: Rule = ("tcp", 443, 443, "0.0.0.0/0")


def reaches_https(group: dict[str, Any]) -> bool:
    """True when an outbound rule lets the group reach any address on TCP 443."""
    for permission in group.get("IpPermissionsEgress", []):
        protocol = str(permission.get("IpProtocol"))
        low, high = int(permission.get("FromPort", 0)), int(permission.get("ToPort", 65535))
        anywhere = any(r.get("CidrIp") == "0.0.0.0/0" for r in permission.get("IpRanges", []))
        if anywhere and (protocol == "-1" or (protocol == "tcp" and low <= 443 <= high)):
            return True
    return False


class TaskSecurityGroup(SecurityGroup):
    key = "task security group"
    needs = (AlbSecurityGroup.key,)
    named = "task_sg"

    def description(self, ctx: Context) -> str:
        return f"{ctx.names.app} tasks: APP_PORT from the load balancer only"

    def rules(self, ctx: Context, refs: Mapping[str, Any]) -> set[Rule]:
        return desired_task_rules(ctx, refs[AlbSecurityGroup.key])


class NetworkReading(Reading):
    """The VPC and subnets (VPC_ID and SUBNET_IDS, or the default VPC)."""

    find_calls = ("ec2:DescribeSubnets", "ec2:DescribeVpcs")

    key = "network"

    finder = staticmethod(find_network)


def _describe_rule(rule: Rule, ctx: Context, source_named: str = "alb_sg") -> str:
    _, low, high, source = rule
    ports = str(low) if low == high else f"{low}-{high}"
    if source == "0.0.0.0/0":
        source = "anywhere"
    elif source.startswith("sg-") or is_new(source):
        source = str(getattr(ctx.names, source_named))
    return f"TCP {ports} from {source}"

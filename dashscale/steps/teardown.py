"""`dashscale teardown`: remove everything the app costs, in the order real AWS demands.

First a survey (reads only) that decides, for every resource of the app, delete or keep; then,
once confirmed, the deletions in dependency order, each waiting or retrying where AWS needs time;
last, a second survey that proves nothing meant for deletion is left.

Only this app's resources: exact names plus the dashscale:app tag. A same-named resource without
the tag is reported and left alone.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions
import click

from dashscale.aws import error_code, translated, wait_until
from dashscale.context import Context
from dashscale.errors import ConfigError, DashscaleError, NotOwnedError
from dashscale.steps import alb, cluster, network, push, tls
from dashscale.ui import is_interactive

DELETE, KEEP, FOREIGN = "delete", "keep", "foreign"
ZONE_RECORD_TYPES_OF_AWS = ("SOA", "NS")


@dataclass
class Item:
    kind: str
    name: str
    action: str  # delete, keep or foreign
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Survey:
    items: list[Item] = field(default_factory=list)

    def add(self, kind: str, name: str, action: str, reason: str = "", **data: Any) -> Item:
        item = Item(kind, name, action, reason, data)
        self.items.append(item)
        return item

    def get(self, kind: str) -> list[Item]:
        return [i for i in self.items if i.kind == kind and i.action == DELETE]

    @property
    def to_delete(self) -> list[Item]:
        return [i for i in self.items if i.action == DELETE]


class _Foreign(Exception):
    pass


def _owned(find: Callable[[], Any]) -> Any:
    """A finder's answer, or _Foreign when the resource exists but is not this app's."""
    try:
        return find()
    except NotOwnedError as error:
        raise _Foreign(error.message) from None


# --- survey (reads only) ------------------------------------------------------------------------


def survey(ctx: Context, everything: bool) -> Survey:
    found = Survey()
    names = ctx.names
    _survey_ecs(ctx, found)
    lb = _survey_load_balancer(ctx, found)
    _survey_target_group(ctx, found)
    certificate = _survey_certificate(ctx, found)
    _survey_records(ctx, found, lb, certificate, everything)
    _survey_security_groups(ctx, found)
    _survey(
        found,
        "IAM role",
        names.execution_role,
        lambda: cluster.find_execution_role(ctx),
        keep_reason=None,
    )
    _survey(
        found,
        "ECR repository",
        names.repository,
        lambda: push.find_repository(ctx),
        keep_reason=None if everything else "holds your images; --all removes it",
    )
    _survey(
        found,
        "log group",
        names.log_group,
        lambda: cluster.find_log_group(ctx),
        keep_reason=None if everything else "holds your logs; --all removes it",
    )
    return found


def _survey(
    found: Survey,
    kind: str,
    name: str,
    find: Callable[[], Any],
    keep_reason: str | None,
    **extra: Any,
) -> Any:
    try:
        resource = _owned(find)
    except _Foreign as foreign:
        found.add(kind, name, FOREIGN, str(foreign))
        return None
    if resource is None:
        return None
    found.add(
        kind, name, KEEP if keep_reason else DELETE, keep_reason or "", resource=resource, **extra
    )
    return resource


def _survey_ecs(ctx: Context, found: Survey) -> None:
    names = ctx.names
    _survey(found, "ECS service", names.service, lambda: alb.find_service(ctx), None)
    ecs = ctx.client("ecs")
    with translated("listing task definition revisions"):
        revisions: dict[str, list[str]] = {}
        for status in ("ACTIVE", "INACTIVE"):
            pages = ecs.get_paginator("list_task_definitions").paginate(
                familyPrefix=names.taskdef, status=status
            )
            # familyPrefix matches prefixes: keep this exact family only
            revisions[status] = [
                arn
                for page in pages
                for arn in page["taskDefinitionArns"]
                if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] == names.taskdef
            ]
        arns = revisions["ACTIVE"] + revisions["INACTIVE"]
        tags = (
            ecs.describe_task_definition(taskDefinition=arns[-1], include=["TAGS"]).get("tags")
            if arns
            else None
        )
    if arns and names.owns(tags):
        found.add(
            "task definition",
            f"{names.taskdef} ({len(arns)} revisions)",
            DELETE,
            arns=arns,
            active=revisions["ACTIVE"],
        )
    elif arns:
        found.add(
            "task definition", names.taskdef, FOREIGN, f"not tagged dashscale:app={names.app}"
        )
    _survey(found, "ECS cluster", names.cluster, lambda: cluster.find_cluster(ctx), None)


def _survey_load_balancer(ctx: Context, found: Survey) -> dict[str, Any] | None:
    lb = _survey(found, "load balancer", ctx.names.alb, lambda: alb.find_load_balancer(ctx), None)
    if lb is not None:
        with translated("listing the load balancer's listeners"):
            listeners = ctx.client("elbv2").describe_listeners(
                LoadBalancerArn=lb["LoadBalancerArn"]
            )["Listeners"]
        for listener in sorted(listeners, key=lambda item: item["Port"]):
            found.add(
                "listener",
                f"{listener['Protocol']} :{listener['Port']}",
                DELETE,
                arn=listener["ListenerArn"],
            )
    return lb


def _survey_target_group(ctx: Context, found: Survey) -> None:
    _survey(found, "target group", ctx.names.target_group, lambda: alb.find_target_group(ctx), None)


def _tagged_certificates(ctx: Context) -> list[dict[str, Any]]:
    """This app's certificates, whatever their domain (DOMAIN may have changed or been unset)."""
    acm = ctx.client("acm")
    mine = []
    with translated("looking up the app's certificates"):
        for page in acm.get_paginator("list_certificates").paginate():
            for summary in page.get("CertificateSummaryList", []):
                arn = summary["CertificateArn"]
                tags = acm.list_tags_for_certificate(CertificateArn=arn).get("Tags", [])
                if ctx.names.owns(tags):
                    mine.append(acm.describe_certificate(CertificateArn=arn)["Certificate"])
    return mine


def _survey_certificate(ctx: Context, found: Survey) -> list[dict[str, Any]]:
    certificates = _tagged_certificates(ctx)
    for certificate in certificates:
        found.add(
            "certificate",
            certificate["DomainName"],
            DELETE,
            certificate["Status"].lower(),
            arn=certificate["CertificateArn"],
        )
    return certificates


def _alb_dns_pattern(ctx: Context) -> re.Pattern[str]:
    # The load balancer may be gone already (an interrupted teardown): recognise its DNS name.
    return re.compile(
        rf"(dualstack\.)?{re.escape(ctx.names.alb)}-[0-9a-z]+\."
        rf"{re.escape(ctx.config.aws_region)}\.elb\.amazonaws\.com\.?",
    )


def _survey_records(
    ctx: Context,
    found: Survey,
    lb: dict[str, Any] | None,
    certificates: list[dict[str, Any]],
    everything: bool,
) -> None:
    domains = {ctx.config.domain} if ctx.config.domain else set()
    domains |= {c["DomainName"] for c in certificates}
    for domain in sorted(domains):
        zone = tls.find_zone(ctx, domain)
        if zone is None:
            continue
        records = _zone_records(ctx, zone.id)
        ours = _our_records(ctx, domain, records, lb, certificates)
        for record in ours:
            found.add(
                "DNS record",
                f"{record['Name'].rstrip('.')} {record['Type']}",
                DELETE,
                zone=zone.id,
                record=record,
            )
        theirs = [r for r in records if r not in ours and r["Type"] not in ZONE_RECORD_TYPES_OF_AWS]
        if not zone.owned:
            found.add("hosted zone", domain, KEEP, "existed before dashscale; never deleted")
        elif not everything:
            found.add("hosted zone", domain, KEEP, "holds your domain's DNS; --all removes it")
        elif theirs:
            found.add(
                "hosted zone",
                domain,
                KEEP,
                f"holds {len(theirs)} record(s) that are not dashscale's",
            )
        else:
            found.add("hosted zone", domain, DELETE, zone=zone.id)


def _zone_records(ctx: Context, zone_id: str) -> list[dict[str, Any]]:
    route53 = ctx.client("route53")
    records: list[dict[str, Any]] = []
    with translated("listing the zone's records"):
        for page in route53.get_paginator("list_resource_record_sets").paginate(
            HostedZoneId=zone_id
        ):
            records += page["ResourceRecordSets"]
    return records


def _our_records(
    ctx: Context,
    domain: str,
    records: list[dict[str, Any]],
    lb: dict[str, Any] | None,
    certificates: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Alias A records of DOMAIN and www.DOMAIN that point at this app's load balancer, and the
    validation records of this app's certificates that no other certificate still needs."""
    pattern = _alb_dns_pattern(ctx)
    lb_dns = tls.fqdn(lb["DNSName"]) if lb else None
    aliases = {tls.fqdn(domain), tls.fqdn(f"www.{domain}")}
    wanted_validation = {
        (tls.fqdn(o["ResourceRecord"]["Name"]), o["ResourceRecord"]["Value"])
        for c in certificates
        for o in c.get("DomainValidationOptions", [])
        if "ResourceRecord" in o
    }
    ours = []
    for record in records:
        name = tls.fqdn(record["Name"])
        alias = record.get("AliasTarget")
        if record["Type"] == "A" and alias and name in aliases:
            target = tls.fqdn(alias["DNSName"]).removeprefix("dualstack.")
            if target == lb_dns or pattern.fullmatch(target):
                ours.append(record)
        elif record["Type"] == "CNAME":
            values = [v["Value"] for v in record.get("ResourceRecords", [])]
            if len(values) == 1 and (name, values[0]) in wanted_validation:
                ours.append(record)
    return ours


def _survey_security_groups(ctx: Context, found: Survey) -> None:
    try:
        net = network.find_network(ctx)
    except ConfigError:  # no default VPC and none configured: nothing of ours can be there
        return
    for name in (ctx.names.task_sg, ctx.names.alb_sg):  # the tasks' group refers to the other
        _survey(
            found,
            "security group",
            name,
            lambda name=name: network.find_security_group(ctx, name, net.vpc_id),
            None,
        )


# --- deletion -----------------------------------------------------------------------------------


def _retrying(
    ctx: Context, what: str, action: Callable[[], None], codes: tuple[str, ...], timeout: float
) -> None:
    """Runs `action`, retrying while AWS answers one of `codes` (a dependency still releasing)."""

    def attempt() -> bool | None:
        try:
            action()
        except botocore.exceptions.ClientError as error:
            if error_code(error) in codes:
                return None
            raise
        return True

    with ctx.ui.waiting(what):
        wait_until(
            attempt,
            what=what,
            timeout=timeout,
            clock=ctx.clock,
            interval=5,
            max_interval=15,
            hint="AWS still holds a dependency; run `dashscale teardown` again shortly",
        )


def _gone(error: botocore.exceptions.ClientError, *codes: str) -> bool:
    return error_code(error) in codes


def delete_service(ctx: Context, item: Item) -> None:
    ecs = ctx.client("ecs")
    service = item.data["resource"]
    cluster_name = ctx.names.cluster
    try:
        if service.get("desiredCount", 0) > 0:
            ecs.update_service(cluster=cluster_name, service=ctx.names.service, desiredCount=0)
        ecs.delete_service(cluster=cluster_name, service=ctx.names.service, force=True)
    except ecs.exceptions.ServiceNotFoundException:
        return

    def inactive() -> bool | None:
        services = ecs.describe_services(cluster=cluster_name, services=[ctx.names.service])
        statuses = [s["status"] for s in services.get("services", [])]
        return True if not statuses or statuses == ["INACTIVE"] else None

    with ctx.ui.waiting(f"waiting for service {ctx.names.service} to drain"):
        wait_until(
            inactive,
            what=f"service {ctx.names.service} to be deleted",
            timeout=ctx.timeout,
            clock=ctx.clock,
            interval=5,
            max_interval=15,
        )


def delete_task_definitions(ctx: Context, item: Item) -> None:
    ecs = ctx.client("ecs")
    arns = item.data["arns"]
    for arn in item.data["active"]:  # a revision is deleted only once deregistered
        ecs.deregister_task_definition(taskDefinition=arn)
    for start in range(0, len(arns), 10):
        ecs.delete_task_definitions(taskDefinitions=arns[start : start + 10])


def delete_cluster(ctx: Context, item: Item) -> None:
    ecs = ctx.client("ecs")

    def action() -> None:
        with contextlib.suppress(ecs.exceptions.ClusterNotFoundException):
            ecs.delete_cluster(cluster=ctx.names.cluster)

    _retrying(
        ctx,
        f"deleting cluster {ctx.names.cluster}",
        action,
        ("ClusterContainsServicesException", "ClusterContainsTasksException"),
        ctx.timeout,
    )


def delete_listener(ctx: Context, item: Item) -> None:
    elbv2 = ctx.client("elbv2")
    with contextlib.suppress(elbv2.exceptions.ListenerNotFoundException):
        elbv2.delete_listener(ListenerArn=item.data["arn"])


def delete_load_balancer(ctx: Context, item: Item) -> None:
    elbv2 = ctx.client("elbv2")
    arn = item.data["resource"]["LoadBalancerArn"]
    try:
        elbv2.delete_load_balancer(LoadBalancerArn=arn)
    except elbv2.exceptions.LoadBalancerNotFoundException:
        return

    def gone() -> bool | None:
        try:
            elbv2.describe_load_balancers(LoadBalancerArns=[arn])
        except elbv2.exceptions.LoadBalancerNotFoundException:
            return True
        return None

    with ctx.ui.waiting(f"waiting for load balancer {ctx.names.alb} to go"):
        wait_until(
            gone,
            what=f"load balancer {ctx.names.alb} to be deleted",
            timeout=ctx.timeout,
            clock=ctx.clock,
            interval=3,
            max_interval=15,
        )


def delete_target_group(ctx: Context, item: Item) -> None:
    elbv2 = ctx.client("elbv2")
    arn = item.data["resource"]["TargetGroupArn"]

    def action() -> None:
        with contextlib.suppress(elbv2.exceptions.TargetGroupNotFoundException):
            elbv2.delete_target_group(TargetGroupArn=arn)

    _retrying(
        ctx,
        f"deleting target group {ctx.names.target_group}",
        action,
        ("ResourceInUse",),
        ctx.timeout,
    )


def delete_certificate(ctx: Context, item: Item) -> None:
    acm = ctx.client("acm")

    def action() -> None:
        with contextlib.suppress(acm.exceptions.ResourceNotFoundException):
            acm.delete_certificate(CertificateArn=item.data["arn"])

    _retrying(
        ctx,
        f"deleting the certificate for {item.name}",
        action,
        ("ResourceInUseException",),
        ctx.timeout,
    )


def delete_records(ctx: Context, items: list[Item]) -> None:
    by_zone: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_zone.setdefault(item.data["zone"], []).append(item.data["record"])
    route53 = ctx.client("route53")
    for zone_id, records in by_zone.items():
        changes = [{"Action": "DELETE", "ResourceRecordSet": record} for record in records]
        try:
            route53.change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={"Comment": f"dashscale teardown {ctx.names.app}", "Changes": changes},
            )
        except route53.exceptions.InvalidChangeBatch:
            # One was changed or deleted since the survey: delete the others one by one.
            for change in changes:
                try:
                    route53.change_resource_record_sets(
                        HostedZoneId=zone_id, ChangeBatch={"Changes": [change]}
                    )
                except route53.exceptions.InvalidChangeBatch:
                    continue


def delete_security_group(ctx: Context, item: Item) -> None:
    ec2 = ctx.client("ec2")
    group_id = item.data["resource"]["GroupId"]

    def action() -> None:
        try:
            ec2.delete_security_group(GroupId=group_id)
        except botocore.exceptions.ClientError as error:
            if not _gone(error, "InvalidGroup.NotFound"):
                raise

    # Network interfaces of the load balancer and the tasks hold the group for minutes.
    _retrying(
        ctx, f"deleting security group {item.name}", action, ("DependencyViolation",), ctx.timeout
    )


def delete_role(ctx: Context, item: Item) -> None:
    iam = ctx.client("iam")
    name = ctx.names.execution_role
    try:
        for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
        for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
        iam.delete_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        pass


def delete_repository(ctx: Context, item: Item) -> None:
    ecr = ctx.client("ecr")
    with contextlib.suppress(ecr.exceptions.RepositoryNotFoundException):
        ecr.delete_repository(repositoryName=ctx.names.repository, force=True)


def delete_log_group(ctx: Context, item: Item) -> None:
    logs = ctx.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceNotFoundException):
        logs.delete_log_group(logGroupName=ctx.names.log_group)


def delete_zone(ctx: Context, item: Item) -> None:
    route53 = ctx.client("route53")
    with contextlib.suppress(route53.exceptions.NoSuchHostedZone):
        route53.delete_hosted_zone(Id=item.data["zone"])


# The order of real AWS: service before cluster, listeners before target group, load balancer
# before certificate and security groups, records before zone.
ORDER: tuple[tuple[str, Callable[[Context, Item], None]], ...] = (
    ("ECS service", delete_service),
    ("task definition", delete_task_definitions),
    ("ECS cluster", delete_cluster),
    ("listener", delete_listener),
    ("load balancer", delete_load_balancer),
    ("target group", delete_target_group),
    ("certificate", delete_certificate),
    ("security group", delete_security_group),
    ("IAM role", delete_role),
    ("ECR repository", delete_repository),
    ("log group", delete_log_group),
)


def execute(ctx: Context, plan: Survey) -> None:
    for kind, delete in ORDER:
        if kind == "security group":  # records go with the certificate, before the zone
            records = plan.get("DNS record")
            if records:
                with translated("deleting DNS records"):
                    delete_records(ctx, records)
                for item in records:
                    ctx.ui.resource(item.kind, item.name, "deleted")
        for item in plan.get(kind):
            with translated(f"deleting {item.kind} {item.name}"):
                delete(ctx, item)
            ctx.ui.resource(item.kind, item.name, "deleted")
    for item in plan.get("hosted zone"):
        with translated(f"deleting hosted zone {item.name}"):
            delete_zone(ctx, item)
        ctx.ui.resource(item.kind, item.name, "deleted")


# --- the command --------------------------------------------------------------------------------


def show(ctx: Context, plan: Survey, dry_run: bool) -> None:
    verb = {
        DELETE: "would delete" if dry_run else "delete",
        KEEP: "kept",
        FOREIGN: "not this app's",
    }
    rows = [(item.kind, item.name, verb[item.action], item.reason) for item in plan.items]
    ctx.ui.table(
        f"teardown of {ctx.names.app} in {ctx.config.aws_region}",
        ("resource", "name", "action", "why"),
        rows,
    )


def teardown(ctx: Context, *, everything: bool, yes: bool, dry_run: bool) -> None:
    ctx.ui.step(f"Surveying {ctx.names.app} in {ctx.config.aws_region}")
    plan = survey(ctx, everything)
    if not plan.items:
        ctx.ui.info(f"nothing of {ctx.names.app} is left in {ctx.config.aws_region}")
        return
    show(ctx, plan, dry_run)
    if dry_run or not plan.to_delete:
        if not plan.to_delete:
            ctx.ui.info("nothing to delete")
        return
    if not yes:
        if not is_interactive():
            raise DashscaleError(
                "teardown deletes resources and there is no terminal to confirm on",
                "re-run with --yes to confirm, or --dry-run to only list",
            )
        if not click.confirm(f"Delete {len(plan.to_delete)} resource(s)?", err=True):
            raise DashscaleError("teardown cancelled; nothing was deleted")
    ctx.ui.step("Deleting")
    execute(ctx, plan)
    verify(ctx, everything)


def verify(ctx: Context, everything: bool) -> None:
    left = survey(ctx, everything).to_delete
    if left:
        names = ", ".join(f"{item.kind} {item.name}" for item in left)
        raise DashscaleError(
            f"still there after teardown: {names}",
            "run `dashscale teardown` again; AWS may still be releasing them",
        )
    ctx.ui.info(f"teardown of {ctx.names.app} complete: nothing of it is left to delete")

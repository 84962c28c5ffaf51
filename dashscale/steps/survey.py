"""What `teardown` finds: every resource under one of the app's exact names, each marked delete,
keep (holds data or identity, or is still needed by something else) or not this app's (no
dashscale:app tag with this APP_NAME: reported, never touched). Reads only.

It looks wider than `up`'s finders (in any VPC, for any domain the app's certificates or tagged
zones name, every revision of the task definition), and uses those finders where they suffice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dashscale import partition
from dashscale.aws import translated
from dashscale.context import Context
from dashscale.errors import NotOwnedError
from dashscale.names import TAG_KEY
from dashscale.steps import alb, appconfig, auth, autoscaling, cluster, taskrole, tls
from dashscale.steps import repository as ecr_repository
from dashscale.steps import service as ecs_service

DELETE, KEEP, FOREIGN = "delete", "keep", "foreign"

SCALING = "scalable target"
SERVICE = "ECS service"
TASK_DEFINITION = "task definition"
CLUSTER = "ECS cluster"
ALIAS_RECORD = "alias record"
VALIDATION_RECORD = "validation record"
LISTENER = "listener"
LOAD_BALANCER = "load balancer"
TARGET_GROUP = "target group"
CERTIFICATE = "certificate"
SECURITY_GROUP = "security group"
ROLE = "IAM role"
REPOSITORY = "ECR repository"
LOG_GROUP = "log group"
ZONE = "hosted zone"
USER_POOL = auth.UserPool.kind
USER_POOL_CLIENT = auth.UserPoolClient.kind
SIGN_IN_DOMAIN = auth.UserPoolDomain.kind
SECRET = "SSM parameter"

# Certificates that still rely on their validation records: pending ones to be issued, issued
# ones to be renewed.
LIVE_CERTIFICATE_STATUSES = ("PENDING_VALIDATION", "ISSUED")


@dataclass
class Item:
    kind: str
    name: str  # unique within its kind: the survey after the deletions matches on (kind, name)
    action: str  # delete, keep or foreign
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)


@dataclass
class Plan:
    items: list[Item] = field(default_factory=list)

    def add(self, kind: str, name: str, action: str, reason: str = "", **data: Any) -> Item:
        item = Item(kind, name, action, reason, data)
        self.items.append(item)
        return item

    def deleting(self, kind: str) -> list[Item]:
        return [i for i in self.items if i.kind == kind and i.action == DELETE]

    @property
    def to_delete(self) -> list[Item]:
        return [i for i in self.items if i.action == DELETE]

    @property
    def kept(self) -> list[Item]:
        return [i for i in self.items if i.action == KEEP]

    @property
    def foreign(self) -> list[Item]:
        return [i for i in self.items if i.action == FOREIGN]


# --- survey (reads only) ------------------------------------------------------------------------


def survey(ctx: Context, everything: bool) -> Plan:
    """Every resource of the app, each marked delete, keep or foreign. Makes no change."""
    plan = Plan()
    names = ctx.names
    _survey_service(ctx, plan)
    _survey_scalable_target(ctx, plan)
    _survey_task_definitions(ctx, plan)
    _found(ctx, plan, CLUSTER, names.cluster, lambda: cluster.find_cluster(ctx))
    balancer = _survey_load_balancer(ctx, plan)
    _found(ctx, plan, TARGET_GROUP, names.target_group, lambda: alb.find_target_group(ctx))
    ours, still_needed = _survey_certificates(ctx, plan)
    _survey_dns(ctx, plan, balancer, ours, still_needed, everything)
    _survey_sign_in(ctx, plan, everything)
    _survey_security_groups(ctx, plan)
    _found(ctx, plan, ROLE, names.execution_role, lambda: cluster.find_execution_role(ctx))
    _found(ctx, plan, ROLE, names.task_role, lambda: taskrole.find_task_role(ctx))
    _survey_secrets(ctx, plan, everything)
    repository = _found(
        ctx,
        plan,
        REPOSITORY,
        names.repository,
        lambda: ecr_repository.find_repository(ctx),
        keep=None if everything else "holds your images; --all deletes it",
    )
    if repository is not None:
        _count_images(ctx, plan)
    _found(
        ctx,
        plan,
        LOG_GROUP,
        names.log_group,
        lambda: cluster.find_log_group(ctx),
        keep=None if everything else "holds your app's logs; --all deletes it",
    )
    return plan


def _survey_secrets(ctx: Context, plan: Plan, everything: bool) -> None:
    """The secrets `dashscale secret set` stored under /dashscale/APP/: data, kept unless --all."""
    keep = "holds your secrets; --all deletes them"
    for parameter in appconfig.stored_secrets(ctx):
        changed = parameter.get("LastModifiedDate")
        note = f"changed {changed:%Y-%m-%d}" if changed else ""
        if everything:
            plan.add(SECRET, parameter["Name"], DELETE, note)
        else:
            plan.add(SECRET, parameter["Name"], KEEP, keep)


def _not_ours(ctx: Context) -> str:
    return f"not tagged {TAG_KEY}={ctx.names.app}: not this app's, left alone"


def _found(
    ctx: Context,
    plan: Plan,
    kind: str,
    name: str,
    find: Callable[[], dict[str, Any] | None],
    keep: str | None = None,
    reason: str = "",
) -> dict[str, Any] | None:
    """Runs a step module's finder: adds the resource to the plan and returns its description."""
    try:
        resource = find()
    except NotOwnedError:
        plan.add(kind, name, FOREIGN, _not_ours(ctx))
        return None
    if resource is None:
        return None
    if keep:
        plan.add(kind, name, KEEP, keep, resource=resource)
    else:
        plan.add(kind, name, DELETE, reason, resource=resource)
    return resource


def _survey_service(ctx: Context, plan: Plan) -> None:
    """The service, also while it drains after an interrupted teardown (alb's finder refuses a
    draining service; here it is something to wait for)."""
    name = ctx.names.service
    service = ecs_service.describe_service(ctx)
    if service is None:
        return
    if not ctx.names.owns(service.get("tags")):
        plan.add(SERVICE, name, FOREIGN, _not_ours(ctx))
    elif service["status"] == "DRAINING":
        plan.add(SERVICE, name, DELETE, "already being deleted", resource=service)
    else:
        plan.add(
            SERVICE, name, DELETE, f"{service.get('desiredCount', 0)} task(s)", resource=service
        )


def _survey_scalable_target(ctx: Context, plan: Plan) -> None:
    """Application Auto Scaling's target on the service (autoscaling): it has no tag of its own;
    it is this app's when the service under this app's names is not someone else's."""
    current = autoscaling.find_autoscaling(ctx)
    if current is None:
        return
    resource_id = autoscaling.resource_id(ctx)
    if any(item.kind == SERVICE and item.action == FOREIGN for item in plan.items):
        plan.add(SCALING, resource_id, FOREIGN, f"scales {ctx.names.service}, which is not ours")
        return
    target = current.target
    plan.add(
        SCALING,
        resource_id,
        DELETE,
        f"{target.get('MinCapacity')}-{target.get('MaxCapacity')} tasks; its policies go with it",
        autoscaling=current,
    )


def _survey_task_definitions(ctx: Context, plan: Plan) -> None:
    family = ctx.names.taskdef
    ecs = ctx.client("ecs")
    revisions: dict[str, list[str]] = {}
    with translated(f"listing the revisions of task definition {family}"):
        for status in ("ACTIVE", "INACTIVE"):
            pages = ecs.get_paginator("list_task_definitions").paginate(
                familyPrefix=family, status=status
            )
            # familyPrefix matches prefixes (APP-taskdef2...): keep this exact family only
            revisions[status] = [
                arn
                for page in pages
                for arn in page["taskDefinitionArns"]
                if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family
            ]
        arns = revisions["ACTIVE"] + revisions["INACTIVE"]
        if not arns:
            return
        latest = max(arns, key=lambda arn: int(arn.rsplit(":", 1)[-1]))
        tags = ecs.describe_task_definition(taskDefinition=latest, include=["TAGS"]).get("tags")
    if not ctx.names.owns(tags):
        plan.add(TASK_DEFINITION, family, FOREIGN, _not_ours(ctx))
        return
    plan.add(
        TASK_DEFINITION,
        family,
        DELETE,
        f"{len(arns)} revision(s)",
        arns=arns,
        active=revisions["ACTIVE"],
    )


def _survey_load_balancer(ctx: Context, plan: Plan) -> dict[str, Any] | None:
    name = ctx.names.alb
    balancer = _found(ctx, plan, LOAD_BALANCER, name, lambda: alb.find_load_balancer(ctx))
    if balancer is None:
        return None
    elbv2 = ctx.client("elbv2")
    listeners: list[dict[str, Any]] = []
    with translated(f"listing the listeners of {name}"):
        pages = elbv2.get_paginator("describe_listeners").paginate(
            LoadBalancerArn=balancer["LoadBalancerArn"]
        )
        for page in pages:
            listeners += page["Listeners"]
    for listener in sorted(listeners, key=lambda item: int(item["Port"])):
        plan.add(
            LISTENER,
            f"{name}:{listener['Port']}",
            DELETE,
            str(listener.get("Protocol", "")),
            arn=listener["ListenerArn"],
        )
    return balancer


def _certificate_names(names: Iterable[str]) -> set[str]:
    """The names whose validation records a certificate uses (*.example.com uses example.com's)."""
    return {name.lower().removeprefix("*.") for name in names}


def _validation_records(certificate: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (tls.fqdn(option["ResourceRecord"]["Name"]), option["ResourceRecord"]["Value"])
        for option in certificate.get("DomainValidationOptions", [])
        if "ResourceRecord" in option
    }


def _short_arn(arn: str) -> str:
    return arn.rsplit("/", 1)[-1][:8]


def _survey_certificates(
    ctx: Context, plan: Plan
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], str]]:
    """This app's certificates, whatever their domain (DOMAIN may have changed or been unset),
    and the validation records that certificates which stay still need (ACM gives every
    certificate of a domain the same record): record -> which certificate needs it."""
    acm = ctx.client("acm")
    ours: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    # Without Includes, ListCertificates gives RSA 2048 certificates only: ask for every key
    # type, so that another certificate sharing a validation record is seen whatever its key.
    key_types = list(acm.meta.service_model.shape_for("KeyAlgorithm").enum)
    with translated("looking up the certificates"):
        pages = acm.get_paginator("list_certificates").paginate(Includes={"keyTypes": key_types})
        for page in pages:
            for summary in page.get("CertificateSummaryList", []):
                arn = summary["CertificateArn"]
                tags = tls.about_listed(acm.list_tags_for_certificate, arn)
                if tags is None:
                    continue  # deleted since the listing
                if ctx.names.owns(tags.get("Tags", [])):
                    described = tls.about_listed(acm.describe_certificate, arn)
                    if described is not None:
                        ours.append(described["Certificate"])
                else:
                    others.append(summary)
        our_names = _certificate_names(
            name
            for certificate in ours
            for name in [certificate["DomainName"], *certificate.get("SubjectAlternativeNames", [])]
        )
        sharing: list[dict[str, Any]] = []
        for summary in others:
            summary_names = _certificate_names(
                [summary["DomainName"], *summary.get("SubjectAlternativeNameSummaries", [])]
            )
            shares = summary_names & our_names or summary.get(
                "HasAdditionalSubjectAlternativeNames"
            )
            if our_names and shares and summary.get("Status") in LIVE_CERTIFICATE_STATUSES:
                described = tls.about_listed(acm.describe_certificate, summary["CertificateArn"])
                if described is not None:
                    sharing.append(described["Certificate"])

    still_needed: dict[tuple[str, str], str] = {}
    for certificate in sharing:
        for record in _validation_records(certificate):
            still_needed[record] = (
                f"also validates the certificate {_short_arn(certificate['CertificateArn'])} "
                f"for {certificate['DomainName']}, which is not this app's"
            )
    # InUseBy names the load balancer (or one of its listeners): ARNs with /app/APP-alb/.
    ours_in_use = re.compile(
        rf":(loadbalancer|listener|listener-rule)/app/{re.escape(ctx.names.alb)}/"
    )
    for certificate in ours:
        arn = certificate["CertificateArn"]
        name = f"{certificate['DomainName']} ({_short_arn(arn)})"
        users = [user for user in certificate.get("InUseBy", []) if not ours_in_use.search(user)]
        if users:
            plan.add(
                CERTIFICATE,
                name,
                KEEP,
                f"in use by {', '.join(users)}; remove it there first",
                arn=arn,
            )
            if certificate.get("Status") in LIVE_CERTIFICATE_STATUSES:
                for record in _validation_records(certificate):
                    still_needed[record] = f"validates the certificate {name}, which stays"
        else:
            plan.add(CERTIFICATE, name, DELETE, certificate["Status"].lower(), arn=arn)
    return ours, still_needed


def _tagged_zone_names(ctx: Context) -> set[str]:
    """Public hosted zones tagged as this app's (found even when DOMAIN changed or is unset)."""
    route53 = ctx.client("route53")
    zones: dict[str, str] = {}
    with translated("listing the hosted zones"):
        for page in route53.get_paginator("list_hosted_zones").paginate():
            for zone in page.get("HostedZones", []):
                if not zone.get("Config", {}).get("PrivateZone"):
                    zones[zone["Id"].rsplit("/", 1)[-1]] = zone["Name"]
        ids = sorted(zones)
        owned: set[str] = set()
        for start in range(0, len(ids), 10):  # ListTagsForResources takes at most ten
            answer = route53.list_tags_for_resources(
                ResourceType="hostedzone", ResourceIds=ids[start : start + 10]
            )
            for tag_set in answer.get("ResourceTagSets", []):
                if ctx.names.owns(tag_set.get("Tags", [])):
                    owned.add(tag_set["ResourceId"].rsplit("/", 1)[-1])
    return {zones[zone_id].lower().rstrip(".") for zone_id in owned}


def _points_at_our_load_balancer(
    ctx: Context, alias: dict[str, Any], balancer: dict[str, Any] | None
) -> bool:
    """True for an alias to APP-alb: today's, or one already deleted (an interrupted teardown),
    recognised by its DNS name APP-alb-ID.REGION.elb.DNS-SUFFIX (the partition's)."""
    target = tls.fqdn(alias["DNSName"]).removeprefix("dualstack.")
    if balancer is not None and target == tls.fqdn(balancer["DNSName"]):
        return True
    prefix = f"{ctx.names.alb}-".lower()
    suffix = partition.for_region(ctx.config.aws_region).elb_suffix(ctx.config.aws_region) + "."
    if not (target.startswith(prefix) and target.endswith(suffix)):
        return False
    middle = target[len(prefix) : -len(suffix)]
    return middle.isalnum()  # a longer name (APP-alb-x-ID) is another load balancer


def _survey_dns(
    ctx: Context,
    plan: Plan,
    balancer: dict[str, Any] | None,
    certificates: list[dict[str, Any]],
    still_needed: dict[tuple[str, str], str],
    everything: bool,
) -> None:
    """In the zone of each domain of this app: the alias records of DOMAIN and www.DOMAIN that
    point at the app's load balancer, and the validation records of its certificates (exact
    values). Every other record is the user's and is never touched."""
    domains = {ctx.config.domain.lower()} if ctx.config.domain else set()
    domains |= {c["DomainName"].lower().removeprefix("*.") for c in certificates}
    domains |= _tagged_zone_names(ctx)
    validation = set().union(*(_validation_records(c) for c in certificates))
    zones: dict[str, tuple[tls.Zone, set[str]]] = {}  # a zone may hold several app domains
    for domain in sorted(domains):
        zone = tls.find_enclosing_zone(ctx, domain)
        if zone is not None:
            zones.setdefault(zone.id, (zone, set()))[1].add(domain)
    for zone, names in zones.values():
        domain = zone.name
        records = tls.zone_records(ctx, zone.id)
        aliases = {tls.fqdn(n) for name in names for n in (name, f"www.{name}")}
        deleting: list[dict[str, Any]] = []
        for record in records:
            name = tls.fqdn(record["Name"])
            label = f"{name.rstrip('.')} {record['Type']}"
            alias = record.get("AliasTarget")
            if record["Type"] == "A" and alias and name in aliases:
                if _points_at_our_load_balancer(ctx, alias, balancer):
                    deleting.append(record)
                    plan.add(
                        ALIAS_RECORD,
                        label,
                        DELETE,
                        f"alias to {ctx.names.alb}",
                        zone=zone.id,
                        record=record,
                    )
            elif record["Type"] == "CNAME" and "ResourceRecords" in record:
                values = [r["Value"] for r in record["ResourceRecords"]]
                if len(values) != 1 or (name, values[0]) not in validation:
                    continue
                needed_by = still_needed.get((name, values[0]))
                if needed_by:
                    plan.add(VALIDATION_RECORD, label, KEEP, needed_by)
                else:
                    deleting.append(record)
                    plan.add(
                        VALIDATION_RECORD,
                        label,
                        DELETE,
                        "certificate validation",
                        zone=zone.id,
                        record=record,
                    )
        others = [
            r
            for r in records
            if r not in deleting
            and not (tls.fqdn(r["Name"]) == tls.fqdn(domain) and r["Type"] in ("SOA", "NS"))
        ]
        if not zone.owned:
            plan.add(ZONE, domain, KEEP, "not created by dashscale for this app: never deleted")
        elif not everything:
            plan.add(ZONE, domain, KEEP, "holds your domain's DNS; --all deletes it")
        elif others:
            plan.add(ZONE, domain, KEEP, f"holds {len(others)} record(s) that are not dashscale's")
        else:
            plan.add(ZONE, domain, DELETE, "created by dashscale", zone=zone.id)


def _survey_sign_in(ctx: Context, plan: Plan, everything: bool) -> None:
    """The user pool (kept unless --all: it holds the users) with its sign-in domain (kept with
    it), and its app client (deleted: the listener that signed in with it goes too)."""
    name = ctx.names.user_pool
    pool = _found(ctx, plan, USER_POOL, name, lambda: auth.find_user_pool(ctx))
    if pool is None:
        return
    item = plan.items[-1]
    users = int(pool.get("EstimatedNumberOfUsers", 0))
    item.data["pool"] = pool["Id"]
    if not everything:
        item.action, item.reason = KEEP, f"holds {users} user(s); --all deletes it"
    else:
        item.reason = f"with its {users} user(s)"
    if pool.get("Domain"):
        plan.add(
            SIGN_IN_DOMAIN,
            str(pool["Domain"]),
            item.action,
            "kept with the user pool" if item.action == KEEP else "hosted sign-in pages",
            pool=pool["Id"],
        )
    client = auth.find_client(ctx, str(pool["Id"]))
    if client is not None:
        plan.add(
            USER_POOL_CLIENT,
            ctx.names.user_pool_client,
            DELETE,
            "the load balancer's sign-in client",
            pool=pool["Id"],
            client=client["ClientId"],
        )


def _survey_security_groups(ctx: Context, plan: Plan) -> None:
    """Both groups by exact name, in whatever VPC they are (VPC_ID may have changed). The
    tasks' group comes first: its inbound rule refers to the load balancer's."""
    ec2 = ctx.client("ec2")
    wanted = (ctx.names.task_sg, ctx.names.alb_sg)
    groups: list[dict[str, Any]] = []
    with translated("looking up the security groups"):
        pages = ec2.get_paginator("describe_security_groups").paginate(
            Filters=[{"Name": "group-name", "Values": list(wanted)}]
        )
        for page in pages:
            groups += page["SecurityGroups"]
    for name in wanted:
        for group in sorted(
            (g for g in groups if g["GroupName"] == name), key=lambda g: g["GroupId"]
        ):
            label = f"{name} ({group['GroupId']})"
            if ctx.names.owns(group.get("Tags")):
                plan.add(SECURITY_GROUP, label, DELETE, f"in {group['VpcId']}", resource=group)
            else:
                plan.add(SECURITY_GROUP, label, FOREIGN, _not_ours(ctx))


def _count_images(ctx: Context, plan: Plan) -> None:
    item = next(i for i in plan.items if i.kind == REPOSITORY)
    ecr = ctx.client("ecr")
    count = 0
    with translated(f"counting the images of {ctx.names.repository}"):
        pages = ecr.get_paginator("list_images").paginate(repositoryName=ctx.names.repository)
        for page in pages:
            count += len({i.get("imageDigest") for i in page.get("imageIds", [])})
    item.data["images"] = count
    item.reason = (
        f"holds {count} image(s); --all deletes it" if item.action == KEEP else f"{count} image(s)"
    )

"""`dashscale teardown`: remove what the app costs, in the order real AWS demands.

Three phases:
- survey (reads only): every resource under one of the app's exact names is found and marked
  delete, keep (holds data or identity, or is still needed by something else) or not this app's
  (no dashscale:app tag with this APP_NAME: reported, never touched);
- once confirmed, the deletions in dependency order (service before cluster, listeners before
  target group, load balancer before certificate and security groups, records before zone), each
  waiting or retrying where AWS needs time; a deletion that fails skips only what depends on it;
- a second survey that proves nothing meant for deletion is left, or names what is and why.

Something already gone counts as done, so a teardown can be re-run from any state.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions
import click

from dashscale.aws import error_code, translated, wait_until
from dashscale.context import Context
from dashscale.errors import EXIT_USAGE, AwsError, DashscaleError, NotOwnedError
from dashscale.names import TAG_KEY
from dashscale.steps import alb, autoscaling, cluster, push, tls
from dashscale.ui import is_interactive

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

RETRY_INTERVAL = 5.0
MAX_RETRY_INTERVAL = 15.0
# Certificates that still rely on their validation records: pending ones to be issued, issued
# ones to be renewed.
LIVE_CERTIFICATE_STATUSES = ("PENDING_VALIDATION", "ISSUED")
TASK_DEFINITION_BATCH = 10  # DeleteTaskDefinitions takes at most ten


class ConfirmationNeeded(DashscaleError):
    """Deleting needs a yes, and there is no terminal to ask on."""

    exit_code = EXIT_USAGE


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
    _survey_security_groups(ctx, plan)
    _found(ctx, plan, ROLE, names.execution_role, lambda: cluster.find_execution_role(ctx))
    repository = _found(
        ctx,
        plan,
        REPOSITORY,
        names.repository,
        lambda: push.find_repository(ctx),
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
    service = alb.describe_service(ctx)
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
                tags = acm.list_tags_for_certificate(CertificateArn=summary["CertificateArn"])
                if ctx.names.owns(tags.get("Tags", [])):
                    described = acm.describe_certificate(CertificateArn=summary["CertificateArn"])
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
                described = acm.describe_certificate(CertificateArn=summary["CertificateArn"])
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


def _zone_records(ctx: Context, zone_id: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    with translated("listing the zone's records"):
        pages = (
            ctx.client("route53")
            .get_paginator("list_resource_record_sets")
            .paginate(HostedZoneId=zone_id)
        )
        for page in pages:
            records += page["ResourceRecordSets"]
    return records


def _points_at_our_load_balancer(
    ctx: Context, alias: dict[str, Any], balancer: dict[str, Any] | None
) -> bool:
    """True for an alias to APP-alb: today's, or one already deleted (an interrupted teardown),
    recognised by its DNS name APP-alb-ID.REGION.elb.amazonaws.com."""
    target = tls.fqdn(alias["DNSName"]).removeprefix("dualstack.")
    if balancer is not None and target == tls.fqdn(balancer["DNSName"]):
        return True
    prefix = f"{ctx.names.alb}-".lower()
    suffix = f".{ctx.config.aws_region}.elb.amazonaws.com.".lower()
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
    for domain in sorted(domains):
        zone = tls.find_zone(ctx, domain)
        if zone is None:
            continue
        records = _zone_records(ctx, zone.id)
        aliases = {tls.fqdn(domain), tls.fqdn(f"www.{domain}")}
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


# --- waiting and retrying -----------------------------------------------------------------------


def _wait(
    ctx: Context,
    what: str,
    check: Callable[[], bool | None],
    interval: float = RETRY_INTERVAL,
    hint: str = "run `dashscale teardown` again later: it continues with what is left",
) -> float:
    """Waits until `check` is true, at most --timeout seconds; returns the seconds waited."""
    start = ctx.clock.now()
    with ctx.ui.waiting(what) as display:
        wait_until(
            check,
            what=what,
            timeout=ctx.timeout,
            clock=ctx.clock,
            interval=interval,
            max_interval=MAX_RETRY_INTERVAL,
            on_poll=lambda elapsed: display.update(f"{what} ({int(elapsed)} s)"),
            hint=hint,
        )
    return ctx.clock.now() - start


def _retrying(ctx: Context, what: str, action: Callable[[], None], codes: tuple[str, ...]) -> str:
    """Runs `action`, again while AWS answers one of `codes` (a dependency it still releases);
    returns a note on the retries for the report."""
    attempts = 0
    last: list[str] = []

    def attempt() -> bool | None:
        nonlocal attempts
        attempts += 1
        try:
            action()
        except botocore.exceptions.ClientError as error:
            if error_code(error) in codes:
                last[:] = [error_code(error)]
                return None
            raise
        return True

    waited = _wait(
        ctx,
        what,
        attempt,
        hint=f"AWS still answers {' or '.join(codes)}: run `dashscale teardown` again in a few "
        "minutes",
    )
    if attempts == 1:
        return ""
    return f"after {attempts} attempts, {int(waited)} s ({last[0] if last else 'in use'})"


# --- deletion -----------------------------------------------------------------------------------


def delete_scalable_target(ctx: Context, item: Item) -> str:
    """First, so the scaler cannot undo the service's scaling to zero."""
    autoscaling.remove(ctx, item.data["autoscaling"], [])
    return "with its scaling policies"


def delete_service(ctx: Context, item: Item) -> str:
    """Scaled to zero, deleted, then waited for until it is INACTIVE (its tasks stopped)."""
    ecs = ctx.client("ecs")
    name, cluster_name = ctx.names.service, ctx.names.cluster
    if item.data["resource"].get("status") == "ACTIVE":
        try:
            if item.data["resource"].get("desiredCount", 0) > 0:
                ecs.update_service(cluster=cluster_name, service=name, desiredCount=0)
            ecs.delete_service(cluster=cluster_name, service=name, force=True)
        except (
            ecs.exceptions.ServiceNotFoundException,
            ecs.exceptions.ServiceNotActiveException,
            ecs.exceptions.ClusterNotFoundException,
        ):
            return "already gone"

    def inactive() -> bool | None:
        try:
            services = ecs.describe_services(cluster=cluster_name, services=[name])["services"]
        except ecs.exceptions.ClusterNotFoundException:
            return True
        return True if all(s.get("status") == "INACTIVE" for s in services) else None

    waited = _wait(ctx, f"service {name}: stopping its tasks", inactive)
    return f"scaled to 0, tasks stopped after {int(waited)} s" if int(waited) else "scaled to 0"


def delete_task_definitions(ctx: Context, item: Item) -> str:
    """Every revision deregistered, then deleted (AWS deletes only INACTIVE revisions)."""
    ecs = ctx.client("ecs")
    arns: list[str] = item.data["arns"]
    for arn in item.data["active"]:
        ecs.deregister_task_definition(taskDefinition=arn)
    failures: list[dict[str, Any]] = []
    for start in range(0, len(arns), TASK_DEFINITION_BATCH):
        answer = ecs.delete_task_definitions(
            taskDefinitions=arns[start : start + TASK_DEFINITION_BATCH]
        )
        failures += answer.get("failures", [])
    if failures:
        # A revision deleted meanwhile fails too; what is still listed has really failed.
        left = set()
        for status in ("ACTIVE", "INACTIVE"):
            pages = ecs.get_paginator("list_task_definitions").paginate(
                familyPrefix=ctx.names.taskdef, status=status
            )
            left |= {arn for page in pages for arn in page["taskDefinitionArns"]}
        failed = [f for f in failures if f.get("arn") in left]
        if failed:
            reasons = "; ".join(f"{f['arn'].rsplit('/', 1)[-1]}: {f.get('reason')}" for f in failed)
            raise AwsError(
                f"AWS did not delete {len(failed)} revision(s) of {ctx.names.taskdef}: {reasons}",
                "run `dashscale teardown` again; a revision still used by a task is deleted "
                "once the task stops",
            )
    return f"{len(arns)} revision(s) deregistered and deleted"


def delete_cluster(ctx: Context, item: Item) -> str:
    ecs = ctx.client("ecs")

    def action() -> None:
        with contextlib.suppress(ecs.exceptions.ClusterNotFoundException):
            ecs.delete_cluster(cluster=ctx.names.cluster)

    return _retrying(
        ctx,
        f"deleting cluster {ctx.names.cluster}",
        action,
        ("ClusterContainsServicesException", "ClusterContainsTasksException"),
    )


def delete_record(ctx: Context, item: Item) -> str:
    """DELETE with the exact record as listed: a record changed since is not removed."""
    route53 = ctx.client("route53")
    try:
        route53.change_resource_record_sets(
            HostedZoneId=item.data["zone"],
            ChangeBatch={
                "Comment": f"dashscale teardown {ctx.names.app}",
                "Changes": [{"Action": "DELETE", "ResourceRecordSet": item.data["record"]}],
            },
        )
    except route53.exceptions.InvalidChangeBatch:
        return "already gone or changed since the survey: left as it is"
    except route53.exceptions.NoSuchHostedZone:
        return "already gone"
    return ""


def delete_listener(ctx: Context, item: Item) -> str:
    elbv2 = ctx.client("elbv2")
    try:
        elbv2.delete_listener(ListenerArn=item.data["arn"])
    except elbv2.exceptions.ListenerNotFoundException:
        return "already gone"
    return ""


def delete_load_balancer(ctx: Context, item: Item) -> str:
    """Deleted, then waited for until AWS no longer describes it."""
    elbv2 = ctx.client("elbv2")
    arn = item.data["resource"]["LoadBalancerArn"]
    try:
        elbv2.delete_load_balancer(LoadBalancerArn=arn)
    except elbv2.exceptions.LoadBalancerNotFoundException:
        return "already gone"

    def gone() -> bool | None:
        try:
            found = elbv2.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"]
        except elbv2.exceptions.LoadBalancerNotFoundException:
            return True
        return True if not found else None

    waited = _wait(ctx, f"load balancer {ctx.names.alb}: waiting until it is gone", gone, 3.0)
    return f"gone after {int(waited)} s" if int(waited) else ""


def delete_target_group(ctx: Context, item: Item) -> str:
    elbv2 = ctx.client("elbv2")
    arn = item.data["resource"]["TargetGroupArn"]

    def action() -> None:
        with contextlib.suppress(elbv2.exceptions.TargetGroupNotFoundException):
            elbv2.delete_target_group(TargetGroupArn=arn)

    return _retrying(ctx, f"deleting target group {item.name}", action, ("ResourceInUse",))


def delete_certificate(ctx: Context, item: Item) -> str:
    """Once no listener uses it: ACM takes a while to notice the load balancer is gone."""
    acm = ctx.client("acm")

    def action() -> None:
        with contextlib.suppress(acm.exceptions.ResourceNotFoundException):
            acm.delete_certificate(CertificateArn=item.data["arn"])

    return _retrying(
        ctx, f"deleting the certificate {item.name}", action, ("ResourceInUseException",)
    )


def delete_security_group(ctx: Context, item: Item) -> str:
    """Network interfaces of the load balancer and the tasks hold a group for minutes after
    they are deleted: retried while AWS answers DependencyViolation."""
    ec2 = ctx.client("ec2")
    group_id = item.data["resource"]["GroupId"]

    def action() -> None:
        try:
            ec2.delete_security_group(GroupId=group_id)
        except botocore.exceptions.ClientError as error:
            if error_code(error) != "InvalidGroup.NotFound":
                raise

    return _retrying(ctx, f"deleting security group {item.name}", action, ("DependencyViolation",))


def delete_role(ctx: Context, item: Item) -> str:
    iam = ctx.client("iam")
    name = ctx.names.execution_role
    gone = iam.exceptions.NoSuchEntityException
    try:
        attached = [
            policy["PolicyArn"]
            for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
            for policy in page["AttachedPolicies"]
        ]
        inline = [
            policy_name
            for page in iam.get_paginator("list_role_policies").paginate(RoleName=name)
            for policy_name in page["PolicyNames"]
        ]
    except gone:
        return "already gone"
    # Each call on its own: a retried detach whose first answer was lost says NoSuchEntity
    # about the policy, not the role.
    for arn in attached:
        with contextlib.suppress(gone):
            iam.detach_role_policy(RoleName=name, PolicyArn=arn)
    for policy_name in inline:
        with contextlib.suppress(gone):
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
    try:
        iam.delete_role(RoleName=name)
    except gone:
        return "already gone"
    return ""


def delete_repository(ctx: Context, item: Item) -> str:
    ecr = ctx.client("ecr")
    try:
        ecr.delete_repository(repositoryName=ctx.names.repository, force=True)
    except ecr.exceptions.RepositoryNotFoundException:
        return "already gone"
    return f"with its {item.data.get('images', 0)} image(s)"


def delete_log_group(ctx: Context, item: Item) -> str:
    logs = ctx.client("logs")
    try:
        logs.delete_log_group(logGroupName=ctx.names.log_group)
    except logs.exceptions.ResourceNotFoundException:
        return "already gone"
    return ""


def delete_zone(ctx: Context, item: Item) -> str:
    route53 = ctx.client("route53")
    try:
        route53.delete_hosted_zone(Id=item.data["zone"])
    except route53.exceptions.NoSuchHostedZone:
        return "already gone"
    return ""


@dataclass(frozen=True)
class Step:
    kind: str
    delete: Callable[[Context, Item], str]
    needs: tuple[str, ...] = ()  # kinds that must be gone first (real AWS refuses otherwise)
    serial: bool = False  # a failed item of this kind stops the later ones of the same kind


# The order of real AWS, which the emulator does not enforce.
STEPS: tuple[Step, ...] = (
    Step(SCALING, delete_scalable_target),
    Step(SERVICE, delete_service),
    Step(TASK_DEFINITION, delete_task_definitions, needs=(SERVICE,)),
    Step(CLUSTER, delete_cluster, needs=(SERVICE,)),
    Step(ALIAS_RECORD, delete_record),
    Step(VALIDATION_RECORD, delete_record),
    Step(LISTENER, delete_listener),
    # DNS stops pointing at the load balancer before it goes: never a name aimed at nothing
    Step(LOAD_BALANCER, delete_load_balancer, needs=(ALIAS_RECORD,)),
    Step(TARGET_GROUP, delete_target_group, needs=(LISTENER, SERVICE)),
    Step(CERTIFICATE, delete_certificate, needs=(LISTENER, LOAD_BALANCER)),
    # the tasks' group first: its rule refers to the load balancer's group
    Step(SECURITY_GROUP, delete_security_group, needs=(LOAD_BALANCER, SERVICE), serial=True),
    Step(ROLE, delete_role, needs=(SERVICE,)),
    Step(REPOSITORY, delete_repository),
    Step(LOG_GROUP, delete_log_group, needs=(SERVICE,)),
    Step(ZONE, delete_zone, needs=(ALIAS_RECORD, VALIDATION_RECORD)),
)
ORDER = {step.kind: index for index, step in enumerate(STEPS)}


def execute(ctx: Context, plan: Plan) -> dict[tuple[str, str], str]:
    """Deletes in dependency order; returns why each item that was not deleted is not.

    A failed deletion does not stop the run: only what depends on it is skipped, so one slow
    dependency does not leave everything else running (and costing)."""
    problems: dict[tuple[str, str], str] = {}
    failed_kinds: dict[str, Item] = {}
    for step in STEPS:
        for item in plan.deleting(step.kind):
            blocker = next(
                (failed_kinds[kind] for kind in step.needs if kind in failed_kinds), None
            )
            if blocker is None and step.serial:
                blocker = failed_kinds.get(step.kind)
            if blocker is not None:
                reason = f"not attempted: {blocker.kind} {blocker.name} is still there"
                problems[item.key] = reason
                failed_kinds.setdefault(item.kind, item)
                ctx.ui.resource(item.kind, item.name, "skipped", reason)
                continue
            try:
                with translated(f"deleting {item.kind} {item.name}"):
                    note = step.delete(ctx, item)
            except DashscaleError as error:
                problems[item.key] = error.message
                failed_kinds.setdefault(item.kind, item)
                ctx.ui.resource(item.kind, item.name, "failed", error.message)
                continue
            ctx.ui.resource(item.kind, item.name, "deleted", note)
    return problems


# --- the command --------------------------------------------------------------------------------


def _sorted(items: list[Item]) -> list[Item]:
    return sorted(items, key=lambda item: ORDER.get(item.kind, len(ORDER)))


def show(ctx: Context, plan: Plan, dry_run: bool) -> None:
    """The listing: what goes (in the order it goes), what stays and why, what is not ours."""
    if plan.to_delete:
        ctx.ui.info("Would delete, in this order:" if dry_run else "To delete, in this order:")
        for item in _sorted(plan.to_delete):
            ctx.ui.resource(
                item.kind, item.name, "would delete" if dry_run else "delete", item.reason
            )
    if plan.kept:
        ctx.ui.info("Kept:")
        for item in _sorted(plan.kept):
            ctx.ui.resource(item.kind, item.name, "kept", item.reason)
    if plan.foreign:
        ctx.ui.info("Same name, but not this app's (left alone):")
        for item in _sorted(plan.foreign):
            ctx.ui.resource(item.kind, item.name, "not ours", item.reason)


def confirm(ctx: Context, plan: Plan, yes: bool) -> None:
    if yes:
        return
    count = len(plan.to_delete)
    if not is_interactive():
        raise ConfirmationNeeded(
            f"teardown would delete {count} resource(s) of {ctx.names.app} and there is no "
            "terminal to confirm on; nothing was deleted",
            "re-run with --yes to delete them, or with --dry-run to only list them",
        )
    question = f"Delete these {count} resource(s) of {ctx.names.app} in {ctx.config.aws_region}?"
    if not click.confirm(question, default=False, err=True):
        raise DashscaleError("teardown cancelled; nothing was deleted")


def teardown(ctx: Context, *, everything: bool, yes: bool, dry_run: bool) -> Plan:
    """The `teardown` command: survey, show, confirm, delete in order, verify. Returns the
    plan it surveyed first."""
    where = f"{ctx.names.app} in {ctx.config.aws_region}"
    ctx.ui.step(f"Surveying {where}")
    plan = survey(ctx, everything)
    if not plan.items:
        ctx.ui.info(f"nothing of {where} exists: nothing to delete")
        return plan
    show(ctx, plan, dry_run)
    if not plan.to_delete:
        ctx.ui.info("nothing to delete")
        return plan
    if dry_run:
        ctx.ui.info(f"dry run: nothing was deleted ({len(plan.to_delete)} resource(s) would be)")
        return plan
    confirm(ctx, plan, yes)
    ctx.ui.step(f"Deleting {len(plan.to_delete)} resource(s) of {where}")
    problems = execute(ctx, plan)
    verify(ctx, plan, everything, problems)
    return plan


def verify(
    ctx: Context, plan: Plan, everything: bool, problems: dict[tuple[str, str], str]
) -> None:
    """A second survey: nothing that was to be deleted may be left. Ends with the report."""
    ctx.ui.step("Checking what is left")
    after = survey(ctx, everything)
    left = after.to_delete
    planned = {item.key for item in plan.to_delete}
    deleted = [item for item in plan.to_delete if item.key not in {i.key for i in left}]
    for item in _sorted(left):
        if item.key in problems:
            reason = problems[item.key]
        elif item.key in planned:
            reason = "still there after its deletion: AWS may still be removing it"
        else:
            reason = "appeared during the teardown"
        item.reason = reason
        ctx.ui.resource(item.kind, item.name, "left", reason)
    kept = ", ".join(f"{item.kind} {item.name}" for item in _sorted(after.kept))
    summary = f"{ctx.names.app}: {len(deleted)} resource(s) deleted"
    if kept:
        summary += f"; kept: {kept}"
    if after.foreign:
        summary += f"; {len(after.foreign)} with the same name but not this app's left alone"
    ctx.ui.info(summary)
    if left:
        names = "; ".join(f"{item.kind} {item.name} ({item.reason})" for item in _sorted(left))
        raise DashscaleError(
            f"{len(left)} resource(s) of {ctx.names.app} are still there: {names}",
            "fix what is named, then run `dashscale teardown` again: it deletes only what is left",
        )
    ctx.ui.info(f"teardown of {ctx.names.app} complete: nothing of it is left to delete")

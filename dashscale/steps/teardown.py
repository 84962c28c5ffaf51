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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.exceptions
import click

from dashscale.aws import error_code, translated
from dashscale.context import Context
from dashscale.errors import EXIT_USAGE, AwsError, DashscaleError
from dashscale.model import Resource
from dashscale.steps import autoscaling, taskrole
from dashscale.steps.survey import (
    ALIAS_RECORD,
    CERTIFICATE,
    CLUSTER,
    LISTENER,
    LOAD_BALANCER,
    LOG_GROUP,
    REPOSITORY,
    ROLE,
    SCALING,
    SECRET,
    SECURITY_GROUP,
    SERVICE,
    SIGN_IN_DOMAIN,
    TARGET_GROUP,
    TASK_DEFINITION,
    USER_POOL,
    USER_POOL_CLIENT,
    VALIDATION_RECORD,
    ZONE,
    Item,
    Plan,
    survey,
)
from dashscale.steps.up import every_resource
from dashscale.ui import is_interactive

RETRY_INTERVAL = 5.0
MAX_RETRY_INTERVAL = 15.0
TASK_DEFINITION_BATCH = 10  # DeleteTaskDefinitions takes at most ten


class ConfirmationNeeded(DashscaleError):
    """Deleting needs a yes, and there is no terminal to ask on."""

    exit_code = EXIT_USAGE


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
    ctx.wait(what, what, check, interval, max_interval=MAX_RETRY_INTERVAL, hint=hint)
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
    autoscaling.remove(ctx, item.data["autoscaling"])
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
    """The execution role (its secrets policy with it) or the task role: policies, then role."""
    return taskrole.delete_role_named(ctx, item.name)


def delete_secret(ctx: Context, item: Item) -> str:
    ssm = ctx.client("ssm")
    try:
        ssm.delete_parameter(Name=item.name)
    except ssm.exceptions.ParameterNotFound:
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


def _cognito_gone(ctx: Context, action: Callable[[Any], Any], **request: str) -> str:
    cognito = ctx.client("cognito-idp")
    try:
        action(cognito)(**request)
    except botocore.exceptions.ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        return "already gone"
    return ""


def delete_user_pool_client(ctx: Context, item: Item) -> str:
    return _cognito_gone(
        ctx,
        lambda c: c.delete_user_pool_client,
        UserPoolId=item.data["pool"],
        ClientId=item.data["client"],
    )


def delete_sign_in_domain(ctx: Context, item: Item) -> str:
    return _cognito_gone(
        ctx, lambda c: c.delete_user_pool_domain, UserPoolId=item.data["pool"], Domain=item.name
    )


def delete_user_pool(ctx: Context, item: Item) -> str:
    return _cognito_gone(ctx, lambda c: c.delete_user_pool, UserPoolId=item.data["pool"])


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


def gone_first(kind: str, also: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The kinds that must be gone before `kind` goes: those with a resource that needs one
    of this kind (the model's `needs`, reversed), and `also` (what AWS releases late)."""
    mine = {r.key for r in every_resource() if _kind(r) == kind}
    users = {_kind(r) for r in every_resource() if mine & set(r.needs)} - {kind}
    return tuple(sorted(users | set(also)))


def _kind(resource: Resource) -> str:
    """The survey folds the scaling policies into the scalable target (they go with it)."""
    return SCALING if resource.kind == "scaling policy" else resource.kind


# The order of real AWS, which the emulator does not enforce.
STEPS: tuple[Step, ...] = (
    Step(SCALING, delete_scalable_target),
    Step(SERVICE, delete_service, gone_first(SERVICE)),
    Step(TASK_DEFINITION, delete_task_definitions, gone_first(TASK_DEFINITION)),
    Step(CLUSTER, delete_cluster, gone_first(CLUSTER)),
    Step(ALIAS_RECORD, delete_record),
    Step(VALIDATION_RECORD, delete_record),
    Step(LISTENER, delete_listener, gone_first(LISTENER)),
    Step(USER_POOL_CLIENT, delete_user_pool_client, gone_first(USER_POOL_CLIENT)),
    Step(SIGN_IN_DOMAIN, delete_sign_in_domain, gone_first(SIGN_IN_DOMAIN)),
    Step(USER_POOL, delete_user_pool, gone_first(USER_POOL)),
    # DNS stops pointing at the load balancer before it goes: never a name aimed at nothing
    Step(LOAD_BALANCER, delete_load_balancer, gone_first(LOAD_BALANCER)),
    Step(TARGET_GROUP, delete_target_group, gone_first(TARGET_GROUP)),
    # ACM takes a while to notice the load balancer is gone
    Step(CERTIFICATE, delete_certificate, gone_first(CERTIFICATE, (LOAD_BALANCER,))),
    # the tasks' group first: its rule refers to the load balancer's group
    Step(SECURITY_GROUP, delete_security_group, gone_first(SECURITY_GROUP), serial=True),
    Step(ROLE, delete_role, gone_first(ROLE)),
    Step(REPOSITORY, delete_repository),
    Step(SECRET, delete_secret),
    Step(LOG_GROUP, delete_log_group, gone_first(LOG_GROUP)),
    Step(ZONE, delete_zone, gone_first(ZONE)),
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

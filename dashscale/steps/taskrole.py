"""The app's task role APP-REGION-task-role: what the app's own code may do in AWS (S3, Athena).

Trusted by ECS tasks of this account only; TASK_ROLE_POLICIES attached (exactly those),
TASK_POLICY_FILE as the inline policy `dashscale-task`. Absent while neither is set; `up` deletes
it when both are unset again, once the service runs a task definition without it (see
`AfterDeployment`). Never the execution role (ECS's own), never widened for it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import botocore.exceptions

from dashscale import partition
from dashscale.aws import error_code, translated
from dashscale.context import Context
from dashscale.errors import ConfigError
from dashscale.model import (
    ABSENT,
    DELETE,
    NEW,
    Change,
    Item,
    Permissions,
    Resource,
    Survey,
    absent,
)
from dashscale.steps.iam import Role, delete_role_named, platform_role

TASK_ROLE_KEY = "task role"
TASK_POLICY = "dashscale-task"
# up.py's task that follows the service's rollout: True once the service runs the new task
# definition alone (service.py's key; cluster.py imports this module, so no import of it here)
DEPLOYED, SERVICE_KEY, TASK_DEFINITION_KEY = "deployment", "ECS service", "task definition"


def task_policy(ctx: Context) -> dict[str, Any] | None:
    """TASK_POLICY_FILE's policy, checked to be a JSON IAM policy; None when unset."""
    path, named = ctx.config.task_policy_path, f"TASK_POLICY_FILE={ctx.config.task_policy_file}"
    if path is None:
        return None
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{named}: no such file", "create it or unset it") from None
    except (ValueError, OSError) as error:
        raise ConfigError(f"{named} is not valid JSON: {error}") from None
    statements = document.get("Statement") if isinstance(document, dict) else None
    if not isinstance(statements, (list, dict)) or not statements:
        raise ConfigError(
            f"{named} is not an IAM policy: it needs a Statement",
            'write {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", ...}]}',
        )
    return document


# Paths under which AWS keeps managed policies that are often named without them
# (job-function/ViewOnlyAccess, service-role/AWSLambdaBasicExecutionRole).
MANAGED_POLICY_PATHS = ("job-function/", "service-role/")


def policy_exists(ctx: Context, arn: str) -> bool:
    iam = ctx.client("iam")
    with translated(f"checking the policy {arn}"):
        try:
            iam.get_policy(PolicyArn=arn)
        except botocore.exceptions.ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
            return False
    return True


def unknown_policy(ctx: Context, arn: str) -> ConfigError:
    """The refusal of a policy that does not exist; for an AWS managed policy named without its
    path, the hint gives the ARN under the path where it does exist (reads only, and only on
    this error path)."""
    home = partition.for_region(ctx.config.aws_region)
    name = arn.split(":policy/", 1)[-1]
    hint = (
        "use an AWS managed policy name such as AmazonS3ReadOnlyAccess, or the ARN of one of yours"
    )
    if arn == home.managed_policy(name) and "/" not in name:
        for path in MANAGED_POLICY_PATHS:
            candidate = home.managed_policy(path + name)
            if policy_exists(ctx, candidate):
                hint = f"AWS keeps it under a path: write {path}{name} or {candidate}"
                break
    return ConfigError(f"TASK_ROLE_POLICIES names a policy that does not exist: {arn}", hint)


def task_role_wanted(ctx: Context) -> bool:
    """True when the app has a task role: its own, or the platform team's TASK_ROLE_ARN."""
    config = ctx.config
    return bool(config.task_role_policies or config.task_policy_file or config.task_role_arn)


class TaskRole(Role):
    """APP-REGION-task-role: what the app's own code may do in AWS (absent when not asked for):
    TASK_ROLE_POLICIES attached, TASK_POLICY_FILE as its inline policy."""

    find_calls = (*Role.find_calls, "iam:GetPolicy")

    def permissions(self, ctx: Context) -> Permissions:
        # for this configuration: without a task role, `up` makes none
        permissions = super().permissions(ctx)
        if task_role_wanted(ctx):
            return permissions
        return dataclasses.replace(permissions, find=Role.find_calls, apply=())

    key = TASK_ROLE_KEY
    named = "task_role"
    inline_name = TASK_POLICY
    platform = "TASK_ROLE_ARN"

    reads = (TASK_DEFINITION_KEY, SERVICE_KEY)

    def description(self, ctx: Context) -> str:
        return f"dashscale: what {ctx.names.app}'s code may do in AWS"

    def attached(self, ctx: Context) -> list[str]:
        return sorted(ctx.config.task_role_policies)

    def inline(self, ctx: Context) -> dict[str, Any] | None:
        return task_policy(ctx)

    def inline_source(self, ctx: Context) -> str:
        return ctx.config.task_policy_file or "(none)"

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        arn = self.platform_arn(ctx)
        if arn:
            return platform_role(ctx, self.platform, arn)
        in_use = (found.get(TASK_DEFINITION_KEY) or {}).get("taskRoleArn")
        if not task_role_wanted(ctx) and not in_use and not may_run_older(found):
            # Not asked for, and the app's tasks use none: nothing to check (a role left by an
            # interrupted run goes with `teardown`)
            return None
        for arn in ctx.config.task_role_policies:  # an unknown policy stops the run here
            if not policy_exists(ctx, arn):
                raise unknown_policy(ctx, arn)
        return self.read(ctx)

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        if not task_role_wanted(ctx):  # TaskRoleRemoval deletes it, after the deployment
            return absent(self.kind, self.name(ctx))
        return super().plan(ctx, current, refs)

    def ref(self, ctx: Context, current: Any, change: Change) -> Any:
        if change.action in (DELETE, ABSENT):
            return None
        return str(current["Arn"]) if current else NEW

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        if item.data.get("platform"):
            return item.name, f"task role; {item.reason}"
        return item.name, "task role (the app's own permissions)"

    def when_absent(self, ctx: Context, survey: Survey) -> tuple[str, str, str] | None:
        if survey.of(self.key) or not task_role_wanted(ctx):
            return None
        return self.name(ctx), "missing", ""


def may_run_older(found: Mapping[str, Any]) -> bool:
    """True when the service may still run tasks of another revision than the latest (a
    deployment under way, or one not started yet after `dashscale cluster`): what the latest
    revision no longer names may still be in use. False without a service."""
    service = found.get(SERVICE_KEY)
    if not service:
        return False
    latest = (found.get(TASK_DEFINITION_KEY) or {}).get("taskDefinitionArn")
    deployments = service.get("deployments") or []
    return (
        service.get("taskDefinition") != latest
        or len(deployments) > 1
        or any(d.get("rolloutState") not in (None, "COMPLETED") for d in deployments)
    )


class AfterDeployment(Resource):
    """The deletion of something tasks of the running task definition use (the secrets policy,
    the task role), apart from the resource that creates and updates it so that its turn comes
    after the rollout: `up` deletes it once the service runs the new task definition alone
    (DEPLOYED is True). Until then the old tasks keep it, and a task that starts meanwhile
    with the old definition still gets it. `up --no-wait` follows the rollout anyway when it
    deletes one of these (up.py); `dashscale cluster` keeps them for the next `up`."""

    needs = (DEPLOYED,)
    of: Resource  # the resource it deletes for; `reads` its finding, so nothing is read twice

    def name(self, ctx: Context) -> str:
        return self.of.name(ctx)

    def find(self, ctx: Context, found: Mapping[str, Any]) -> Any:
        return found.get(self.of.key)

    def unwanted(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> str | None:
        """Why it goes (the plan's detail), or None when it stays or is not there."""
        raise NotImplementedError

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        why = self.unwanted(ctx, current, refs)
        if why is None:
            return absent(self.kind, self.name(ctx))
        return Change(self.kind, self.name(ctx), DELETE, detail=f"{why}; once the new tasks serve")

    def ref(self, ctx: Context, current: Any, change: Change) -> bool:
        return change.action == DELETE  # read by `skipped`: only a deletion waits

    def skipped(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> str | None:
        if refs.get(self.key) and refs.get(DEPLOYED) is not True:
            return (
                "kept: the service may still start tasks that use it; `dashscale up` deletes "
                "it once the new task definition serves"
            )
        return None


class TaskRoleRemoval(AfterDeployment):
    """The task role deleted once TASK_ROLE_POLICIES and TASK_POLICY_FILE are unset."""

    def permissions(self, ctx: Context) -> Permissions:
        # for this configuration: with a task role, `up` deletes none
        permissions = super().permissions(ctx)
        return dataclasses.replace(permissions, apply=()) if task_role_wanted(ctx) else permissions

    calls = {DELETE: ("iam:DetachRolePolicy", "iam:DeleteRolePolicy", "iam:DeleteRole")}
    key = "task role removal"
    kind = TaskRole.kind
    of = TaskRole()
    reads = (TaskRole.key,)

    def unwanted(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> str | None:
        if current is None or task_role_wanted(ctx):  # TASK_ROLE_ARN's role is never deleted
            return None
        return "TASK_ROLE_POLICIES and TASK_POLICY_FILE unset"

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> bool:
        name = self.name(ctx)
        with translated(f"deleting IAM role {name}"):
            delete_role_named(ctx, name)
        return True

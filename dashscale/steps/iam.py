"""The app's IAM roles: one `Role` resource (the execution role and the task role are its two
instances, in cluster.py and taskrole.py), the lookup with the ownership check, the trust policy
(ECS tasks of this account only), the policy documents IAM answers URL-encoded, and the deletion
of a role with its policies."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

import botocore.exceptions

from dashscale.aws import NotAllowed, error_code, require_owned, translated
from dashscale.context import Context
from dashscale.errors import AwsError, ConfigError
from dashscale.inventory import ignoring, unless_gone
from dashscale.model import (
    CREATE,
    KEEP,
    NEW,
    UPDATE,
    Change,
    Item,
    Resource,
    Survey,
    compare,
    create,
)
from dashscale.partition import ECS_TASKS_PRINCIPAL


def find_role(ctx: Context, name: str) -> dict[str, Any] | None:
    """The IAM role `name`, checked to be this app's; None when missing."""
    iam = ctx.client("iam")
    with translated(f"looking up IAM role {name}"):
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except iam.exceptions.NoSuchEntityException:
            return None
        tags = role.get("Tags")
        if tags is None:  # older answers leave tags out of GetRole
            tags = iam.list_role_tags(RoleName=name).get("Tags", [])
    require_owned(ctx.names, "IAM role", name, tags)
    return dict(role)


def trust_policy(account_id: str) -> dict[str, Any]:
    """ECS tasks of this account only may assume the execution role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ECS_TASKS_PRINCIPAL},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ],
    }


def role_name_of(arn: str) -> str:
    """The role's name: the last part of arn:PARTITION:iam::ACCOUNT:role/PATH/NAME."""
    return arn.rsplit("/", 1)[-1]


def trusts_ecs_tasks(document: Any) -> bool:
    """True when a trust policy lets ECS tasks assume the role."""
    statements = (policy_document(document) or {}).get("Statement", [])
    for statement in [statements] if isinstance(statements, dict) else statements:
        actions = statement.get("Action", [])
        services = (statement.get("Principal") or {}).get("Service", [])
        if (
            statement.get("Effect") == "Allow"
            and "sts:AssumeRole" in ([actions] if isinstance(actions, str) else actions)
            and ECS_TASKS_PRINCIPAL in ([services] if isinstance(services, str) else services)
        ):
            return True
    return False


def platform_role(ctx: Context, variable: str, arn: str) -> dict[str, Any]:
    """The platform team's role `variable` names, checked before any change: of the caller's
    account, there, and trusted by ECS tasks (the last two where IAM lets us read it: without
    iam:GetRole, a notice). Reads only."""
    account = arn.split(":")[4]
    if account != ctx.aws.account_id:
        raise ConfigError(
            f"{variable} names a role of account {account}, but the credentials are of account "
            f"{ctx.aws.account_id}",
            "ECS uses roles of the app's own account: ask the platform team for that ARN",
        )
    name = role_name_of(arn)
    try:
        role = ctx.client("iam").get_role(RoleName=name)["Role"]
    except NotAllowed:  # every client names denials (dashscale/aws.py name_denials)
        ctx.ui.info(
            f"{variable}: not allowed to read IAM role {name} (iam:GetRole), so whether it "
            f"exists and trusts {ECS_TASKS_PRINCIPAL} is not checked"
        )
        return {"Arn": arn, "RoleName": name, "Platform": variable}
    except botocore.exceptions.ClientError as error:
        if error_code(error) == GONE:
            raise ConfigError(
                f"{variable}={arn}: no such IAM role", "ask the platform team for the role's ARN"
            ) from None
        raise
    if not trusts_ecs_tasks(role.get("AssumeRolePolicyDocument")):
        raise ConfigError(
            f"{variable}: IAM role {name} does not trust {ECS_TASKS_PRINCIPAL}, so ECS "
            "cannot use it",
            f'the platform team must let {{"Service": "{ECS_TASKS_PRINCIPAL}"}} '
            "sts:AssumeRole it in its trust policy",
        )
    return {**role, "Arn": arn, "Platform": variable}


def policy_document(document: Any) -> Any:
    if isinstance(document, str):
        return json.loads(urllib.parse.unquote(document))
    return document


class Role(Resource):
    """An IAM role of the app, trusted by ECS tasks of this account only, with exactly the
    managed policies `attached` names and, when `inline_name` is set, that inline policy as
    `inline` gives it. The execution role and the task role are its two instances."""

    find_calls = (
        "iam:GetRole",
        "iam:ListRoleTags",
        "iam:ListAttachedRolePolicies",
        "iam:GetRolePolicy",
    )
    survey_calls = ("iam:GetRole", "iam:ListRoleTags")
    delete_calls = (
        "iam:ListAttachedRolePolicies",
        "iam:ListRolePolicies",
        "iam:DetachRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:DeleteRole",
    )

    calls = {
        CREATE: (
            "iam:CreateRole",
            "iam:TagRole",
            "iam:AttachRolePolicy",
            "iam:PutRolePolicy",
        ),
        UPDATE: (
            "iam:UpdateAssumeRolePolicy",
            "iam:AttachRolePolicy",
            "iam:DetachRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
        ),
    }
    kind = "IAM role"
    inline_name: str | None = None  # the inline policy this resource manages (others are kept)
    missing_shown = True
    # the variable that names the platform team's role instead (EXECUTION_ROLE_ARN): with it
    # set, this resource reads and names that role, and never creates, changes or deletes one
    platform: str = ""

    def platform_arn(self, ctx: Context) -> str | None:
        return getattr(ctx.config, self.platform.lower(), None) if self.platform else None

    def name(self, ctx: Context) -> str:
        arn = self.platform_arn(ctx)
        return role_name_of(arn) if arn else super().name(ctx)

    def platform_plan(self, ctx: Context) -> Change:
        """The platform's role: kept as it is, whatever this app's configuration says."""
        return Change(self.kind, self.name(ctx), KEEP, detail=self.platform_note())

    def platform_note(self) -> str:
        return f"the platform team's ({self.platform}): never changed or deleted"

    def description(self, ctx: Context) -> str:
        raise NotImplementedError

    def attached(self, ctx: Context) -> list[str]:
        """The ARNs of the managed policies it should have, sorted."""
        raise NotImplementedError

    def inline(self, ctx: Context) -> dict[str, Any] | None:
        return None

    def read(self, ctx: Context) -> dict[str, Any] | None:
        """The role with its attached policies (and its inline policy), or None."""
        name = self.name(ctx)
        role = find_role(ctx, name)
        if role is None:
            return None
        iam = ctx.client("iam")
        with translated(f"reading the policies of IAM role {name}"):
            attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            inline = None
            if self.inline_name is not None:
                try:
                    answer = iam.get_role_policy(RoleName=name, PolicyName=self.inline_name)
                    inline = policy_document(answer["PolicyDocument"])
                except botocore.exceptions.ClientError as error:
                    if error_code(error) != GONE:
                        raise
        return {
            **role,
            "AttachedPolicyArns": sorted(p["PolicyArn"] for p in attached),
            "InlinePolicy": inline,
        }

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        if self.platform_arn(ctx):
            return self.platform_plan(ctx)
        name = self.name(ctx)
        wanted, inline = self.attached(ctx), self.inline(ctx)
        short = [arn.rsplit("/", 1)[-1] for arn in wanted]
        detail = ", ".join(short + ([self.inline_name or ""] if inline else []))
        if current is None:
            return create(self.kind, name, detail)
        differing: dict[str, tuple[Any, Any]] = {}
        account = str(current["Arn"]).split(":")[4]  # the role's own: no call to ask
        if policy_document(current.get("AssumeRolePolicyDocument")) != trust_policy(account):
            differing["trust policy"] = ("other", "ECS tasks of this account only")
        if current["AttachedPolicyArns"] != wanted:
            have = [arn.rsplit("/", 1)[-1] for arn in current["AttachedPolicyArns"]]
            differing["attached policies"] = (have, short)
        if self.inline_name is not None and current["InlinePolicy"] != inline:
            have = "(none)" if current["InlinePolicy"] is None else "other"
            differing["inline policy"] = (have, self.inline_source(ctx))
        shown = {"trust policy": "trust policy (ECS tasks of this account only)"}
        return compare(self.kind, name, differing, detail, shown=shown)

    def inline_source(self, ctx: Context) -> str:
        """Where the wanted inline policy comes from, as the plan shows it."""
        return "(none)"

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> str:
        name = self.name(ctx)
        iam = ctx.client("iam")
        trust = json.dumps(trust_policy(ctx.aws.account_id))
        attached = set(current["AttachedPolicyArns"]) if current else set()
        wanted, inline = set(self.attached(ctx)), self.inline(ctx)
        with translated(f"setting up IAM role {name}"):
            if current is None:
                current = self._create(ctx, trust)
            elif "trust policy" in change.fields:
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
            for arn in sorted(wanted - attached):
                iam.attach_role_policy(RoleName=name, PolicyArn=arn)
            for arn in sorted(attached - wanted):
                iam.detach_role_policy(RoleName=name, PolicyArn=arn)
            if self.inline_name is None:
                return str(current["Arn"])
            if inline is not None and (change.action != UPDATE or "inline policy" in change.fields):
                iam.put_role_policy(
                    RoleName=name, PolicyName=self.inline_name, PolicyDocument=json.dumps(inline)
                )
            elif inline is None and "inline policy" in change.fields:
                ignoring(
                    lambda: iam.delete_role_policy(RoleName=name, PolicyName=self.inline_name),
                    GONE,
                )
        return str(current["Arn"])

    def _create(self, ctx: Context, trust: str) -> dict[str, Any]:
        """A new role (one a retried request made already counts), found again."""
        name, iam = self.name(ctx), ctx.client("iam")
        try:
            iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=trust,
                Description=self.description(ctx),
                Tags=ctx.names.tags(),
            )
        except botocore.exceptions.ClientError as error:
            if error_code(error) != "EntityAlreadyExists":
                raise
        role = find_role(ctx, name)
        if role is None:
            raise AwsError(f"IAM role {name} was created but cannot be found", "re-run in a minute")
        return role

    def ref(self, ctx: Context, current: Any, change: Change) -> str:
        return str(current["Arn"]) if current else NEW

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        own = Resource.name(self, ctx)  # the role dashscale makes when the platform's is unset
        arn = self.platform_arn(ctx)
        if arn and role_name_of(arn) == own:
            return [self.platform_item(ctx, arn)]
        # A role dashscale made before the platform's took over is still the app's: found, and
        # deleted by teardown, beside the platform's, which is shown as kept and never touched.
        mine = self.found_item(ctx, lambda: find_role(ctx, own), name=own)
        return [self.platform_item(ctx, arn), *mine] if arn else mine

    def platform_item(self, ctx: Context, arn: str) -> Item:
        data = {"resource": {"Arn": arn}, "platform": True}
        return Item(self.kind, role_name_of(arn), KEEP, self.platform_note(), data)

    def status_state(self, ctx: Context, item: Item) -> str:
        return "kept" if item.data.get("platform") else "found"

    def delete(self, ctx: Context, item: Item) -> str:
        """Its policies (a secrets policy among them), then the role."""
        return delete_role_named(ctx, item.name)


GONE = "NoSuchEntity"  # IAM's answer for a role or policy that is not there


def delete_role_named(ctx: Context, name: str) -> str:
    """Detaches its policies, deletes its inline ones, then the role; "already gone" or "".
    Errors by code: this runs in the teardown's threads (`iam.exceptions` are built lazily)."""
    iam = ctx.client("iam")
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
    except botocore.exceptions.ClientError as error:
        if error_code(error) != GONE:
            raise
        return "already gone"
    # Each call on its own: a retried detach whose first answer was lost says NoSuchEntity
    # about the policy, not the role.
    for arn in attached:
        ignoring(lambda arn=arn: iam.detach_role_policy(RoleName=name, PolicyArn=arn), GONE)
    for policy_name in inline:
        ignoring(
            lambda policy_name=policy_name: iam.delete_role_policy(
                RoleName=name, PolicyName=policy_name
            ),
            GONE,
        )
    return unless_gone(lambda: iam.delete_role(RoleName=name), GONE)

"""Deploying from CI without keys: GitHub Actions assumes the role APP-deployer through the
account's OIDC identity provider for GitHub, and runs `dashscale up`.

- `dashscale ci github` writes .github/workflows/dashscale.yml: on a push to the branch, check
  out, set up Python, install dashscale, exchange GitHub's OIDC token for the role's short-lived
  credentials (aws-actions/configure-aws-credentials), `dashscale up`. No key, no secret.
- `dashscale ci role` makes the two resources below (one driver run: dashscale/driver.py, so
  `--dry-run` prints the same plan and a second run changes nothing): the provider for
  GitHub's token issuer (audience: AWS STS), shared by every role of the
  account that trusts GitHub, and the role, trusted by that repository and branch alone, with
  the deployer's policy inline.
- Both are kinds of the model in `up.every_resource()`: `status` shows them, `teardown --all`
  deletes the role, and the provider when dashscale made it and no other role trusts it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import botocore.exceptions

from dashscale import __version__, driver, partition
from dashscale.aws import error_code, translated
from dashscale.context import Context
from dashscale.errors import DashscaleError
from dashscale.inventory import unless_gone
from dashscale.model import (
    CREATE,
    DELETE,
    KEEP,
    NEW,
    UPDATE,
    Change,
    Item,
    Plan,
    Resource,
    Survey,
    compare,
    create,
)
from dashscale.names import TAG_KEY
from dashscale.steps.iam import GONE, Role, delete_role_named, find_role, policy_document

GITHUB_HOST = "token.actions.githubusercontent.com"
GITHUB_ISSUER = f"https://{GITHUB_HOST}"
AUDIENCE = partition.STS_AUDIENCE
DEPLOYER_POLICY = "dashscale-deployer"
WORKFLOW = Path(".github") / "workflows" / "dashscale.yml"
PURPOSES = ("deploy", "up")


def provider_arn(ctx: Context) -> str:
    home = partition.for_region(ctx.config.aws_region)
    return home.arn("iam", "", ctx.aws.account_id, f"oidc-provider/{GITHUB_HOST}")


def deployer_arn(ctx: Context) -> str:
    home = partition.for_region(ctx.config.aws_region)
    return home.arn("iam", "", ctx.aws.account_id, f"role/{ctx.names.deployer_role}")


def subject(repo: str, branch: str) -> str:
    """The `sub` of GitHub's token for a workflow run on a push to `branch` of `repo`."""
    return f"repo:{repo}:ref:refs/heads/{branch}"


def trust_policy(provider: str, repo: str, branch: str) -> dict[str, Any]:
    """Only GitHub's tokens for that repository and branch, meant for STS, may assume it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_HOST}:aud": AUDIENCE,
                        f"{GITHUB_HOST}:sub": subject(repo, branch),
                    }
                },
            }
        ],
    }


def _deployer_policy(ctx: Context, purpose: str) -> dict[str, Any]:
    """The deployer's inline policy for `purpose` ("deploy": ship a new image of an app that
    exists; "up": create and change everything too): `dashscale policy --for PURPOSE`, the
    document generated from what dashscale calls (dashscale/policy.py)."""
    from dashscale import policy

    return policy.document(ctx, purpose)


# --- the provider --------------------------------------------------------------------------------


def find_provider(ctx: Context) -> dict[str, Any] | None:
    """The account's OIDC provider for GitHub (one per account and URL), or None."""
    arn = provider_arn(ctx)
    with translated(f"looking up the OIDC provider {GITHUB_HOST}"):
        try:
            answer = ctx.client("iam").get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
        except botocore.exceptions.ClientError as error:
            if error_code(error) != GONE:
                raise
            return None
    return {"Arn": arn, "ClientIDList": answer.get("ClientIDList", []), "Tags": answer.get("Tags")}


def roles_trusting(ctx: Context, arn: str) -> list[str]:
    """The names of the account's roles whose trust policy names the provider `arn`."""
    pages = ctx.client("iam").get_paginator("list_roles").paginate()
    with translated("listing the account's IAM roles"):
        return [
            role["RoleName"]
            for page in pages
            for role in page["Roles"]
            if arn in json.dumps(policy_document(role.get("AssumeRolePolicyDocument")))
        ]


class GithubProvider(Resource):
    """The account's IAM OIDC identity provider for GitHub Actions, audience AWS STS.
    Shared: every role that trusts GitHub in this account names it."""

    calls = {
        CREATE: ("iam:CreateOpenIDConnectProvider", "iam:TagOpenIDConnectProvider"),
        UPDATE: ("iam:AddClientIDToOpenIDConnectProvider",),
    }
    find_calls = ("iam:GetOpenIDConnectProvider",)
    # whether another role still trusts it: every role's trust policy
    survey_calls = ("iam:GetOpenIDConnectProvider", "iam:ListRoles")
    delete_calls = ("iam:DeleteOpenIDConnectProvider",)
    key = "GitHub OIDC provider"
    kind = "IAM OIDC provider"
    surveys_after = ("deployer role",)  # DeployerRole.key: whether it goes in this teardown

    def name(self, ctx: Context) -> str:
        return GITHUB_HOST

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        return find_provider(ctx)

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        detail = f"audience {AUDIENCE}"
        if current is None:
            return create(self.kind, GITHUB_HOST, detail)
        differing = {}
        if AUDIENCE not in current["ClientIDList"]:
            differing["audiences"] = (current["ClientIDList"], [*current["ClientIDList"], AUDIENCE])
        return compare(self.kind, GITHUB_HOST, differing, detail)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> str:
        iam, arn = ctx.client("iam"), provider_arn(ctx)
        with translated(f"setting up the OIDC provider {GITHUB_HOST}"):
            if current is not None:
                iam.add_client_id_to_open_id_connect_provider(
                    OpenIDConnectProviderArn=arn, ClientID=AUDIENCE
                )
                return arn
            try:  # AWS trusts GitHub's certificate authority itself: no thumbprint to give
                iam.create_open_id_connect_provider(
                    Url=GITHUB_ISSUER, ClientIDList=[AUDIENCE], Tags=ctx.names.tags()
                )
            except botocore.exceptions.ClientError as error:
                if error_code(error) != "EntityAlreadyExists":  # a retried create made it
                    raise
        return arn

    def ref(self, ctx: Context, current: Any, change: Change) -> str:
        return provider_arn(ctx)

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        """Deleted only when dashscale made it and no role trusts it once this teardown's
        deletions are done (the deployer role goes first when it goes)."""
        current = find_provider(ctx)
        deployer = survey.of(DeployerRole.key)
        if current is None or not (deployer or ctx.names.owns(current.get("Tags"))):
            return []  # another app's or another tool's: not this app's to show
        going = {item.name for item in deployer if item.action == DELETE}
        users = [name for name in roles_trusting(ctx, current["Arn"]) if name not in going]
        data = {"resource": current}
        if not any(tag.get("Key") == TAG_KEY for tag in current.get("Tags") or []):
            return [Item(self.kind, GITHUB_HOST, KEEP, "not made by dashscale: left alone", data)]
        if users:
            reason = f"trusted by {', '.join(sorted(users))}: kept while a role uses it"
            return [Item(self.kind, GITHUB_HOST, KEEP, reason, data)]
        return [Item(self.kind, GITHUB_HOST, DELETE, "no role trusts it any more", data)]

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        return item.name, item.reason if item.action == KEEP else f"audience {AUDIENCE}"

    def delete(self, ctx: Context, item: Item) -> str:
        iam = ctx.client("iam")
        arn = item.data["resource"]["Arn"]
        return unless_gone(
            lambda: iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn), GONE
        )


# --- the role ------------------------------------------------------------------------------------


class DeployerRole(Resource):
    """APP-deployer: what a GitHub Actions run of one repository and branch assumes, with the
    deployer's policy inline. Kept by `teardown` (it deploys, it holds nothing); `--all`
    deletes it."""

    calls = {
        CREATE: ("iam:CreateRole", "iam:TagRole", "iam:PutRolePolicy"),
        UPDATE: ("iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy"),
    }
    find_calls = ("iam:GetRole", "iam:ListRoleTags", "iam:GetRolePolicy")
    survey_calls = ("iam:GetRole", "iam:ListRoleTags")
    delete_calls = Role.delete_calls
    key = "deployer role"
    kind = "IAM role"
    named = "deployer_role"
    needs = (GithubProvider.key,)

    def __init__(self, repo: str = "", branch: str = "main", purpose: str = "deploy") -> None:
        self.repo, self.branch, self.purpose = repo, branch, purpose

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        name = self.name(ctx)
        role = find_role(ctx, name)
        if role is None:
            return None
        with translated(f"reading the policy of IAM role {name}"):
            try:
                answer = ctx.client("iam").get_role_policy(
                    RoleName=name, PolicyName=DEPLOYER_POLICY
                )
                inline = policy_document(answer["PolicyDocument"])
            except botocore.exceptions.ClientError as error:
                if error_code(error) != GONE:
                    raise
                inline = None
        return {**role, "InlinePolicy": inline}

    def desired(self, ctx: Context, refs: Mapping[str, Any]) -> tuple[dict, dict]:
        provider = refs.get(GithubProvider.key) or provider_arn(ctx)
        trust = trust_policy(provider, self.repo, self.branch)
        return trust, _deployer_policy(ctx, self.purpose)

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        name = self.name(ctx)
        trust, policy = self.desired(ctx, refs)
        detail = f"{subject(self.repo, self.branch)}; {self.purpose} policy"
        if current is None:
            return create(self.kind, name, detail)
        differing: dict[str, tuple[Any, Any]] = {}
        have = policy_document(current.get("AssumeRolePolicyDocument"))
        if have != trust:
            differing["trusted"] = (trusted_subject(have), subject(self.repo, self.branch))
        if current["InlinePolicy"] != policy:
            differing["policy"] = ("other" if current["InlinePolicy"] else None, self.purpose)
        return compare(self.kind, name, differing, detail)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> str:
        name, iam = self.name(ctx), ctx.client("iam")
        trust, policy = self.desired(ctx, refs)
        with translated(f"setting up IAM role {name}"):
            if current is None:
                current = self._create(ctx, json.dumps(trust))
            elif "trusted" in change.fields:
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
            if current.get("InlinePolicy") is None or "policy" in change.fields:
                iam.put_role_policy(
                    RoleName=name, PolicyName=DEPLOYER_POLICY, PolicyDocument=json.dumps(policy)
                )
        return str(current["Arn"])

    def _create(self, ctx: Context, trust: str) -> dict[str, Any]:
        name, iam = self.name(ctx), ctx.client("iam")
        try:
            iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=trust,
                Description=f"dashscale: GitHub Actions of {self.repo} deploy {ctx.names.app}",
                Tags=ctx.names.tags(),
            )
        except botocore.exceptions.ClientError as error:
            if error_code(error) != "EntityAlreadyExists":  # a retried create made it
                raise
        role = find_role(ctx, name)
        if role is None:
            raise DashscaleError(f"IAM role {name} was created but cannot be found", "re-run")
        return {**role, "InlinePolicy": None}

    def ref(self, ctx: Context, current: Any, change: Change) -> str:
        return str(current["Arn"]) if current else NEW

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        keep = "" if survey.everything else "lets CI deploy the app; --all deletes it"
        return self.found_item(ctx, lambda: find_role(ctx, self.name(ctx)), keep=keep)

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        trust = policy_document(item.data["resource"].get("AssumeRolePolicyDocument"))
        return item.name, f"deploys from GitHub Actions: {trusted_subject(trust)}"

    def delete(self, ctx: Context, item: Item) -> str:
        return delete_role_named(ctx, item.name)


def trusted_subject(trust: Any) -> str:
    """The `sub` a deployer role's trust policy allows, as it reads."""
    for statement in (trust or {}).get("Statement", []):
        condition = statement.get("Condition", {}).get("StringEquals", {})
        if f"{GITHUB_HOST}:sub" in condition:
            return str(condition[f"{GITHUB_HOST}:sub"])
    return "(other)"


RESOURCES: tuple[Resource, ...] = (GithubProvider(), DeployerRole())


# --- the commands ----------------------------------------------------------------------------


class _Shown(driver.Hooks):
    """`ci role`'s own lines: the documents a dry run would write, the role's ARN after a run."""

    def __init__(self, role: DeployerRole) -> None:
        self.role = role

    def shown(self, ctx: Context, planned: Plan) -> None:
        trust, policy = self.role.desired(ctx, planned.refs)
        ctx.ui.info(f"trust policy of {ctx.names.deployer_role}:\n{json.dumps(trust, indent=2)}")
        ctx.ui.info(f"its inline policy {DEPLOYER_POLICY}:\n{json.dumps(policy, indent=2)}")

    def after(self, ctx: Context, done: driver.Done) -> None:
        ctx.ui.info("next: `dashscale ci github` writes the workflow that assumes it")
        ctx.ui.result(str(done.results[DeployerRole.key]))


def role(ctx: Context, repo: str, branch: str, purpose: str) -> None:
    """`dashscale ci role`: the provider and the role, made or brought in line."""
    ctx.ui.step(f"CI role {ctx.names.deployer_role} for {subject(repo, branch)}")
    deployer = DeployerRole(repo, branch, purpose)
    driver.run(ctx, driver.Section((), [GithubProvider(), deployer], hooks=[_Shown(deployer)]))


def workflow(ctx: Context, branch: str) -> str:
    """The workflow file's text: no key, no secret; the role's ARN and the region only."""
    return f"""\
# Written by `dashscale ci github`: deploys {ctx.names.app} on every push to {branch}.
# No AWS keys: the job exchanges GitHub's OIDC token for short-lived credentials of the role
# {ctx.names.deployer_role} (made by `dashscale ci role --repo OWNER/NAME --branch {branch}`).
name: dashscale

on:
  push:
    branches: [{json.dumps(branch)}]

permissions:
  id-token: write  # GitHub's OIDC token, which AWS exchanges for the role's credentials
  contents: read

concurrency:
  group: dashscale-{ctx.names.app}
  cancel-in-progress: false  # never stop a deployment half-way

jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - name: Install dashscale
        run: python -m pip install "dashscale=={__version__}"
      - name: Assume {ctx.names.deployer_role}
        uses: aws-actions/configure-aws-credentials@v4
        with:
          role-to-assume: {deployer_arn(ctx)}
          aws-region: {ctx.config.aws_region}
      - name: Deploy
        run: dashscale up
"""


def github(ctx: Context, branch: str, force: bool = False) -> Path:
    """`dashscale ci github`: writes the workflow; an edited one is kept unless `force`."""
    path = ctx.config.project_dir / WORKFLOW
    text = workflow(ctx, branch)
    if path.is_file() and path.read_text() == text:
        ctx.ui.info(f"{WORKFLOW} is up to date")
        return path
    if path.is_file() and not force:
        raise DashscaleError(
            f"{WORKFLOW} exists and differs from what dashscale would write",
            "keep your edits, or pass --force to replace it",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    ctx.ui.info(f"wrote {WORKFLOW}: on a push to {branch}, `dashscale up` as {deployer_arn(ctx)}")
    _warn_about_settings(ctx)
    return path


def _warn_about_settings(ctx: Context) -> None:
    """What would make the workflow's `dashscale up` fail on GitHub's runner: a .env that git
    leaves out (the job reads it from the checkout), a profile of this machine's."""
    ignore = ctx.config.project_dir / ".gitignore"
    ignored = ignore.is_file() and any(
        line.strip().lstrip("/") in (".env", "*.env") for line in ignore.read_text().splitlines()
    )
    if ignored:
        ctx.ui.warn(
            ".gitignore leaves .env out, but the workflow's `dashscale up` reads it from the "
            "repository: commit it (it holds settings; secrets stay in `dashscale secret`)"
        )
    if ctx.config.aws_profile:
        ctx.ui.warn(
            f"AWS_PROFILE={ctx.config.aws_profile} is set in the configuration: GitHub's runner "
            "has no such profile (the workflow's credentials come from the role); set it in "
            "your shell instead of .env"
        )

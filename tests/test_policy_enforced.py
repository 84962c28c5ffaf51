"""`dashscale policy` proven by running under it: moto's server enforcing IAM, every command a
team runs made with the generated actions alone, and each action shown necessary by running
the step that first needs it without it (the ablation).

Emulator limits (tests/support/enforced.py): the deployer gets the generated actions with
Resource `*` and no Condition; the scoping of the document is checked in tests/test_policy.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dashscale import policy
from dashscale.cli import make_context
from tests.support.enforced import Enforced, enforcing
from tests.support.operating import installed_command

SETTINGS = (
    "DOMAIN=example.com\nAUTH=cognito\nTASK_ROLE_POLICIES=AmazonS3ReadOnlyAccess\n"
    # one step at a time, in a fixed order: what a step needs first is the same every run
    "PARALLEL_STEPS=1\nMIN_COUNT=1\nMAX_COUNT=3\n"
)

# Actions of the policy that no step of this run can show necessary in the emulator, and why.
TAGGING = "AWS checks it inside the create call that passes tags; moto does not"
REGISTRY = "a call of the push to ECR's registry; the test registry is not ECR"
REPAIR = "only repairs a setting changed by hand that this run does not change"
ON_FAILURE = "read only when a rollout fails, to say why"
NOT_SHOWN = {
    "iam:PassRole": "AWS checks it inside RegisterTaskDefinition; moto does not",
    "iam:TagRole": TAGGING,
    "ecs:TagResource": TAGGING,
    "logs:TagResource": TAGGING,
    "ecr:TagResource": TAGGING,
    "ec2:CreateTags": TAGGING,
    "elasticloadbalancing:AddTags": TAGGING,
    "acm:AddTagsToCertificate": TAGGING,
    "ecr:BatchCheckLayerAvailability": REGISTRY,
    "ecr:InitiateLayerUpload": REGISTRY,
    "ecr:UploadLayerPart": REGISTRY,
    "ecr:CompleteLayerUpload": REGISTRY,
    "ecr:PutImage": REGISTRY,
    "ecr:DescribeImages": "asked of ECR; with DASHSCALE_REGISTRY the engine asks the registry",
    "ecs:ListTasks": ON_FAILURE,
    "ecs:DescribeTasks": ON_FAILURE,
    "logs:DescribeLogStreams": ON_FAILURE,
    "logs:GetLogEvents": ON_FAILURE,
    "iam:ListRoleTags": "only when GetRole answers without tags (older answers)",
    "ec2:DescribeVpcs": "only in an account whose default VPC has no default subnets",
    "cognito-idp:UpdateUserPool": REPAIR,
    "cognito-idp:GetUserPoolMfaConfig": REPAIR,
    "cognito-idp:SetUserPoolMfaConfig": REPAIR,
    "cognito-idp:UpdateUserPoolClient": REPAIR,
    "ec2:RevokeSecurityGroupIngress": REPAIR,
    "ec2:AuthorizeSecurityGroupEgress": REPAIR,
    "ecr:PutImageTagMutability": REPAIR,
    "ecr:PutImageScanningConfiguration": REPAIR,
    "elasticloadbalancing:SetSecurityGroups": REPAIR,
    "elasticloadbalancing:SetSubnets": REPAIR,
    "elasticloadbalancing:RemoveTags": REPAIR,
    "iam:UpdateAssumeRolePolicy": REPAIR,
}


@dataclass
class Step:
    name: str
    args: tuple[str, ...]
    purpose: str
    stdin: str | None = None
    before: Callable[[Enforced], None] | None = None
    needs_exit_zero: bool = True
    # the steps that bring back the state this one starts from, before each of its ablations:
    # a failed deletion does not stop a teardown, so one partial run deletes all else
    restore: tuple[Step, ...] = ()
    used: list[str] = field(default_factory=list)  # IAM actions first used here, in order


def run(project: Path, enforced: Enforced, step: Step) -> subprocess.CompletedProcess:
    env = {**os.environ, **enforced.env(), "COLUMNS": "400"}  # one line per message
    return subprocess.run(
        [*installed_command(), *step.args],
        cwd=project,
        env=env,
        input=step.stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )


def drift(enforced: Enforced) -> None:
    """Settings changed by hand: the health check's path and the desired count."""
    app = app_name()
    elbv2 = enforced.admin("elbv2")
    (group,) = elbv2.describe_target_groups(Names=[f"{app}-tg"])["TargetGroups"]
    elbv2.modify_target_group(TargetGroupArn=group["TargetGroupArn"], HealthCheckPath="/drifted")
    enforced.admin("ecs").update_service(
        cluster=f"{app}-cluster", service=f"{app}-service", desiredCount=5
    )


def app_name() -> str:
    """APP_NAME of the project in the current folder."""
    line = next(x for x in Path(".env").read_text().splitlines() if x.startswith("APP_NAME="))
    return line.split("=", 1)[1]


CHANGE = "\n# a change of the source\n"


def new_source(enforced: Enforced) -> None:
    """The app's source changed: a new image to build, push and deploy."""
    app = Path("src/app.py")
    app.write_text(app.read_text() + CHANGE)


def steps() -> list[Step]:
    again = Step("up", ("up",), "up")
    everything = (
        Step("secret set", ("secret", "set", "STRIPE_KEY"), "up", stdin="xyzzy\n"),
        again,
        Step("teardown", ("teardown", "--yes"), "teardown"),
    )
    return [
        Step("secret set", ("secret", "set", "STRIPE_KEY"), "up", stdin="xyzzy\n"),
        Step("up", ("up",), "up"),
        Step("status", ("status",), "up", needs_exit_zero=False),  # moto: no healthy target
        Step("logs", ("logs",), "up"),
        Step("users add", ("users", "add", "someone@example.com"), "up"),
        Step("users list", ("users", "list"), "up"),
        Step("up after drift", ("up",), "up", before=drift),
        Step("redeploy", ("up",), "deploy", before=new_source),
        Step("teardown", ("teardown", "--yes"), "teardown", restore=(again,)),
        Step("teardown --all", ("teardown", "--yes", "--all"), "teardown", restore=everything),
    ]


def policy_actions(project: Path) -> dict[str, list[str]]:
    """The generated actions of each purpose, for the project's configuration."""
    from dashscale.cli import Options
    from dashscale.ui import UI

    cwd = os.getcwd()
    os.chdir(project)
    try:
        ctx = make_context(Options(None, ("AWS_ACCOUNT_ID=123456789012",), False, False), UI())
        return {p: policy.actions(ctx, p) for p in ("up", "deploy", "teardown")}
    finally:
        os.chdir(cwd)


def clear(result: subprocess.CompletedProcess, action: str) -> bool:
    """dashscale's one line naming the refused action: no traceback, no raw AWS answer."""
    text = " ".join((result.stdout + result.stderr).split())  # long lines wrap
    return (
        f"not allowed to {action} on " in text
        and "Traceback" not in text
        and "<?xml" not in text
        and "dashscale policy" in text
    )


@pytest.fixture
def enforced_project(aws: str, project: Path, registry, base_image: str) -> Path:
    with open(project / ".env", "a") as env:
        env.write(SETTINGS + f"DASHSCALE_REGISTRY={registry.address}\n")
    return project


def record(project: Path, enforced: Enforced, allowed: dict, sequence: list[Step]) -> set[str]:
    """Every step under its purpose's actions: all succeed; notes the IAM actions each step
    uses, in the order of their first use in it. Returns every action used."""
    seen: set[str] = set()
    for step in sequence:
        if step.before:
            step.before(enforced)
        enforced.allow(allowed[step.purpose])
        mark = len(enforced.checked)
        result = run(project, enforced, step)
        assert "not allowed" not in result.stderr, (step.name, result.stderr)
        if step.needs_exit_zero:
            assert result.returncode == 0, (step.name, result.stderr)
        step.used = list(dict.fromkeys(enforced.checked[mark:]))
        seen |= set(step.used)
    return seen


def ablate(project: Path, enforced: Enforced, allowed: dict, sequence: list[Step]) -> set[str]:
    """Step by step: for each action the step uses that no earlier step showed necessary, in
    the order the step first uses them, the step without that action must fail with
    dashscale's clear line naming it (or succeed: a step that can do without it, such as
    `status`, which reports what it cannot read only for what the configuration uses; a later
    step must then show it); then the step with all of them (dashscale is idempotent: the
    partial runs and the full one converge). Returns the actions shown necessary."""
    shown: set[str] = set()
    for step in sequence:
        if step.before:
            step.before(enforced)
        for action in step.used:
            if action in shown or action not in allowed[step.purpose]:
                continue  # sts:GetCallerIdentity: every identity may make it
            for earlier in step.restore:
                enforced.allow(allowed[earlier.purpose])
                assert run(project, enforced, earlier).returncode == 0, earlier.name
            enforced.allow([a for a in allowed[step.purpose] if a != action])
            result = run(project, enforced, step)
            failed = (
                result.returncode != 0 if step.needs_exit_zero else "not allowed" in result.stderr
            )
            if failed:
                assert clear(result, action), (step.name, action, result.stderr[-3000:])
                shown.add(action)
        enforced.allow(allowed[step.purpose])
        result = run(project, enforced, step)
        assert result.returncode == 0 or not step.needs_exit_zero, (step.name, result.stderr)
    return shown


def fresh_app(project: Path, name: str) -> None:
    """The same project under another APP_NAME, its source as at first."""
    env = project / ".env"
    env.write_text(re.sub(r"(?m)^APP_NAME=.*$", f"APP_NAME={name}", env.read_text()))
    app = project / "src" / "app.py"
    app.write_text(app.read_text().replace(CHANGE, ""))


@pytest.mark.docker
@pytest.mark.registry
def test_every_command_runs_under_the_generated_policy_and_each_action_is_needed(
    aws: str, enforced_project: Path
) -> None:
    project = enforced_project
    allowed = policy_actions(project)
    assert set(allowed["deploy"]) < set(allowed["up"])
    sequence = steps()
    started = time.monotonic()
    with enforcing(aws) as enforced:
        seen = record(project, enforced, allowed, sequence)
        print(f"enforced run: {time.monotonic() - started:.0f} s")
        every = set().union(*map(set, allowed.values()))
        unused = every - seen
        assert unused <= set(NOT_SHOWN), sorted(unused - set(NOT_SHOWN))
        assert seen <= every | {"sts:GetCallerIdentity"}, sorted(seen - every)

        fresh_app(project, "other")  # the ablation from nothing again, beside the first app
        started = time.monotonic()
        shown = ablate(project, enforced, allowed, sequence)
        took = time.monotonic() - started
        print(f"ablation: {len(shown)} actions, each shown necessary alone, in {took:.0f} s")
    assert sorted(seen - shown - {"sts:GetCallerIdentity"}) == []

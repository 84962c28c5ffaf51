"""Roles the platform team owns (EXECUTION_ROLE_ARN, TASK_ROLE_ARN) against moto's server: the
task definition names them; a full `up` and `teardown --all` make no IAM write call (recorded);
status shows them as kept; bad values stop before any change; with secrets, the exact statement
the team must attach is printed and IAM's policy simulator is asked where allowed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from dashscale.config import load_config
from dashscale.errors import ConfigError
from tests.support.leaks import distinctive_secret
from tests.support.operating import hook_every_client, refuse, said, wide_terminal
from tests.support.recording import recording

__all__ = ["wide_terminal"]  # autouse: a table row reads as one line

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-repository:v1"
ACCOUNT = "123456789012"
STORED = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/dashscale/demo/*"
SIMULATE = "before-call.iam.SimulatePrincipalPolicy"


def trusting(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
    )


def platform_role(boto, name: str, service: str = "ecs-tasks.amazonaws.com") -> str:
    """A role the platform team made (under a path of theirs); returns its ARN."""
    role = boto("iam").create_role(
        RoleName=name, Path="/platform/", AssumeRolePolicyDocument=trusting(service)
    )
    return str(role["Role"]["Arn"])


def use(project: Path, **settings: str) -> None:
    with (project / ".env").open("a") as env:
        env.writelines(f"{name}={value}\n" for name, value in settings.items())


def row(output: str, *parts: str) -> bool:
    return any(all(part in line for part in parts) for line in output.splitlines())


def test_up_and_teardown_name_the_platform_roles_and_make_no_iam_write_call(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution = platform_role(boto, "team-ecs-execution")
    task = platform_role(boto, "team-demo-task")
    use(project, EXECUTION_ROLE_ARN=execution, TASK_ROLE_ARN=task)
    assert run("secret", "set", "TOKEN", input=distinctive_secret()).exit_code == 0
    refuse(monkeypatch, SIMULATE, "AccessDenied", 403)  # and moto has no simulator

    with recording(aws) as calls:
        result = run("up", "--image", IMAGE)
    assert result.exit_code == 0, result.output
    assert calls.changing_in("iam") == []
    assert "GetRole" in calls.operations and "RegisterTaskDefinition" in calls.changing
    definition = boto("ecs").describe_task_definition(taskDefinition="demo-taskdef")
    assert definition["taskDefinition"]["executionRoleArn"] == execution
    assert definition["taskDefinition"]["taskRoleArn"] == task
    iam = boto("iam")
    assert sorted(r["RoleName"] for r in iam.list_roles()["Roles"]) == [
        "team-demo-task",
        "team-ecs-execution",
    ]
    assert iam.list_role_policies(RoleName="team-ecs-execution")["PolicyNames"] == []

    shown = said(result.stderr)
    assert "the policy to attach:" in shown
    assert f'"Action": [ "ssm:GetParameters" ], "Resource": [ "{STORED}" ]' in shown
    assert "not allowed to ask IAM's policy simulator (iam:SimulatePrincipalPolicy)" in shown

    with recording(aws) as calls:
        again = run("up", "--image", IMAGE)
    assert again.exit_code == 0, again.output
    assert calls.changing == []

    status = run("status").stderr
    assert row(status, "team-ecs-execution", "kept", "the platform team's (EXECUTION_ROLE_ARN)")
    assert row(status, "team-demo-task", "kept", "the platform team's (TASK_ROLE_ARN)")

    with recording(aws) as calls:
        gone = run("teardown", "--yes", "--all")
    assert gone.exit_code == 0, gone.output
    assert calls.changing_in("iam") == []
    assert "DeleteCluster" in calls.changing
    assert len(iam.list_roles()["Roles"]) == 2
    assert (
        boto("ecs").list_task_definitions(familyPrefix="demo-taskdef")["taskDefinitionArns"] == []
    )


@pytest.mark.parametrize(
    ("settings", "said_first"),
    [
        ({"EXECUTION_ROLE_ARN": "team-ecs-execution"}, "EXECUTION_ROLE_ARN='team-ecs-execution'"),
        (
            {"TASK_ROLE_ARN": f"arn:aws-cn:iam::{ACCOUNT}:role/x"},
            "TASK_ROLE_ARN=arn:aws-cn:iam::123456789012:role/x is outside aws",
        ),
        (
            {
                "AWS_ACCOUNT_ID": "999999999999",
                "EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/x",
            },
            "EXECUTION_ROLE_ARN names a role of account 123456789012, not of AWS_ACCOUNT_ID",
        ),
        (
            {"TASK_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/x", "TASK_POLICY_FILE": "p.json"},
            "TASK_ROLE_ARN is set together with TASK_ROLE_POLICIES or TASK_POLICY_FILE",
        ),
    ],
)
def test_values_that_cannot_be_a_role_of_the_app_are_refused_when_read(
    settings: dict[str, str], said_first: str
) -> None:
    base = {"APP_NAME": "demo", "AWS_REGION": "us-east-1"}
    with pytest.raises(ConfigError) as refused:
        load_config(environ={**base, **settings}, project_dir=Path("/nonexistent"))
    assert said_first in refused.value.message


def test_a_role_of_another_account_missing_or_not_trusting_ecs_stops_before_any_change(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    lambda_role = platform_role(boto, "team-lambda", "lambda.amazonaws.com")
    cases = {
        "arn:aws:iam::999999999999:role/team-ecs-execution": "names a role of account "
        "999999999999, but the credentials are of account 123456789012",
        f"arn:aws:iam::{ACCOUNT}:role/platform/nobody": "no such IAM role",
        lambda_role: "IAM role team-lambda does not trust ecs-tasks.amazonaws.com",
    }
    for arn, message in cases.items():
        for variable in ("EXECUTION_ROLE_ARN", "TASK_ROLE_ARN"):
            with recording(aws) as calls:
                result = run("up", "--image", IMAGE, "--set", f"{variable}={arn}")
            assert result.exit_code == 2, result.output
            assert f"{variable}" in said(result.stderr) and message in said(result.stderr)
            assert calls.changing == [], (arn, variable)


def simulated(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """IAM's policy simulator (which moto lacks) answering the returned dict's "decision" for
    every action."""
    decision = {"decision": "implicitDeny"}

    def answer(params: dict[str, Any], **_: Any) -> Any:
        body = params["body"]  # the query request: ActionNames.member.N, ResourceArns.member.N
        actions = [value for key, value in body.items() if key.startswith("ActionNames.")]
        resources = [value for key, value in body.items() if key.startswith("ResourceArns.")]
        results = [
            {
                "EvalActionName": action,
                "EvalResourceName": resource,
                "EvalDecision": decision["decision"],
            }
            for action in actions
            for resource in resources
        ]
        parsed = {"EvaluationResults": results, "ResponseMetadata": {"HTTPStatusCode": 200}}
        return AWSResponse("https://iam.invalid/", 200, {}, None), parsed

    hook_every_client(monkeypatch, SIMULATE, answer)
    return decision


def test_an_execution_role_that_cannot_read_the_secrets_stops_before_any_change(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(project, EXECUTION_ROLE_ARN=platform_role(boto, "team-ecs-execution"))
    assert run("secret", "set", "TOKEN", input=distinctive_secret()).exit_code == 0
    decision = simulated(monkeypatch)
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE)
    assert result.exit_code != 0
    shown = said(result.stderr)
    refused = f"may not read the app's secrets (ssm:GetParameters on {STORED})"
    assert f"IAM role team-ecs-execution {refused}" in shown
    assert "ask the platform team to attach the policy printed above" in shown
    assert calls.changing == []

    decision["decision"] = "allowed"
    allowed = run("up", "--image", IMAGE, "--dry-run")
    assert allowed.exit_code == 0, allowed.output
    assert "may read the app's secrets" in said(allowed.stderr)


def test_without_iam_get_role_the_check_is_skipped_with_a_notice(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(project, EXECUTION_ROLE_ARN=platform_role(boto, "team-ecs-execution"))
    refuse(monkeypatch, "before-call.iam.GetRole", "AccessDenied", 403)
    result = run("up", "--image", IMAGE, "--dry-run")
    assert result.exit_code == 0, result.output
    shown = said(result.stderr)
    assert "not allowed to read IAM role team-ecs-execution (iam:GetRole)" in shown
    assert row(result.stderr, "team-ecs-execution", "kept", "the platform team's")


def test_roles_dashscale_made_before_the_platform_took_over_are_still_torn_down(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    """An app that moves to the platform's roles leaves its own behind (up deletes no role):
    status still shows them as the app's, and teardown deletes them, never the platform's."""
    use(project, TASK_ROLE_POLICIES="AmazonS3ReadOnlyAccess")
    assert run("up", "--image", IMAGE).exit_code == 0
    iam = boto("iam")
    own = sorted(r["RoleName"] for r in iam.list_roles()["Roles"])
    assert len(own) == 2, own  # the execution role and the task role dashscale made

    execution = platform_role(boto, "team-ecs-execution")
    task = platform_role(boto, "team-demo-task")
    (project / ".env").write_text(
        (project / ".env").read_text().replace("TASK_ROLE_POLICIES=AmazonS3ReadOnlyAccess\n", "")
    )
    use(project, EXECUTION_ROLE_ARN=execution, TASK_ROLE_ARN=task)
    assert run("up", "--image", IMAGE).exit_code == 0
    status = run("status").stderr
    assert all(row(status, name, "found") for name in own), status
    assert row(status, "team-ecs-execution", "kept")

    gone = run("teardown", "--yes", "--all")
    assert gone.exit_code == 0, gone.output
    left = sorted(r["RoleName"] for r in iam.list_roles()["Roles"])
    assert left == ["team-demo-task", "team-ecs-execution"]

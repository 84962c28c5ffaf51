"""`dashscale policy`: one source (every AWS call of the package declared), scoped to the app's
own ARNs, lint-clean, and "not allowed to X on Y" for a denial from any service."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore import xform_name

from dashscale import aws, policy
from dashscale.aws import Aws, NotAllowed
from dashscale.steps import alarms
from tests.support.enforced import enforcing
from tests.support.operating import installed_command, make_ctx

PACKAGE = Path(__file__).resolve().parent.parent / "dashscale"
ACCOUNT = "123456789012"
FULL = {
    "APP_NAME": "demo",
    "AWS_REGION": "us-east-1",
    "AWS_ACCOUNT_ID": ACCOUNT,
    "DOMAIN": "example.com",
    "AUTH": "cognito",
    "MIN_COUNT": "1",
    "MAX_COUNT": "3",
    "TASK_ROLE_POLICIES": "AmazonS3ReadOnlyAccess",
}
CONFIGURATIONS = [
    {"APP_NAME": "demo", "AWS_REGION": "us-east-1", "AWS_ACCOUNT_ID": ACCOUNT},
    FULL,
    {**FULL, "AUTH": "oidc", "OIDC_ISSUER": "https://id.example.com", "OIDC_CLIENT_ID": "x"},
    {
        **FULL,
        "CACHE": "redis",
        "WORKERS": "1",
        "SCHEDULE": "Mon-Fri 08:00-19:00 Europe/Berlin",
        "ALERT_EMAIL": "ops@example.com",
        "TASK_ROLE_POLICIES": "",
        "EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/platform/execution",
        "TASK_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/platform/task",
    },
]


def called_operations() -> dict[str, list[set[str]]]:
    """Every AWS operation the package's code calls on a client, as IAM actions, by file: a
    method, paginator or waiter named like an operation of a service whose client that file
    makes (ctx.client("SERVICE"))."""
    session = botocore.session.get_session()
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        services = set(re.findall(r'client\(\s*"([a-z0-9-]+)"', text))
        names = set(re.findall(r"\.([a-z][a-z0-9_]+)\(", text))
        names |= set(re.findall(r'get_(?:paginator|waiter)\("([a-z_]+)"\)', text))
        candidates: dict[str, set[str]] = {}  # a name several of its services have: any of them
        for service in services:
            model = session.get_service_model(service)
            prefix = model.signing_name or model.endpoint_prefix
            prefix = aws.IAM_PREFIXES.get(prefix, prefix)
            for operation in model.operation_names:
                if xform_name(operation) in names:
                    candidates.setdefault(xform_name(operation), set()).add(f"{prefix}:{operation}")
        if candidates:
            found[str(path.relative_to(PACKAGE))] = list(candidates.values())
    return found


def declared(tmp_path: Path) -> set[str]:
    """Every action any configuration's policy holds, and the one no policy needs to grant."""
    every: set[str] = set(aws.NEEDS_NO_PERMISSION)
    for overrides in CONFIGURATIONS:
        ctx, _ = make_ctx(tmp_path, **overrides)
        every |= set(policy.all_actions(ctx))
    return every


def test_every_aws_call_of_the_package_is_declared(tmp_path: Path) -> None:
    # app.env naming secrets of both stores: the reads of their checks join the policy
    (tmp_path / "app.env").write_text("A=ssm:/team/a\nB=secretsmanager:team-b\n")
    calls = called_operations()
    assert sum(len(names) for names in calls.values()) > 100  # the scan finds them
    known = declared(tmp_path)
    missing = {
        f: sorted(a for options in found if not options & known for a in options)
        for f, found in calls.items()
    }
    assert {f: m for f, m in missing.items() if m} == {}


def test_deploy_needs_strictly_fewer_actions_than_up_and_no_creation(tmp_path: Path) -> None:
    for overrides in CONFIGURATIONS:
        ctx, _ = make_ctx(tmp_path, **overrides)
        deploy, up = set(policy.actions(ctx, "deploy")), set(policy.actions(ctx, "up"))
        assert deploy < up
        assert not {a for a in deploy if re.search(r":(Create|Delete)", a)}
        assert {"ecs:RegisterTaskDefinition", "ecs:UpdateService", "iam:PassRole"} <= deploy


def test_the_configuration_decides_what_is_in_it(tmp_path: Path) -> None:
    bare, _ = make_ctx(tmp_path, **CONFIGURATIONS[0])
    full, _ = make_ctx(tmp_path, **FULL)
    plain, rich = set(policy.actions(bare, "up")), set(policy.actions(full, "up"))
    for action in (
        "cognito-idp:CreateUserPool",  # AUTH
        "acm:RequestCertificate",  # DOMAIN
        "application-autoscaling:RegisterScalableTarget",  # MIN_COUNT, MAX_COUNT
        "iam:GetPolicy",  # TASK_ROLE_POLICIES
    ):
        assert action in rich and action not in plain, action


class WithRoles:
    """A configuration with the roles the platform team owns (EXECUTION_ROLE_ARN,
    TASK_ROLE_ARN), whatever the configuration module has of them yet."""

    def __init__(self, config: Any, **roles: str) -> None:
        self._config, self._roles = config, roles

    def __getattr__(self, name: str) -> Any:
        return self._roles[name] if name in self._roles else getattr(self._config, name)


def test_with_the_platform_teams_roles_no_iam_write_and_passrole_on_them(tmp_path: Path) -> None:
    ctx, _ = make_ctx(tmp_path, **FULL)
    roles = {
        "execution_role_arn": f"arn:aws:iam::{ACCOUNT}:role/platform/exec",
        "task_role_arn": f"arn:aws:iam::{ACCOUNT}:role/platform/task",
    }
    ctx.config = WithRoles(ctx.config, **roles)  # type: ignore[assignment]
    for purpose in policy.PURPOSES:
        actions = policy.actions(ctx, purpose)
        assert [a for a in actions if policy.IAM_WRITE.match(a)] == []
    document = policy.document(ctx, "up")
    (passing,) = [s for s in document["Statement"] if "iam:PassRole" in s["Action"]]
    assert passing["Resource"] == sorted(roles.values())


# --- scoped ---------------------------------------------------------------------------------------


# parliament 1.6.4's two known false positives: AWS managed policy ARNs (account `aws`), and
# listener ARNs on Modify/DeleteListener (its data lacks the listener resource for them).
def false_positive(finding: Any) -> bool:
    where = json.dumps(finding.location) + json.dumps(finding.detail)
    if finding.issue == "INVALID_ARN" and ":iam::aws:policy/" in where:
        return True
    return (
        finding.issue == "RESOURCE_MISMATCH"
        and re.search(r"elasticloadbalancing:(Modify|Delete)Listener", where) is not None
    )


def lint(document: dict) -> list[str]:
    from parliament import analyze_policy_string
    from parliament import config as parliament_config

    analyzed = analyze_policy_string(json.dumps(document))
    return [
        f"{f.issue} {f.detail} {f.location}"
        for f in analyzed.findings
        if parliament_config.get(f.issue, {}).get("severity") in ("MEDIUM", "HIGH", "CRITICAL")
        and not false_positive(f)
    ]


def own_names(ctx: Any, zone_id: str | None) -> list[str]:
    n = ctx.names
    names = [n.repository, n.cluster, n.service, n.taskdef, n.log_group, n.alb, n.target_group]
    names += [n.execution_role, n.task_role, f"parameter{n.secrets_path}", n.deployer_role]
    names += [f"{n.app}-alerts", *(f"alarm:{n.app}-{which}" for which in alarms.WHICH)]
    names += ["oidc-provider/token.actions.githubusercontent.com"]  # the account's, for GitHub
    names += [
        f"policy/{p.split(':policy/', 1)[1]}" for p in policy.Scopes(ctx, "").managed_policies()
    ]
    return names + ([f"hostedzone/{zone_id}"] if zone_id else [])


def check_scoped(ctx: Any, document: dict, account: str, partition_name: str, zone: str | None):
    region = ctx.config.aws_region
    why = {sid for sid, _ in policy.WHY.values()}
    for statement in document["Statement"]:
        resources = statement["Resource"]
        if resources == "*":
            assert statement["Sid"] in why, statement
            continue
        for arn in [resources] if isinstance(resources, str) else resources:
            fields = arn.split(":")
            assert fields[1] == partition_name, arn
            assert fields[3] in (region, ""), arn
            assert fields[4] in (account, "aws", ""), arn  # aws: AWS managed policies
            assert any(name in arn for name in own_names(ctx, zone)), arn
        if "iam:PassRole" in statement["Action"]:
            assert statement["Action"] == ["iam:PassRole"]
            condition = {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
            assert statement["Condition"] == condition


def test_every_statement_is_the_apps_own_arns_or_star_with_why_and_lints_clean(
    aws: str, boto, tmp_path: Path
) -> None:
    zone = boto("route53").create_hosted_zone(Name="example.com", CallerReference="z")
    zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
    os.environ["AWS_ENDPOINT_URL"] = aws
    overrides = {k: v for k, v in FULL.items() if k != "AWS_ACCOUNT_ID"}  # read from STS
    ctx, _ = make_ctx(tmp_path, **overrides)
    for purpose in policy.PURPOSES:
        document = policy.document(ctx, purpose)
        check_scoped(ctx, document, ACCOUNT, "aws", zone_id)
        assert lint(document) == [], purpose
        zone_statements = [
            s for s in document["Statement"] if "route53:DeleteHostedZone" in s["Action"]
        ]
        for statement in zone_statements:
            assert statement["Resource"] == f"arn:aws:route53:::hostedzone/{zone_id}"


def test_other_partitions_get_their_own_arns(tmp_path: Path) -> None:
    ctx, _ = make_ctx(tmp_path, **{**CONFIGURATIONS[0], "AWS_REGION": "cn-north-1"})
    document = policy.document(ctx, "all")
    check_scoped(ctx, document, ACCOUNT, "aws-cn", None)
    assert "arn:aws:" not in json.dumps(document)


# --- "not allowed to X on Y" ----------------------------------------------------------------------

DENIED_CALLS = [  # a service of each protocol: JSON, query, EC2, REST-XML, REST-JSON
    (
        "ecs",
        "describe_clusters",
        {"clusters": ["demo-cluster"]},
        "ecs:DescribeClusters",
        "demo-cluster",
    ),
    ("iam", "get_role", {"RoleName": "demo-role"}, "iam:GetRole", "demo-role"),
    (
        "elbv2",
        "describe_load_balancers",
        {"Names": ["demo-alb"]},
        "elasticloadbalancing:DescribeLoadBalancers",
        "demo-alb",
    ),
    ("ec2", "describe_vpcs", {}, "ec2:DescribeVpcs", "*"),
    (
        "route53",
        "list_resource_record_sets",
        {"HostedZoneId": "Z1"},
        "route53:ListResourceRecordSets",
        "Z1",
    ),
    (
        "logs",
        "describe_log_groups",
        {"logGroupNamePrefix": "/ecs/demo"},
        "logs:DescribeLogGroups",
        "/ecs/demo",
    ),
    (
        "ssm",
        "get_parameters_by_path",
        {"Path": "/dashscale/demo/"},
        "ssm:GetParametersByPath",
        "/dashscale/demo/",
    ),
    ("cognito-idp", "list_user_pools", {"MaxResults": 10}, "cognito-idp:ListUserPools", "*"),
    ("acm", "list_certificates", {}, "acm:ListCertificates", "*"),
    (
        "ecr",
        "describe_repositories",
        {"repositoryNames": ["demo-repository"]},
        "ecr:DescribeRepositories",
        "demo-repository",
    ),
    (
        "application-autoscaling",
        "describe_scalable_targets",
        {"ServiceNamespace": "ecs"},
        "application-autoscaling:DescribeScalableTargets",
        "*",
    ),
]


def test_a_denial_from_any_service_names_the_action_and_what_it_was_on(aws: str) -> None:
    with enforcing(aws) as enforced:
        enforced.allow(["ecs:ListClusters"])
        key, secret = enforced.keys["deployer"]
        os.environ.update(AWS_ENDPOINT_URL=aws, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret)
        session = Aws("us-east-1")
        for service, operation, request, action, resource in DENIED_CALLS:
            with pytest.raises(NotAllowed) as denied:
                getattr(session.client(service), operation)(**request)
            message = denied.value.message
            assert re.fullmatch(
                rf"not allowed to {action} on {re.escape(resource)}( \(\w+\))?", message
            )
            assert "dashscale policy" in (denied.value.hint or "")
        # an allowed call still answers; a wrong key is not a denial
        session.client("ecs").list_clusters()
        stranger = boto3.client(
            "ecs",
            region_name="us-east-1",
            endpoint_url=aws,
            aws_access_key_id="AKIAWRONG",
            aws_secret_access_key="x",
        )
        from dashscale.aws import name_denials

        name_denials(stranger)
        with pytest.raises(Exception) as wrong:
            stranger.list_clusters()
        assert not isinstance(wrong.value, NotAllowed)


def test_a_command_refused_says_not_allowed_and_suggests_dashscale_policy(
    aws: str, project: Path
) -> None:
    with enforcing(aws) as enforced:
        enforced.allow(["ec2:DescribeSubnets"])
        env = {**os.environ, **enforced.env(), "AWS_ENDPOINT_URL": aws, "COLUMNS": "300"}
        image = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/demo-repository:v1"
        result = subprocess.run(
            [*installed_command(), "up", "--image", image],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 1, result.stderr
    said = " ".join(result.stderr.split())
    assert re.search(r"error: not allowed to [a-z0-9-]+:[A-Za-z]+ on \S+", said), said
    assert "dashscale policy" in said
    assert "Traceback" not in said and "<?xml" not in said and "<Error" not in said


def test_the_policy_command_prints_the_document_and_why_each_star(aws: str, project: Path) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL": aws}
    shown = subprocess.run(
        [*installed_command(), "policy", "--for", "deploy"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["Version"] == "2012-10-17"
    stars = [s["Sid"] for s in document["Statement"] if s["Resource"] == "*"]
    assert stars and all(f"{sid}: on * because" in shown.stderr for sid in stars)
    bare = subprocess.run(
        [*installed_command(), "policy", "--for", "teardown", "--json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(bare.stdout)["Statement"] and bare.stderr == ""


INLINE_QUOTA = 10_240  # IAM: characters of a role's inline policies, whitespace not counted


def test_the_widest_policy_fits_a_roles_inline_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ci role --for up` attaches the `up` policy inline: for every configuration it must fit
    IAM's quota (a hosted zone id is at most 32 characters: the longest is assumed)."""
    monkeypatch.setattr(policy, "_zone_id", lambda ctx: "Z" * 32)
    for overrides in CONFIGURATIONS:
        ctx, _ = make_ctx(tmp_path, **overrides)
        for purpose in ("deploy", "up"):
            size = len(json.dumps(policy.document(ctx, purpose), separators=(",", ":")))
            assert size <= INLINE_QUOTA, (purpose, overrides, size)

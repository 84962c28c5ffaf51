"""`dashscale policy` proven by running under it: moto's server enforcing IAM, every command a
team runs made with the generated actions alone, and each action shown necessary by running
the step that first needs it without it (the ablation).

Emulator limits (tests/support/enforced.py): the deployer gets the generated actions with
Resource `*` and no Condition; the scoping of the document is checked in tests/test_policy.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dashscale import policy
from dashscale.cli import make_context
from dashscale.steps.auth import FINGERPRINT_TAG
from dashscale.steps.network import reaches_https
from tests.support.enforced import REGION, Enforced, enforcing
from tests.support.operating import installed_command

SETTINGS = (
    "DOMAIN=example.com\nAUTH=cognito\nTASK_ROLE_POLICIES=AmazonS3ReadOnlyAccess\n"
    # one step at a time, in a fixed order: what a step needs first is the same every run
    "PARALLEL_STEPS=1\nMIN_COUNT=1\nMAX_COUNT=3\n"
)

# Actions of the policy that no step of this run can show necessary in the emulator, and why.
TAGGING = "AWS checks it inside the create call that passes tags; moto does not"
REGISTRY = "a call of the push to ECR's registry; the test registry is not ECR"
ON_FAILURE = "read only when a rollout fails, to say why"
# up deletes (teardown finds and deletes) what an earlier configuration made; this run's makes
# none of the cache, workers, office hours and alarms
EARLIER = (
    "only for one that CACHE, WORKERS, SCHEDULE or ALERT_EMAIL made, which this run does not set"
)
CI_ROLE = "teardown --all of what `dashscale ci role` made (the provider); this run makes none"
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
    "application-autoscaling:DeleteScheduledAction": EARLIER,
    "cloudwatch:DeleteAlarms": EARLIER,
    "cloudwatch:ListTagsForResource": EARLIER,
    "elasticache:DeleteCacheSubnetGroup": EARLIER,
    "elasticache:DeleteReplicationGroup": EARLIER,
    "elasticache:ListTagsForResource": EARLIER,
    "sns:DeleteTopic": EARLIER,
    "sns:ListSubscriptionsByTopic": EARLIER,
    "sns:ListTagsForResource": EARLIER,
    "sns:Unsubscribe": EARLIER,
    "iam:ListRoles": CI_ROLE,
    "iam:DeleteOpenIDConnectProvider": CI_ROLE,
}


@dataclass
class Step:
    name: str
    args: tuple[str, ...]
    purpose: str
    stdin: str | None = None
    before: Callable[[Enforced], None] | None = None
    after: Callable[[Enforced], None] | None = None  # checks the state the step left
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
    """Settings changed by hand, as an operator might in the console: each one a setting
    dashscale owns, so that `up` repairs it (and the ablation shows each repairing action)."""
    app = app_name()
    elbv2 = enforced.admin("elbv2")
    (group,) = elbv2.describe_target_groups(Names=[f"{app}-tg"])["TargetGroups"]
    elbv2.modify_target_group(TargetGroupArn=group["TargetGroupArn"], HealthCheckPath="/drifted")
    enforced.admin("ecs").update_service(
        cluster=f"{app}-cluster", service=f"{app}-service", desiredCount=5
    )
    drift_sign_in(enforced, app)
    drift_network(enforced, app)
    repository = f"{app}-repository"
    ecr = enforced.admin("ecr")
    ecr.put_image_tag_mutability(repositoryName=repository, imageTagMutability="MUTABLE")
    scanning = {"scanOnPush": False}
    ecr.put_image_scanning_configuration(
        repositoryName=repository, imageScanningConfiguration=scanning
    )
    trust = {"Version": "2012-10-17", "Statement": [{**TRUST, "Principal": {"AWS": "*"}}]}
    enforced.admin("iam").update_assume_role_policy(
        RoleName=role_name(app), PolicyDocument=json.dumps(trust)
    )


# an operator's trust policy: any principal of the account (no ECS, no SourceAccount condition)
TRUST = {"Effect": "Allow", "Action": "sts:AssumeRole"}


def role_name(app: str) -> str:
    return f"{app}-{REGION}-task-execution-role"


def pool_of(enforced: Enforced, app: str) -> dict[str, Any]:
    cognito = enforced.admin("cognito-idp")
    pools = cognito.list_user_pools(MaxResults=60)["UserPools"]
    (pool,) = [p for p in pools if p["Name"] == f"{app}-users"]
    return dict(cognito.describe_user_pool(UserPoolId=pool["Id"])["UserPool"])


def drift_sign_in(enforced: Enforced, app: str) -> None:
    """Sign-up opened to anyone with MFA switched on (dashscale closes sign-up and keeps the
    MFA, which UpdateUserPool cannot set ON); the app client's callback and scopes edited;
    the HTTPS listener switched to a company's OIDC provider, with the secret's fingerprint
    tag an AUTH=oidc run leaves."""
    cognito = enforced.admin("cognito-idp")
    pool = pool_of(enforced, app)
    cognito.update_user_pool(
        UserPoolId=pool["Id"],
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": False},
        AutoVerifiedAttributes=["email"],
        UserPoolTags=pool["UserPoolTags"],  # as the console sends them back
    )
    # after the update: an UpdateUserPool without MfaConfiguration sets it OFF
    cognito.set_user_pool_mfa_config(
        UserPoolId=pool["Id"],
        SoftwareTokenMfaConfiguration={"Enabled": True},
        MfaConfiguration="ON",
    )
    (client,) = cognito.list_user_pool_clients(UserPoolId=pool["Id"], MaxResults=60)[
        "UserPoolClients"
    ]
    cognito.update_user_pool_client(
        UserPoolId=pool["Id"],
        ClientId=client["ClientId"],
        ClientName=client["ClientName"],
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid"],
        AllowedOAuthFlowsUserPoolClient=True,
        CallbackURLs=["https://elsewhere.example.org/oauth2/idpresponse"],
        SupportedIdentityProviders=["COGNITO"],
    )
    elbv2 = enforced.admin("elbv2")
    listener = https_listener(enforced, app)
    oidc = {f"{k}Endpoint": f"https://id.example.org/{k.lower()}" for k in ENDPOINT_KINDS}
    config = {"Issuer": "https://id.example.org", "ClientId": "x", "ClientSecret": "s", **oidc}
    forward = [
        {"Type": "forward", "TargetGroupArn": a["TargetGroupArn"], "Order": 2}
        for a in listener["DefaultActions"]
        if a["Type"] == "forward"
    ]
    elbv2.modify_listener(
        ListenerArn=listener["ListenerArn"],
        DefaultActions=[
            {"Type": "authenticate-oidc", "AuthenticateOidcConfig": config, "Order": 1},
            *forward,
        ],
    )
    fingerprint = [{"Key": FINGERPRINT_TAG, "Value": "salt:digest"}]
    elbv2.add_tags(ResourceArns=[listener["ListenerArn"]], Tags=fingerprint)


ENDPOINT_KINDS = ("Authorization", "Token", "UserInfo")


def https_listener(enforced: Enforced, app: str) -> dict[str, Any]:
    elbv2 = enforced.admin("elbv2")
    (balancer,) = elbv2.describe_load_balancers(Names=[f"{app}-alb"])["LoadBalancers"]
    listeners = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])
    (listener,) = [x for x in listeners["Listeners"] if x["Port"] == 443]
    return dict(listener)


def security_group(enforced: Enforced, name: str) -> dict[str, Any]:
    groups = enforced.admin("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [name]}]
    )["SecurityGroups"]
    return dict(groups[0])


def drift_network(enforced: Enforced, app: str) -> None:
    """The load balancer moved to two subnets and given the tasks' group as well; SSH opened
    to the tasks; the load balancer's outbound rules emptied (it cannot reach Cognito)."""
    ec2, elbv2 = enforced.admin("ec2"), enforced.admin("elbv2")
    alb_group = security_group(enforced, f"{app}-alb-sg")
    task_group = security_group(enforced, f"{app}-from-alb-sg")
    (balancer,) = elbv2.describe_load_balancers(Names=[f"{app}-alb"])["LoadBalancers"]
    arn = balancer["LoadBalancerArn"]
    subnets = sorted(zone["SubnetId"] for zone in balancer["AvailabilityZones"])
    assert len(subnets) > 2, subnets  # the drift takes some away
    elbv2.set_subnets(LoadBalancerArn=arn, Subnets=subnets[:2])
    elbv2.set_security_groups(
        LoadBalancerArn=arn, SecurityGroups=[alb_group["GroupId"], task_group["GroupId"]]
    )
    ssh = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": ANYWHERE}]}
    ec2.authorize_security_group_ingress(GroupId=task_group["GroupId"], IpPermissions=[ssh])
    ec2.revoke_security_group_egress(
        GroupId=alb_group["GroupId"], IpPermissions=alb_group["IpPermissionsEgress"]
    )


ANYWHERE = "0.0.0.0/0"


def repaired(enforced: Enforced) -> None:
    """After `up`: every setting changed by hand is dashscale's again (MFA, not dashscale's,
    kept)."""
    app = app_name()
    elbv2, ec2 = enforced.admin("elbv2"), enforced.admin("ec2")
    (group,) = elbv2.describe_target_groups(Names=[f"{app}-tg"])["TargetGroups"]
    assert group["HealthCheckPath"] != "/drifted"
    pool = pool_of(enforced, app)
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["MfaConfiguration"] == "ON"
    cognito = enforced.admin("cognito-idp")
    (listed,) = cognito.list_user_pool_clients(UserPoolId=pool["Id"], MaxResults=60)[
        "UserPoolClients"
    ]
    client = cognito.describe_user_pool_client(UserPoolId=pool["Id"], ClientId=listed["ClientId"])
    assert "https://example.com/oauth2/idpresponse" in client["UserPoolClient"]["CallbackURLs"]
    assert not [u for u in client["UserPoolClient"]["CallbackURLs"] if "elsewhere" in u]
    assert sorted(client["UserPoolClient"]["AllowedOAuthScopes"]) == ["email", "openid"]
    listener = https_listener(enforced, app)
    first = min(listener["DefaultActions"], key=lambda a: a.get("Order", 0))
    assert first["Type"] == "authenticate-cognito"
    tags = elbv2.describe_tags(ResourceArns=[listener["ListenerArn"]])["TagDescriptions"]
    assert FINGERPRINT_TAG not in {t["Key"] for t in tags[0]["Tags"]}
    (repo,) = enforced.admin("ecr").describe_repositories(repositoryNames=[f"{app}-repository"])[
        "repositories"
    ]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    role = enforced.admin("iam").get_role(RoleName=role_name(app))["Role"]
    assert "ecs-tasks" in json.dumps(role["AssumeRolePolicyDocument"])
    alb_group = security_group(enforced, f"{app}-alb-sg")
    task_group = security_group(enforced, f"{app}-from-alb-sg")
    (balancer,) = elbv2.describe_load_balancers(Names=[f"{app}-alb"])["LoadBalancers"]
    assert balancer["SecurityGroups"] == [alb_group["GroupId"]]
    zones = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])
    every_zone = {s["AvailabilityZone"] for s in zones["Subnets"]}
    assert len(balancer["AvailabilityZones"]) == len(every_zone)
    assert all(p.get("FromPort") != 22 for p in task_group["IpPermissions"])
    assert reaches_https(alb_group)


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
        Step("up after drift", ("up",), "up", before=drift, after=repaired),
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
        if step.after:
            step.after(enforced)
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
        if step.after:
            step.after(enforced)
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

"""Partitions: ARNs and AWS host names follow the region (arn:aws-cn:, .amazonaws.com.cn), and
are built in dashscale/partition.py only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashscale import partition
from dashscale.config import load_config
from tests.support.recording import recording

PACKAGE = Path(__file__).resolve().parent.parent / "dashscale"
# Any ARN prefix (arn:aws:, arn:aws-cn:, ...) or AWS host suffix written out by hand.
LITERAL = re.compile(r"arn:aws[a-z-]*:|amazonaws\.com")


def test_arns_and_aws_hosts_are_built_in_the_partition_helper_only() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "partition.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if LITERAL.search(line)
    ]
    assert len(list(PACKAGE.rglob("*.py"))) > 20  # the scan sees the package
    assert found == [], "build these with dashscale.partition:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("region", "name", "host"),
    [
        ("eu-west-1", "aws", "123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
        ("cn-north-1", "aws-cn", "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
        ("cn-northwest-1", "aws-cn", "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn"),
        ("us-gov-west-1", "aws-us-gov", "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com"),
    ],
)
def test_the_region_decides_the_arn_prefix_and_the_hosts(region: str, name: str, host: str):
    from dashscale.steps.appconfig import parameter_arn

    home = partition.for_region(region)
    assert home.name == name
    assert home.ecr_registry("123456789012", region) == host
    assert home.managed_policy("service-role/AmazonECSTaskExecutionRolePolicy") == (
        f"arn:{name}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    )
    assert parameter_arn(region, "123456789012", "/dashscale/demo/") == (
        f"arn:{name}:ssm:{region}:123456789012:parameter/dashscale/demo/"
    )
    assert home.elb_suffix(region) == f".{region}.elb." + host.split(f".{region}.", 1)[1]


@pytest.mark.parametrize(
    ("region", "prefix"), [("cn-north-1", "arn:aws-cn:"), ("us-gov-west-1", "arn:aws-us-gov:")]
)
def test_task_role_policies_by_name_become_arns_of_the_regions_partition(
    tmp_path: Path, region: str, prefix: str
) -> None:
    config = load_config(
        environ={
            "APP_NAME": "demo",
            "AWS_REGION": region,
            "TASK_ROLE_POLICIES": f"AmazonS3ReadOnlyAccess,{prefix}iam::123456789012:policy/Mine",
        },
        project_dir=tmp_path,
    )
    assert config.task_role_policies == (
        f"{prefix}iam::123456789012:policy/Mine",
        f"{prefix}iam::aws:policy/AmazonS3ReadOnlyAccess",
    )


def test_an_unknown_region_is_taken_to_be_in_the_standard_partition() -> None:
    assert partition.for_region("xx-nowhere-9").name == "aws"


def test_the_ecs_tasks_principal_is_the_same_in_every_partition() -> None:
    from dashscale.steps.iam import trust_policy

    (statement,) = trust_policy("123456789012")["Statement"]
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}


@pytest.mark.parametrize(
    ("region", "name", "teardown"),
    # moto has no Cognito in cn-* (its answer is a 500), which teardown's survey asks
    [("cn-north-1", "aws-cn", False), ("us-gov-west-1", "aws-us-gov", True)],
)
def test_up_in_china_and_govcloud_against_moto(
    aws: str, project: Path, run, no_docker: None, region: str, name: str, teardown: bool
) -> None:
    """moto serves both partitions: the roles, the policies and the task definition carry the
    region's ARNs, a second `up` finds everything as it is, teardown removes it (GovCloud)."""
    import boto3

    def client(service: str):
        return boto3.client(service, region_name=region, endpoint_url=aws)

    env = (project / ".env").read_text().replace("AWS_REGION=us-east-1", f"AWS_REGION={region}")
    (project / ".env").write_text(env + "TASK_ROLE_POLICIES=AmazonS3ReadOnlyAccess\n")
    image = f"123456789012.{partition.for_region(region).ecr_registry('x', region)[2:]}/demo:v1"
    assert run("secret", "set", "TOKEN", input="a-value-of-ours").exit_code == 0
    first = run("up", "--image", image)
    assert first.exit_code == 0, first.output

    iam = client("iam")
    attached = iam.list_attached_role_policies(RoleName=f"demo-{region}-task-execution-role")
    assert [p["PolicyArn"] for p in attached["AttachedPolicies"]] == [
        f"arn:{name}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    ]
    attached = iam.list_attached_role_policies(RoleName=f"demo-{region}-task-role")
    assert [p["PolicyArn"] for p in attached["AttachedPolicies"]] == [
        f"arn:{name}:iam::aws:policy/AmazonS3ReadOnlyAccess"
    ]
    policy = iam.get_role_policy(
        RoleName=f"demo-{region}-task-execution-role", PolicyName="dashscale-secrets"
    )["PolicyDocument"]
    (statement,) = policy["Statement"]
    assert statement["Resource"] == [
        f"arn:{name}:ssm:{region}:123456789012:parameter/dashscale/demo/*"
    ]
    definition = client("ecs").describe_task_definition(taskDefinition="demo-taskdef")
    assert definition["taskDefinition"]["executionRoleArn"].startswith(f"arn:{name}:iam::")

    with recording(aws) as calls:
        again = run("up", "--image", image)
    assert again.exit_code == 0, again.output
    assert calls.changing == []

    if not teardown:
        return
    gone = run("teardown", "--yes")
    assert gone.exit_code == 0, gone.output
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert not [role for role in roles if role.startswith("demo-")], roles

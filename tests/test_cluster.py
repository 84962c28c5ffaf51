"""`dashscale cluster`: network choice, the image, drift of the task definition, a role ECS cannot
use yet (an injected error moto never raises)."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.stub import Stubber

from dashscale.errors import AwsError
from dashscale.model import ensure
from dashscale.steps.cluster import (
    DeployImage,
    TaskDefinition,
    task_definition_changes,
    task_definition_request,
)
from tests.support.operating import make_ctx, refuse, said
from tests.support.recording import recording

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-repository:v1"
ROLE_ARN = "arn:aws:iam::123456789012:role/demo-us-east-1-task-execution-role"
TASKDEF_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/demo-taskdef:1"
ROLE_NOT_READY = (
    "ECS was unable to assume the role "
    "'arn:aws:iam::123456789012:role/demo-us-east-1-task-execution-role' "
    "that was provided for this task. Please verify that the role being passed has the proper "
    "trust relationship and permissions and that your IAM user has permissions to pass this role."
)


def default_vpc(boto) -> str:
    vpcs = boto("ec2").describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])
    return vpcs["Vpcs"][0]["VpcId"]


def test_cluster_with_image_makes_only_the_cluster_section(
    aws: str, boto, project: Path, run
) -> None:
    result = run("cluster", "--image", IMAGE)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("task-definition/demo-taskdef:1")
    assert boto("ecs").describe_clusters(clusters=["demo-cluster"])["clusters"]
    assert boto("elbv2").describe_load_balancers()["LoadBalancers"] == []

    with recording(aws) as calls:
        assert run("cluster", "--image", IMAGE).exit_code == 0
    assert calls.changing == []


def test_cluster_without_image_and_nothing_pushed_says_what_to_do(
    aws: str, project: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dashscale.steps.push.find_pushed", lambda ctx, retries=5: None)
    with recording(aws) as calls:
        result = run("cluster")
    assert result.exit_code == 1
    text = said(result.stderr)
    assert "no pushed image" in text and "dashscale push" in text and "--image URI" in text
    assert "Traceback" not in result.output
    assert calls.changing == []


def test_cluster_without_image_uses_the_pushed_one(
    aws: str, boto, project: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashscale.steps.push import PushedImage

    pushed = PushedImage(IMAGE, "sha256:" + "a" * 64, "ARM64")
    monkeypatch.setattr("dashscale.steps.push.find_pushed", lambda ctx, retries=5: pushed)
    assert run("cluster").exit_code == 0
    taskdef = boto("ecs").describe_task_definition(taskDefinition="demo-taskdef")["taskDefinition"]
    assert taskdef["containerDefinitions"][0]["image"] == IMAGE
    assert taskdef["runtimePlatform"]["cpuArchitecture"] == "ARM64"


def test_no_default_vpc_names_the_two_variables(aws: str, boto, project: Path, run) -> None:
    ec2 = boto("ec2")
    vpc = default_vpc(boto)
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    gateways = ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}]
    )["InternetGateways"]
    for gateway in gateways:
        ec2.detach_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"], VpcId=vpc)
    ec2.delete_vpc(VpcId=vpc)

    with recording(aws) as calls:
        result = run("up", "--image", IMAGE)
    assert result.exit_code == 2
    text = said(result.stderr)
    assert "no default VPC" in text and "VPC_ID" in text and "SUBNET_IDS" in text
    assert calls.changing == []


def own_network(boto, zones: tuple[str, ...]) -> tuple[str, list[str]]:
    ec2 = boto("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=zone)["Subnet"][
            "SubnetId"
        ]
        for i, zone in enumerate(zones)
    ]
    return vpc, subnets


def test_vpc_id_and_subnet_ids_are_used(aws: str, boto, project: Path, run) -> None:
    vpc, subnets = own_network(boto, ("us-east-1a", "us-east-1b"))
    result = run(
        "up", "--image", IMAGE, "--set", f"VPC_ID={vpc}", "--set", f"SUBNET_IDS={','.join(subnets)}"
    )
    assert result.exit_code == 0, result.output
    (balancer,) = boto("elbv2").describe_load_balancers(Names=["demo-alb"])["LoadBalancers"]
    assert balancer["VpcId"] == vpc
    assert sorted(z["SubnetId"] for z in balancer["AvailabilityZones"]) == sorted(subnets)
    groups = boto("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["demo-alb-sg", "demo-from-alb-sg"]}]
    )["SecurityGroups"]
    assert {g["VpcId"] for g in groups} == {vpc}


def test_subnets_in_one_zone_are_refused(aws: str, boto, project: Path, run) -> None:
    vpc, subnets = own_network(boto, ("us-east-1a", "us-east-1a"))
    result = run(
        "cluster",
        "--image",
        IMAGE,
        "--set",
        f"VPC_ID={vpc}",
        "--set",
        f"SUBNET_IDS={','.join(subnets)}",
    )
    assert result.exit_code == 2
    assert "1 availability zone(s)" in said(result.stderr) and "two or more" in result.stderr


def test_changed_cpu_memory_or_platform_is_a_new_revision(
    aws: str, boto, project: Path, run
) -> None:
    assert run("cluster", "--image", IMAGE).exit_code == 0
    with recording(aws) as calls:
        result = run(
            "cluster",
            "--image",
            IMAGE,
            "--set",
            "TASK_CPU=512",
            "--set",
            "TASK_MEMORY=1024",
            "--set",
            "PLATFORM=linux/arm64",
        )
    assert result.exit_code == 0, result.output
    assert calls.changing == ["RegisterTaskDefinition"]
    assert "cpu 1024 → 512; memory 3072 → 1024; architecture X86_64, LINUX → ARM64, LINUX" in said(
        result.stderr
    )
    taskdef = boto("ecs").describe_task_definition(taskDefinition="demo-taskdef")["taskDefinition"]
    assert (taskdef["revision"], taskdef["cpu"], taskdef["memory"]) == (2, "512", "1024")
    assert taskdef["runtimePlatform"]["cpuArchitecture"] == "ARM64"


def test_task_definition_changes(project: Path) -> None:
    ctx, _ = make_ctx(project)
    desired = task_definition_request(ctx, DeployImage(IMAGE, "X86_64"), ROLE_ARN)
    # what AWS answers: the request plus fields it fills in
    registered = {
        **desired,
        "revision": 4,
        "status": "ACTIVE",
        "compatibilities": ["EC2", "FARGATE"],
        "containerDefinitions": [
            {**desired["containerDefinitions"][0], "cpu": 0, "environment": [], "mountPoints": []}
        ],
    }
    assert task_definition_changes(desired, registered) == []
    assert task_definition_changes(desired, None) == ["new"]
    other = task_definition_request(ctx, DeployImage(IMAGE + "x", "X86_64"), ROLE_ARN)
    assert task_definition_changes(other, registered) == ["image"]
    ported, _ = make_ctx(project, APP_PORT="9000")
    moved = task_definition_request(ported, DeployImage(IMAGE, "X86_64"), ROLE_ARN)
    assert task_definition_changes(moved, registered) == ["container"]


def _stub_no_revision(stubber: Stubber) -> None:
    stubber.add_client_error(
        "describe_task_definition",
        service_error_code="ClientException",
        service_message="Unable to describe task definition.",
        http_status_code=400,
    )
    # ...and the family's list confirms there is no ACTIVE revision (not a refused request)
    stubber.add_response(
        "list_task_definitions",
        {"taskDefinitionArns": []},
        {"familyPrefix": "demo-taskdef", "status": "ACTIVE", "maxResults": 1},
    )


def test_a_new_role_ecs_cannot_use_yet_is_retried(project: Path) -> None:
    ctx, _ = make_ctx(project)
    image = DeployImage(IMAGE, "X86_64")
    expected = task_definition_request(ctx, image, ROLE_ARN)
    ecs = ctx.client("ecs")
    registered = {
        "taskDefinition": {
            **{k: v for k, v in expected.items() if k != "tags"},
            "taskDefinitionArn": TASKDEF_ARN,
            "revision": 1,
        }
    }
    with Stubber(ecs) as stubber:
        _stub_no_revision(stubber)
        for _ in range(2):
            stubber.add_client_error(
                "register_task_definition",
                service_error_code="ClientException",
                service_message=ROLE_NOT_READY,
                http_status_code=400,
                expected_params=expected,
            )
        stubber.add_response("register_task_definition", registered, expected)
        # the check for a duplicate left by a retried, lost request finds only ours
        stubber.add_response("list_task_definitions", {"taskDefinitionArns": [TASKDEF_ARN]})
        arn = ensure(ctx, TaskDefinition(), {"image": image, "execution role": ROLE_ARN})
        stubber.assert_no_pending_responses()
    assert arn.endswith("demo-taskdef:1")
    assert ctx.clock.sleeps == [5.0, 5.0]  # type: ignore[attr-defined]


def test_other_ecs_errors_are_not_retried(project: Path) -> None:
    ctx, _ = make_ctx(project)
    image = DeployImage(IMAGE, "X86_64")
    with Stubber(ctx.client("ecs")) as stubber:
        _stub_no_revision(stubber)
        stubber.add_client_error(
            "register_task_definition",
            service_error_code="ClientException",
            service_message="Invalid 'cpu' setting for task.",
            http_status_code=400,
        )
        with pytest.raises(AwsError, match="Invalid 'cpu'"):
            ensure(ctx, TaskDefinition(), {"image": image, "execution role": ROLE_ARN})
    assert ctx.clock.sleeps == []  # type: ignore[attr-defined]


def test_cluster_finds_the_image_in_ecr_without_docker(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    """With ECR as the registry, its API says whether the current content was pushed."""
    import json

    from dashscale.config import load_config
    from dashscale.context import Context
    from dashscale.steps.build import current_image
    from dashscale.ui import UI

    _, tag = current_image(Context(config=load_config(), ui=UI()))
    ecr = boto("ecr")
    repo = ecr.create_repository(repositoryName="demo-repository")["repository"]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": "sha256:" + "c" * 64, "size": 1},
        "layers": [],
    }
    ecr.put_image(
        repositoryName="demo-repository", imageManifest=json.dumps(manifest), imageTag=tag
    )
    result = run("cluster")
    assert result.exit_code == 0, result.output
    taskdef = boto("ecs").describe_task_definition(taskDefinition="demo-taskdef")["taskDefinition"]
    assert taskdef["containerDefinitions"][0]["image"] == f"{repo['repositoryUri']}:{tag}"
    # another content: not pushed, and said so without Docker
    (project / "src" / "app.py").write_text("app = None\nserver = app\n# changed\n")
    assert "no pushed image" in said(run("cluster").stderr)


def test_a_refused_task_definition_lookup_is_an_error_not_a_first_run(
    aws: str, boto, project: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ECS answers "no ACTIVE revision" with a bare ClientException, the code it also gives a
    refused request: only a family that really has no revision counts as a first run."""
    assert run("cluster", "--image", IMAGE).exit_code == 0
    refuse(monkeypatch, "before-call.ecs.DescribeTaskDefinition", "ClientException")
    with recording(aws) as calls:
        result = run("cluster", "--image", IMAGE)
    assert result.exit_code == 1, result.output
    assert "ClientException" in said(result.stderr)
    assert "RegisterTaskDefinition" not in calls.changing
    listed = boto("ecs").list_task_definitions(familyPrefix="demo-taskdef")
    assert len(listed["taskDefinitionArns"]) == 1

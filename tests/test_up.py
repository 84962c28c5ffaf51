"""`dashscale up --image` against moto's server, checked from AWS's side, then re-runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.operating import said
from tests.support.recording import recording

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-repository:v1"
IMAGE_2 = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-repository:v2"
ACCOUNT = "123456789012"
TAG = {"Key": "dashscale:app", "Value": "demo"}
EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": "sha256:" + "c" * 64, "size": 1},
        "layers": [],
    }
)


def app_port(project: Path) -> int:
    for line in (project / ".env").read_text().splitlines():
        if line.startswith("APP_PORT="):
            return int(line.split("=", 1)[1])
    raise AssertionError("the project fixture sets APP_PORT")


def ingress(group: dict) -> set[tuple]:
    rules = set()
    for permission in group["IpPermissions"]:
        key = (permission["IpProtocol"], permission["FromPort"], permission["ToPort"])
        rules |= {(*key, r["CidrIp"]) for r in permission.get("IpRanges", [])}
        rules |= {(*key, r["CidrIpv6"]) for r in permission.get("Ipv6Ranges", [])}
        rules |= {(*key, p["GroupId"]) for p in permission.get("UserIdGroupPairs", [])}
    return rules


def test_up_creates_everything_with_its_properties(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    port = app_port(project)
    result = run("up", "--image", IMAGE)
    assert result.exit_code == 0, result.output

    ec2, ecs, iam, logs, elb = (boto(s) for s in ("ec2", "ecs", "iam", "logs", "elbv2"))
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    default_subnets = ec2.describe_subnets(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc["VpcId"]]},
            {"Name": "default-for-az", "Values": ["true"]},
        ]
    )["Subnets"]
    zone_of = {s["SubnetId"]: s["AvailabilityZone"] for s in default_subnets}

    # security groups: the load balancer's open on 80/443, the tasks' only APP_PORT from it
    groups = {
        g["GroupName"]: g
        for g in ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": ["demo-alb-sg", "demo-from-alb-sg"]}]
        )["SecurityGroups"]
    }
    alb_sg, task_sg = groups["demo-alb-sg"], groups["demo-from-alb-sg"]
    assert alb_sg["VpcId"] == task_sg["VpcId"] == vpc["VpcId"]
    assert ingress(alb_sg) == {("tcp", 80, 80, "0.0.0.0/0"), ("tcp", 443, 443, "0.0.0.0/0")}
    assert ingress(task_sg) == {("tcp", port, port, alb_sg["GroupId"])}
    assert TAG in alb_sg["Tags"] and TAG in task_sg["Tags"]

    # cluster
    cluster = ecs.describe_clusters(clusters=["demo-cluster"], include=["TAGS"])["clusters"][0]
    assert cluster["status"] == "ACTIVE" and "FARGATE" in cluster["capacityProviders"]
    assert {"key": "dashscale:app", "value": "demo"} in cluster["tags"]

    # execution role: ECS tasks of this account only, the managed policy only
    role = iam.get_role(RoleName="demo-us-east-1-task-execution-role")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    attached = iam.list_attached_role_policies(RoleName="demo-us-east-1-task-execution-role")
    assert [p["PolicyArn"] for p in attached["AttachedPolicies"]] == [EXECUTION_POLICY]
    assert TAG in role["Tags"]

    # log group with the default retention
    (group,) = logs.describe_log_groups(logGroupNamePrefix="/ecs/demo")["logGroups"]
    assert group["logGroupName"] == "/ecs/demo" and group["retentionInDays"] == 30
    assert logs.list_tags_for_resource(resourceArn=group["logGroupArn"])["tags"] == {
        "dashscale:app": "demo"
    }

    # task definition
    answer = ecs.describe_task_definition(taskDefinition="demo-taskdef", include=["TAGS"])
    taskdef = answer["taskDefinition"]
    assert taskdef["revision"] == 1
    assert taskdef["requiresCompatibilities"] == ["FARGATE"]
    assert taskdef["networkMode"] == "awsvpc"
    assert (taskdef["cpu"], taskdef["memory"]) == ("1024", "3072")
    assert taskdef["runtimePlatform"]["cpuArchitecture"] == "X86_64"
    assert taskdef["executionRoleArn"] == role["Arn"]
    (container,) = taskdef["containerDefinitions"]
    assert container["name"] == "demo-container" and container["image"] == IMAGE
    assert [m["containerPort"] for m in container["portMappings"]] == [port]
    assert container["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": "/ecs/demo",
            "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "ecs",
        },
    }
    assert {"key": "dashscale:app", "value": "demo"} in answer["tags"]

    # load balancer
    (balancer,) = elb.describe_load_balancers(Names=["demo-alb"])["LoadBalancers"]
    assert balancer["Scheme"] == "internet-facing" and balancer["Type"] == "application"
    assert balancer["SecurityGroups"] == [alb_sg["GroupId"]]
    lb_subnets = [z["SubnetId"] for z in balancer["AvailabilityZones"]]
    assert set(lb_subnets) <= set(zone_of) and len({zone_of[s] for s in lb_subnets}) >= 2
    attributes = {
        a["Key"]: a["Value"]
        for a in elb.describe_load_balancer_attributes(LoadBalancerArn=balancer["LoadBalancerArn"])[
            "Attributes"
        ]
    }
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    tags = elb.describe_tags(ResourceArns=[balancer["LoadBalancerArn"]])["TagDescriptions"]
    assert TAG in tags[0]["Tags"]

    # target group: ip, HTTP on APP_PORT, the tuned health check
    (target_group,) = elb.describe_target_groups(Names=["demo-tg"])["TargetGroups"]
    assert target_group["TargetType"] == "ip"
    assert (target_group["Protocol"], target_group["Port"]) == ("HTTP", port)
    assert target_group["VpcId"] == vpc["VpcId"]
    assert target_group["HealthCheckPath"] == "/"
    assert target_group["HealthCheckIntervalSeconds"] == 10
    assert target_group["HealthCheckTimeoutSeconds"] < 10
    assert target_group["HealthyThresholdCount"] == 2
    tg_attributes = {
        a["Key"]: a["Value"]
        for a in elb.describe_target_group_attributes(
            TargetGroupArn=target_group["TargetGroupArn"]
        )["Attributes"]
    }
    assert tg_attributes["deregistration_delay.timeout_seconds"] == "30"
    tg_arn = target_group["TargetGroupArn"]

    # listener: port 80 forwarding to the target group
    (listener,) = elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    assert (listener["Port"], listener["Protocol"]) == (80, "HTTP")
    (action,) = listener["DefaultActions"]
    assert action["Type"] == "forward" and action["TargetGroupArn"] == tg_arn

    # service
    (service,) = ecs.describe_services(
        cluster="demo-cluster", services=["demo-service"], include=["TAGS"]
    )["services"]
    assert service["launchType"] == "FARGATE" and service["desiredCount"] == 3
    assert service["taskDefinition"] == taskdef["taskDefinitionArn"]
    network = service["networkConfiguration"]["awsvpcConfiguration"]
    assert sorted(network["subnets"]) == sorted(lb_subnets)
    assert network["securityGroups"] == [task_sg["GroupId"]]
    assert network["assignPublicIp"] == "ENABLED"
    assert service["loadBalancers"] == [
        {"targetGroupArn": tg_arn, "containerName": "demo-container", "containerPort": port}
    ]
    assert {"key": "dashscale:app", "value": "demo"} in service["tags"]

    # output: one line per resource, the address on stdout, the summary table
    assert result.stdout.strip().splitlines()[-1] == f"http://{balancer['DNSName']}"
    for name in ("demo-alb-sg", "demo-cluster", "demo-taskdef:1", "demo-alb", "demo-service"):
        assert name in result.stderr
    assert "10 resource(s) created or updated" in said(result.stderr)


def test_second_up_changes_nothing_and_a_new_image_is_one_revision_one_update(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE).exit_code == 0

    with recording(aws) as calls:
        again = run("up", "--image", IMAGE)
    assert again.exit_code == 0, again.output
    assert calls.operations, "the recorder saw nothing: the assertion below would prove nothing"
    assert calls.changing == []
    assert ": 0 resource(s) created or updated" in said(again.stderr)

    with recording(aws) as calls:
        new_image = run("up", "--image", IMAGE_2)
    assert new_image.exit_code == 0, new_image.output
    assert calls.changing == ["RegisterTaskDefinition", "UpdateService"]

    ecs = boto("ecs")
    arns = ecs.list_task_definitions(familyPrefix="demo-taskdef")["taskDefinitionArns"]
    assert [a.rsplit(":", 1)[-1] for a in arns] == ["1", "2"]
    (service,) = ecs.describe_services(cluster="demo-cluster", services=["demo-service"])[
        "services"
    ]
    running = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    assert running["taskDefinition"]["revision"] == 2
    assert running["taskDefinition"]["containerDefinitions"][0]["image"] == IMAGE_2
    assert service["desiredCount"] == 3


def test_changed_desired_count_is_one_service_update(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE).exit_code == 0
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE, "--set", "DESIRED_COUNT=2")
    assert result.exit_code == 0, result.output
    assert calls.changing == ["UpdateService"]
    (service,) = boto("ecs").describe_services(cluster="demo-cluster", services=["demo-service"])[
        "services"
    ]
    assert service["desiredCount"] == 2


def test_changed_settings_update_only_what_differs(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE).exit_code == 0
    with recording(aws) as calls:
        result = run(
            "up",
            "--image",
            IMAGE,
            "--set",
            "LOG_RETENTION_DAYS=7",
            "--set",
            "HEALTH_CHECK_INTERVAL=15",
            "--set",
            "DEREGISTRATION_DELAY=10",
        )
    assert result.exit_code == 0, result.output
    assert sorted(calls.changing) == [
        "ModifyTargetGroup",
        "ModifyTargetGroupAttributes",
        "PutRetentionPolicy",
    ]
    logs, elb = boto("logs"), boto("elbv2")
    assert (
        logs.describe_log_groups(logGroupNamePrefix="/ecs/demo")["logGroups"][0]["retentionInDays"]
        == 7
    )
    (group,) = elb.describe_target_groups(Names=["demo-tg"])["TargetGroups"]
    assert group["HealthCheckIntervalSeconds"] == 15


def test_drifted_rules_and_policies_are_put_back(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE).exit_code == 0
    ec2, iam = boto("ec2"), boto("iam")
    (task_sg,) = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["demo-from-alb-sg"]}]
    )["SecurityGroups"]
    ec2.authorize_security_group_ingress(  # the guide's "All TCP" from anywhere
        GroupId=task_sg["GroupId"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 0,
                "ToPort": 65535,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    extra = "arn:aws:iam::aws:policy/AmazonS3FullAccess"
    iam.attach_role_policy(RoleName="demo-us-east-1-task-execution-role", PolicyArn=extra)

    result = run("up", "--image", IMAGE)
    assert result.exit_code == 0, result.output
    (task_sg,) = ec2.describe_security_groups(GroupIds=[task_sg["GroupId"]])["SecurityGroups"]
    assert [(p["FromPort"], p["ToPort"]) for p in task_sg["IpPermissions"]] == [
        (app_port(project), app_port(project))
    ]
    attached = iam.list_attached_role_policies(RoleName="demo-us-east-1-task-execution-role")
    assert [p["PolicyArn"] for p in attached["AttachedPolicies"]] == [EXECUTION_POLICY]


def test_up_with_domain_serves_https_and_a_rerun_changes_nothing(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    result = run("up", "--image", IMAGE, "--set", "DOMAIN=example.com")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "https://example.com"
    elbv2 = boto("elbv2")
    (lb,) = elbv2.describe_load_balancers(Names=["demo-alb"])["LoadBalancers"]
    listeners = {
        item["Port"]: item
        for item in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    }
    assert listeners[443]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert listeners[80]["DefaultActions"][0]["Type"] == "redirect"
    (certificate,) = boto("acm").list_certificates()["CertificateSummaryList"]
    assert (
        boto("acm").describe_certificate(CertificateArn=certificate["CertificateArn"])[
            "Certificate"
        ]["Status"]
        == "ISSUED"
    )
    (zone,) = boto("route53").list_hosted_zones()["HostedZones"]
    records = boto("route53").list_resource_record_sets(HostedZoneId=zone["Id"])
    aliases = [r for r in records["ResourceRecordSets"] if r["Type"] == "A"]
    assert sorted(r["Name"] for r in aliases) == ["example.com.", "www.example.com."]
    assert {r["AliasTarget"]["HostedZoneId"] for r in aliases} == {lb["CanonicalHostedZoneId"]}

    with recording(aws) as calls:
        again = run("up", "--image", IMAGE, "--set", "DOMAIN=example.com")
    assert again.exit_code == 0, again.output
    assert calls.changing == []
    # alb on a re-run keeps the redirect the TLS step made
    assert (
        elbv2.describe_listeners(ListenerArns=[listeners[80]["ListenerArn"]])["Listeners"][0][
            "DefaultActions"
        ][0]["Type"]
        == "redirect"
    )


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (
            lambda boto: boto("ec2").create_security_group(
                GroupName="demo-from-alb-sg",
                Description="someone else's",
                VpcId=boto("ec2").describe_vpcs(
                    Filters=[{"Name": "is-default", "Values": ["true"]}]
                )["Vpcs"][0]["VpcId"],
            ),
            "security group demo-from-alb-sg",
        ),
        (
            lambda boto: boto("ecs").create_cluster(clusterName="demo-cluster"),
            "ECS cluster demo-cluster",
        ),
        (
            lambda boto: boto("iam").create_role(
                RoleName="demo-us-east-1-task-execution-role", AssumeRolePolicyDocument="{}"
            ),
            "IAM role demo-us-east-1-task-execution-role",
        ),
    ],
)
def test_untagged_resource_under_our_name_is_never_taken_over(
    aws: str, boto, project: Path, run, no_docker: None, make, kind: str
) -> None:
    make(boto)
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE)
    assert result.exit_code == 1
    assert f"{kind} exists but is not tagged dashscale:app=demo" in said(result.stderr)
    assert "hint:" in result.stderr and "Traceback" not in result.output
    assert calls.changing == []  # refused before anything changed


def test_untagged_load_balancer_is_never_taken_over(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    ec2 = boto("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    boto("elbv2").create_load_balancer(
        Name="demo-alb", Subnets=[s["SubnetId"] for s in subnets["Subnets"][:2]]
    )
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE)
    assert result.exit_code == 1
    assert "load balancer demo-alb exists but is not tagged" in said(result.stderr)
    assert calls.changing == []


def test_up_no_wait_prints_the_address(aws: str, boto, project: Path, run, no_docker: None):
    result = run("up", "--image", IMAGE, "--no-wait")
    assert result.exit_code == 0, result.output
    assert "--no-wait" in result.stderr and "passed" not in result.stderr
    (balancer,) = boto("elbv2").describe_load_balancers(Names=["demo-alb"])["LoadBalancers"]
    assert result.stdout.strip() == f"http://{balancer['DNSName']}"


def test_up_without_image_builds_checks_and_pushes_first(
    aws: str, boto, project: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order of the steps (the real build and push have their own Docker tests)."""
    from dashscale.steps import build, push

    steps: list[str] = []
    local = build.Image("demo", "t1", "sha256:" + "1" * 64, "ARM64")
    pushed = push.PushedImage(IMAGE, "sha256:" + "2" * 64, "ARM64")

    def find_pushed(ctx, retries: int = 5, **_: object):
        steps.append("find_pushed")
        return None

    def fake_build(ctx, verbose: bool = False):
        steps.append("build")
        return local

    def fake_push(ctx, retries: int = 5, **_: object):
        steps.append(f"push retries={retries}")
        return pushed

    monkeypatch.setattr(push, "find_pushed", find_pushed)
    monkeypatch.setattr(push, "push", fake_push)
    monkeypatch.setattr(build, "current_image", lambda ctx: (None, "t1"))
    monkeypatch.setattr(build, "find_local_image", lambda ctx, tag: None)
    monkeypatch.setattr(build, "build", fake_build)
    monkeypatch.setattr(build, "smoke_check", lambda ctx, image: steps.append("smoke_check"))

    result = run("up", "--retries", "2")
    assert result.exit_code == 0, result.output
    # no repository yet, so nothing can be pushed: the registry is not asked
    assert steps == ["build", "smoke_check", "push retries=2"]
    taskdef = boto("ecs").describe_task_definition(taskDefinition="demo-taskdef")["taskDefinition"]
    assert taskdef["containerDefinitions"][0]["image"] == IMAGE
    assert taskdef["runtimePlatform"]["cpuArchitecture"] == "ARM64"

    steps.clear()
    monkeypatch.setattr(push, "find_pushed", lambda ctx, retries=5, **_: pushed)
    with recording(aws) as calls:
        assert run("up", "--no-check").exit_code == 0
    assert steps == [] and calls.changing == []


def fake_image_steps(monkeypatch: pytest.MonkeyPatch, build_step) -> None:
    """The image steps of `up` faked around `build_step` (the local build): no image in the
    registry, none in the engine, a smoke check that passes and a push that answers IMAGE."""
    from dashscale.steps import build, push

    pushed = push.PushedImage(IMAGE, "sha256:" + "2" * 64, "ARM64")
    monkeypatch.setattr(push, "find_pushed", lambda ctx, retries=5, **_: None)
    monkeypatch.setattr(push, "push", lambda ctx, retries=5, **_: pushed)
    monkeypatch.setattr(build, "current_image", lambda ctx: (None, "t1"))
    monkeypatch.setattr(build, "find_local_image", lambda ctx, tag: None)
    monkeypatch.setattr(build, "build", build_step)
    monkeypatch.setattr(build, "smoke_check", lambda ctx, image: None)


def test_up_reads_plans_and_creates_while_the_image_builds(
    aws: str, boto, project: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local build starts as soon as the image's reading knows the registry lacks it: the
    rest of AWS is read and the plan made while it runs, and what does not need the image
    (the load balancer) is created meanwhile; only the task definition waits for the image."""
    import threading

    from dashscale import model
    from dashscale.steps import build

    local = build.Image("demo", "t1", "sha256:" + "1" * 64, "ARM64")
    started, planned, built = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, object] = {}
    plan = model.plan

    def planning(*args: object, **kwargs: object) -> model.Plan:
        # the build started before this, and has not finished (it waits for the plan)
        seen["building at the plan"] = started.wait(10) and not built.is_set()
        planned.set()
        return plan(*args, **kwargs)  # type: ignore[arg-type]

    def slow_build(ctx: object, verbose: bool = False) -> build.Image:
        started.set()
        seen["planned during the build"] = planned.wait(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if boto("elbv2").describe_load_balancers()["LoadBalancers"]:
                break
            time.sleep(0.1)
        seen["load balancers"] = len(boto("elbv2").describe_load_balancers()["LoadBalancers"])
        seen["task definitions"] = boto("ecs").list_task_definitions()["taskDefinitionArns"]
        built.set()
        return local

    monkeypatch.setattr(model, "plan", planning)
    fake_image_steps(monkeypatch, slow_build)
    result = run("up")
    assert result.exit_code == 0, result.output
    assert seen == {
        "building at the plan": True,
        "planned during the build": True,
        "load balancers": 1,
        "task definitions": [],
    }
    taskdef = boto("ecs").describe_task_definition(taskDefinition="demo-taskdef")["taskDefinition"]
    assert taskdef["containerDefinitions"][0]["image"] == IMAGE


def test_a_dry_run_builds_nothing(
    aws: str, project: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[bool] = []
    fake_image_steps(monkeypatch, lambda ctx, verbose=False: built.append(True))
    result = run("up", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would build and push" in said(result.stderr)
    assert built == []


def test_a_run_that_fails_while_the_image_builds_stops_the_build(
    aws: str, project: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that stops after the reading (here the plan fails) stops the build started
    alongside too, before the command ends."""
    import threading

    from dashscale import model
    from dashscale.errors import DashscaleError

    started = threading.Event()
    ended: list[str] = []

    def build_until_cancelled(ctx, verbose: bool = False) -> None:
        started.set()
        ended.append("cancelled" if ctx.clock.cancelled.wait(30) else "timed out")

    def failing_plan(*args: object, **kwargs: object) -> None:
        assert started.wait(10)
        raise DashscaleError("the plan failed", "fix it")

    fake_image_steps(monkeypatch, build_until_cancelled)
    monkeypatch.setattr(model, "plan", failing_plan)
    result = run("up")
    assert result.exit_code == 1
    assert "the plan failed" in said(result.stderr)
    assert ended == ["cancelled"]


def test_a_rerun_follows_a_rollout_that_did_not_finish(
    aws: str, project: Path, run, no_docker: None
) -> None:
    first = run("up", "--image", IMAGE)
    assert first.exit_code == 0, first.output
    from moto.ecs.models import ecs_backends

    # The first run's deployment failed after it stopped watching (Ctrl-C, a closed laptop).
    service = ecs_backends["123456789012"]["us-east-1"].services["demo-cluster:demo-service"]
    service.deployments[0]["rolloutState"] = "FAILED"
    service.deployments[0]["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed"
    again = run("up", "--image", IMAGE)
    assert again.exit_code == 1, again.output  # never "done" over tasks that do not come up
    assert "circuit breaker" in said(again.output)


def git(project: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=project,
        check=True,
        capture_output=True,
    )


def planned_image(result) -> str:
    """The image URI `up --dry-run` names for the current content."""
    match = re.search(r"demo-repository:([\w.-]+)", said(result.stderr))
    assert match, result.stderr
    return match.group(1)


def test_committing_deployed_sources_keeps_the_tag_and_changes_nothing(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    """The tag follows the content only: a commit of what is deployed is not a new image."""
    git(project, "init", "-q")
    git(project, "add", "src")
    git(project, "commit", "-qm", "first")
    app = project / "src" / "app.py"
    app.write_text(app.read_text() + "\n# a tweak, deployed before it is committed\n")

    before = run("up", "--dry-run")
    assert before.exit_code == 0, before.output
    tag = planned_image(before)
    # the image of that content is in ECR (what `push` would have left there)
    ecr = boto("ecr")
    ecr.create_repository(repositoryName="demo-repository", tags=[TAG])
    ecr.put_image(repositoryName="demo-repository", imageManifest=MANIFEST, imageTag=tag)
    deployed = run("up")
    assert deployed.exit_code == 0, deployed.output

    git(project, "commit", "-qam", "the tweak")
    after = run("up", "--dry-run")
    assert after.exit_code == 0, after.output
    assert planned_image(after) == tag
    with recording(aws) as calls:
        again = run("up")  # no_docker: building anything would fail the run
    assert again.exit_code == 0, again.output
    assert calls.changing == []
    assert "already pushed" in said(again.stderr)


def test_up_no_wait_with_a_pending_certificate_returns_and_says_what_finishes_https(
    aws: str, boto, project: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    import moto.settings

    monkeypatch.setattr(moto.settings, "ACM_VALIDATION_WAIT", 10**6)  # stays pending
    command = [sys.executable, "-m", "dashscale", "up", "--image", IMAGE, "--no-wait"]
    started = time.monotonic()
    result = subprocess.run(
        [*command, "--set", "DOMAIN=example.com"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 60
    err = said(result.stderr)
    assert "HTTPS on example.com follows once ACM issues the certificate" in err
    assert "run `dashscale tls` (or `dashscale up`)" in err
    (balancer,) = boto("elbv2").describe_load_balancers(Names=["demo-alb"])["LoadBalancers"]
    assert result.stdout.strip().splitlines()[-1] == f"http://{balancer['DNSName']}"
    # the certificate was requested and its validation records written; nothing uses it yet
    (certificate,) = boto("acm").list_certificates()["CertificateSummaryList"]
    details = boto("acm").describe_certificate(CertificateArn=certificate["CertificateArn"])
    (zone,) = boto("route53").list_hosted_zones()["HostedZones"]
    records = boto("route53").list_resource_record_sets(HostedZoneId=zone["Id"])
    names = {r["Name"] for r in records["ResourceRecordSets"] if r["Type"] == "CNAME"}
    wanted = {
        o["ResourceRecord"]["Name"] for o in details["Certificate"]["DomainValidationOptions"]
    }
    assert names == wanted
    ports = {
        item["Port"]
        for item in boto("elbv2").describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])[
            "Listeners"
        ]
    }
    assert ports == {80}

    # once ACM issues it, the command named finishes the job with the same certificate
    monkeypatch.setattr(moto.settings, "ACM_VALIDATION_WAIT", 0)
    finished = run("tls", "--set", "DOMAIN=example.com")
    assert finished.exit_code == 0, finished.output
    assert finished.stdout.strip().splitlines()[-1] == "https://example.com"
    assert len(boto("acm").list_certificates()["CertificateSummaryList"]) == 1

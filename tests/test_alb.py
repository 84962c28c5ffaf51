"""`dashscale alb`: the service's request fields moto drops (checked with botocore's Stubber),
the port-80 listener on re-runs, and a failed or stuck rollout explained."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from dashscale.aws import Aws
from dashscale.errors import WaitTimeout
from dashscale.model import ensure
from dashscale.steps.deployment import wait_for_deployment
from dashscale.steps.network import Network
from dashscale.steps.service import Service, service_changes, service_settings
from tests.support.operating import make_ctx, said
from tests.support.recording import recording

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-repository:v1"
IMAGE_2 = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-repository:v2"
TG_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/demo-tg/0123456789abcdef"
TASKDEF_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/demo-taskdef:1"
SERVICE_ARN = "arn:aws:ecs:us-east-1:123456789012:service/demo-cluster/demo-service"
SUBNETS = ("subnet-0a", "subnet-0b")
CIRCUIT_BREAKER_REASON = "ECS deployment circuit breaker: tasks failed to start."
STOPPED_REASON = "Essential container in task exited"
APP_ERROR = "ModuleNotFoundError: No module named 'pandas'"


def app_port(project: Path) -> int:
    for line in (project / ".env").read_text().splitlines():
        if line.startswith("APP_PORT="):
            return int(line.split("=", 1)[1])
    raise AssertionError("the project fixture sets APP_PORT")


def service_refs() -> dict[str, Any]:
    """What the service's settings name: the ids of the resources it needs."""
    return {
        "network": Network("vpc-0a", SUBNETS),
        "task security group": "sg-0tasks",
        "ECS cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/demo-cluster",
        "task definition": TASKDEF_ARN,
        "target group": TG_ARN,
        "http listener": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/x",
    }


def described_service(port: int, **fields: Any) -> dict[str, Any]:
    return {
        "serviceArn": SERVICE_ARN,
        "serviceName": "demo-service",
        "status": "ACTIVE",
        "desiredCount": 3,
        "taskDefinition": TASKDEF_ARN,
        "tags": [{"key": "dashscale:app", "value": "demo"}],
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(SUBNETS),
                "securityGroups": ["sg-0tasks"],
                "assignPublicIp": "ENABLED",
            }
        },
        "loadBalancers": [
            {"targetGroupArn": TG_ARN, "containerName": "demo-container", "containerPort": port}
        ],
        "healthCheckGracePeriodSeconds": 30,
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        },
        "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY", "rolloutState": "COMPLETED"}],
        **fields,
    }


# --- request fields moto drops ---------------------------------------------------------------


def test_create_service_request(project: Path) -> None:
    ctx, _ = make_ctx(project, HEALTH_CHECK_GRACE="45")
    port = app_port(project)
    expected = {
        "cluster": "demo-cluster",
        "serviceName": "demo-service",
        "taskDefinition": TASKDEF_ARN,
        "desiredCount": 3,
        "launchType": "FARGATE",
        "schedulingStrategy": "REPLICA",
        "deploymentController": {"type": "ECS"},
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": ["subnet-0a", "subnet-0b"],
                "securityGroups": ["sg-0tasks"],
                "assignPublicIp": "ENABLED",
            }
        },
        "loadBalancers": [
            {"targetGroupArn": TG_ARN, "containerName": "demo-container", "containerPort": port}
        ],
        "healthCheckGracePeriodSeconds": 45,
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        },
        "propagateTags": "SERVICE",
        "enableECSManagedTags": True,
        "tags": [{"key": "dashscale:app", "value": "demo"}],
        "clientToken": ANY,
    }
    with Stubber(ctx.client("ecs")) as stubber:
        stubber.add_response(
            "describe_services",
            {"services": [], "failures": [{"arn": SERVICE_ARN, "reason": "MISSING"}]},
            {"cluster": "demo-cluster", "services": ["demo-service"], "include": ["TAGS"]},
        )
        stubber.add_response(
            "create_service", {"service": described_service(port)}, expected_params=expected
        )
        arn, deployment = ensure(ctx, Service(), service_refs())
        stubber.assert_no_pending_responses()
    assert (arn, deployment) == (SERVICE_ARN, "ecs-svc/1")


def test_drifted_grace_period_and_circuit_breaker_are_one_update(project: Path) -> None:
    ctx, _ = make_ctx(project)
    port = app_port(project)
    drifted = described_service(
        port,
        healthCheckGracePeriodSeconds=0,
        deploymentConfiguration={
            "deploymentCircuitBreaker": {"enable": False, "rollback": False},
            "maximumPercent": 200,
            "minimumHealthyPercent": 50,
        },
    )
    expected = {
        "cluster": "demo-cluster",
        "service": "demo-service",
        "healthCheckGracePeriodSeconds": 30,
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        },
    }
    updated = described_service(
        port, deployments=[{"id": "ecs-svc/2", "status": "PRIMARY", "rolloutState": "IN_PROGRESS"}]
    )
    with Stubber(ctx.client("ecs")) as stubber:
        stubber.add_response("describe_services", {"services": [drifted]})
        stubber.add_response("update_service", {"service": updated}, expected_params=expected)
        _, deployment = ensure(ctx, Service(), service_refs())
        stubber.assert_no_pending_responses()
    assert deployment == "ecs-svc/2"


def test_service_in_step_makes_no_call(project: Path) -> None:
    ctx, _ = make_ctx(project)
    with Stubber(ctx.client("ecs")) as stubber:
        stubber.add_response(
            "describe_services", {"services": [described_service(app_port(project))]}
        )
        assert ensure(ctx, Service(), service_refs()) == (SERVICE_ARN, None)
        stubber.assert_no_pending_responses()


def test_service_changes_ignores_fields_the_description_leaves_out(project: Path) -> None:
    ctx, _ = make_ctx(project)
    port = app_port(project)
    desired = service_settings(ctx, service_refs())
    bare = described_service(port)
    del bare["healthCheckGracePeriodSeconds"], bare["deploymentConfiguration"]
    assert service_changes(desired, bare) == {}
    assert service_changes(desired, described_service(port, desiredCount=2)) == {"desiredCount": 3}
    moved = described_service(port, loadBalancers=[])
    assert list(service_changes(desired, moved)) == ["loadBalancers"]


# --- the port-80 listener on re-runs -----------------------------------------------------------


def listener_80(boto) -> dict:
    elb = boto("elbv2")
    (balancer,) = elb.describe_load_balancers(Names=["demo-alb"])["LoadBalancers"]
    listeners = elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    return next(item for item in listeners if item["Port"] == 80)


def test_alb_keeps_the_https_redirect(aws: str, boto, project: Path, run) -> None:
    first = run("up", "--image", IMAGE)
    assert first.exit_code == 0, first.output
    redirect = {
        "Type": "redirect",
        "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"},
    }
    boto("elbv2").modify_listener(
        ListenerArn=listener_80(boto)["ListenerArn"], DefaultActions=[redirect]
    )

    with recording(aws) as calls:
        result = run("alb")
    assert result.exit_code == 0, result.output
    assert calls.changing == []
    assert "redirect (HTTPS)" in result.stderr
    assert listener_80(boto)["DefaultActions"][0]["Type"] == "redirect"


def test_alb_puts_back_a_listener_forwarding_elsewhere(aws: str, boto, project: Path, run):
    assert run("up", "--image", IMAGE).exit_code == 0
    elb = boto("elbv2")
    (ours,) = elb.describe_target_groups(Names=["demo-tg"])["TargetGroups"]
    other = elb.create_target_group(
        Name="other-tg", Protocol="HTTP", Port=80, VpcId=ours["VpcId"], TargetType="ip"
    )["TargetGroups"][0]
    elb.modify_listener(
        ListenerArn=listener_80(boto)["ListenerArn"],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": other["TargetGroupArn"]}],
    )
    with recording(aws) as calls:
        result = run("alb")
    assert result.exit_code == 0, result.output
    assert calls.changing == ["ModifyListener"]
    assert listener_80(boto)["DefaultActions"][0]["TargetGroupArn"] == ours["TargetGroupArn"]


def test_alb_before_cluster_says_what_to_run(aws: str, project: Path, run) -> None:
    result = run("alb")
    assert result.exit_code == 1
    assert "dashscale cluster" in said(result.stderr) and "Traceback" not in result.output


def test_alb_rerun_reports_target_health(aws: str, boto, project: Path, run) -> None:
    assert run("up", "--image", IMAGE).exit_code == 0
    elb = boto("elbv2")
    (group,) = elb.describe_target_groups(Names=["demo-tg"])["TargetGroups"]
    elb.register_targets(
        TargetGroupArn=group["TargetGroupArn"], Targets=[{"Id": "10.0.1.5", "Port": 8050}]
    )
    result = run("alb")
    assert result.exit_code == 0, result.output
    assert "10.0.1.5:8050" in result.stderr and "deployment" not in result.stderr
    (balancer,) = elb.describe_load_balancers(Names=["demo-alb"])["LoadBalancers"]
    assert result.stdout.strip() == f"http://{balancer['DNSName']}"


# --- a failed rollout ----------------------------------------------------------------------------


def patch_answers(monkeypatch: pytest.MonkeyPatch, rollout: str) -> None:
    """Minimal edits of two answers moto cannot give: our deployment FAILED (rolled back by the
    circuit breaker while the service still looks stable) or stuck IN_PROGRESS, and a target
    failing its health checks."""

    def deployments(parsed: dict, **_: Any) -> None:
        for service in parsed.get("services", []):
            primary = next(d for d in service["deployments"] if d["status"] == "PRIMARY")
            if rollout == "FAILED":
                primary.update(
                    status="ACTIVE",
                    rolloutState="FAILED",
                    rolloutStateReason=CIRCUIT_BREAKER_REASON,
                )
                rollback = {
                    "id": "ecs-svc/rollback",
                    "status": "PRIMARY",
                    "rolloutState": "IN_PROGRESS",
                }
                service["deployments"] = [rollback, primary]
            else:
                primary.update(rolloutState="IN_PROGRESS", runningCount=1, pendingCount=2)
            service["events"] = [{"message": "(service demo-service) has started 2 tasks"}]

    def health(parsed: dict, **_: Any) -> None:
        parsed["TargetHealthDescriptions"] = [
            {
                "Target": {"Id": "10.0.1.5", "Port": 8050},
                "TargetHealth": {
                    "State": "unhealthy",
                    "Reason": "Target.ResponseCodeMismatch",
                    "Description": "Health checks failed with these codes: [502]",
                },
            }
        ]

    original = Aws.client

    def client(self: Aws, service: str, region: str | None = None) -> Any:
        made = original(self, service, region)
        if not getattr(made, "_answers_patched", False):
            made._answers_patched = True
            made.meta.events.register("after-call.ecs.DescribeServices", deployments)
            made.meta.events.register(
                "after-call.elastic-load-balancing-v2.DescribeTargetHealth", health
            )
        return made

    monkeypatch.setattr(Aws, "client", client)


def crashed_task(boto) -> str:
    """A task of the service's deployment that stopped, and its container's log."""
    ecs, logs = boto("ecs"), boto("logs")
    (service,) = ecs.describe_services(cluster="demo-cluster", services=["demo-service"])[
        "services"
    ]
    # moto runs a task only from a definition with container-level memory: a stand-in family
    ecs.register_task_definition(
        family="stand-in",
        containerDefinitions=[{"name": "demo-container", "image": IMAGE, "memory": 512}],
    )
    task = ecs.run_task(
        cluster="demo-cluster",
        taskDefinition="stand-in",
        launchType="FARGATE",
        startedBy=service["deployments"][0]["id"],
    )["tasks"][0]
    ecs.stop_task(cluster="demo-cluster", task=task["taskArn"], reason=STOPPED_REASON)
    task_id = task["taskArn"].rsplit("/", 1)[-1]
    stream = f"ecs/demo-container/{task_id}"
    logs.create_log_stream(logGroupName="/ecs/demo", logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName="/ecs/demo",
        logStreamName=stream,
        logEvents=[
            {"timestamp": now, "message": "Traceback (most recent call last):"},
            {"timestamp": now + 1, "message": APP_ERROR},
        ],
    )
    return task_id


def test_failed_rollout_is_explained_and_exits_non_zero(
    aws: str, boto, project: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("up", "--image", IMAGE).exit_code == 0
    task_id = crashed_task(boto)
    patch_answers(monkeypatch, "FAILED")

    result = run("up", "--image", IMAGE_2)
    assert result.exit_code == 1
    text = said(result.stderr)
    assert f"failed: {CIRCUIT_BREAKER_REASON}" in text  # the rollback is a failure
    assert f"task {task_id} stopped: {STOPPED_REASON}" in text
    assert APP_ERROR in text
    assert "10.0.1.5:8050: unhealthy (Target.ResponseCodeMismatch" in text
    assert "has started 2 tasks" in text
    assert "hint:" in result.stderr and "Traceback (most recent call last):" in result.stderr
    assert "passed" not in result.stderr and result.stdout == ""


def test_stuck_rollout_times_out_with_diagnostics_without_sleeping(
    aws: str, boto, project: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("up", "--image", IMAGE).exit_code == 0
    task_id = crashed_task(boto)
    (group,) = boto("elbv2").describe_target_groups(Names=["demo-tg"])["TargetGroups"]
    (service,) = boto("ecs").describe_services(cluster="demo-cluster", services=["demo-service"])[
        "services"
    ]
    patch_answers(monkeypatch, "IN_PROGRESS")
    ctx, output = make_ctx(project)
    ctx.timeout = 120
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match="timed out after 120 s"):
        wait_for_deployment(ctx, service["deployments"][0]["id"], group["TargetGroupArn"])
    assert time.monotonic() - started < 10
    assert sum(ctx.clock.sleeps) == 120  # type: ignore[attr-defined]
    text = said(output.getvalue())
    assert f"task {task_id} stopped" in text and APP_ERROR in text and "unhealthy" in text


def test_alb_no_wait_does_not_follow_the_deployment(
    aws: str, boto, project: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("cluster", "--image", IMAGE).exit_code == 0
    patch_answers(monkeypatch, "IN_PROGRESS")
    result = run("alb", "--no-wait")
    assert result.exit_code == 0, result.output
    assert "not waiting for deployment" in result.stderr
    assert result.stdout.startswith("http://")

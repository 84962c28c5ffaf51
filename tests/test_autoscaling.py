"""Autoscaling: its configuration rules, and against moto's server the scalable target and the
target-tracking policies `up` registers, keeps, changes and removes, `status` shows, and
`teardown` deletes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dashscale.config import DEFAULT_CPU_TARGET, load_config
from dashscale.errors import ConfigError
from dashscale.steps.autoscaling import Autoscaling, _delete_policy, remove
from tests.support.operating import IMAGE, Captured, context, refuse, said, wide_terminal
from tests.support.recording import recording

__all__ = ["wide_terminal"]  # the fixture, imported for pytest

RESOURCE = "service/demo-cluster/demo-service"
DIMENSION = "ecs:service:DesiredCount"
ON = ("--set", "MIN_COUNT=2", "--set", "MAX_COUNT=6")
BOTH = ("--set", "CPU_TARGET=60", "--set", "REQUESTS_PER_TARGET=500")  # both policies
BASE = {"APP_NAME": "demo", "AWS_REGION": "eu-west-1"}


# --- configuration -------------------------------------------------------------------------------


def test_autoscaling_is_off_by_default_and_cpu_target_defaults(tmp_path: Path) -> None:
    off = load_config(environ=BASE, project_dir=tmp_path)
    assert not off.autoscaling and off.cpu_target is None and off.requests_per_target is None
    on = load_config(environ={**BASE, "MIN_COUNT": "2", "MAX_COUNT": "6"}, project_dir=tmp_path)
    assert on.autoscaling and (on.min_count, on.max_count) == (2, 6)
    assert on.cpu_target == DEFAULT_CPU_TARGET == 60 and on.requests_per_target is None
    requests = load_config(
        environ={**BASE, "MIN_COUNT": "2", "MAX_COUNT": "6", "REQUESTS_PER_TARGET": "500"},
        project_dir=tmp_path,
    )
    assert requests.cpu_target is None and requests.requests_per_target == 500


@pytest.mark.parametrize(
    ("values", "starts", "says"),
    [
        ({"MIN_COUNT": "2"}, "MAX_COUNT is not set", "MIN_COUNT and MAX_COUNT"),
        ({"MAX_COUNT": "6"}, "MIN_COUNT is not set", "MIN_COUNT and MAX_COUNT"),
        ({"MIN_COUNT": "5", "MAX_COUNT": "4"}, "MIN_COUNT=5 is greater than MAX_COUNT=4", ""),
        ({"MIN_COUNT": "4", "MAX_COUNT": "8"}, "DESIRED_COUNT=3 is outside MIN_COUNT=4", ""),
        (
            {"MIN_COUNT": "1", "MAX_COUNT": "2", "DESIRED_COUNT": "3"},
            "DESIRED_COUNT=3 is outside",
            "",
        ),
        ({"CPU_TARGET": "50"}, "CPU_TARGET is set but autoscaling is off", "MIN_COUNT"),
        ({"REQUESTS_PER_TARGET": "9"}, "REQUESTS_PER_TARGET is set but autoscaling is off", ""),
        ({"MIN_COUNT": "0", "MAX_COUNT": "2"}, "MIN_COUNT='0' is invalid", ""),
        ({"MIN_COUNT": "1", "MAX_COUNT": "2", "CPU_TARGET": "101"}, "CPU_TARGET='101'", ""),
        ({"MIN_COUNT": "1", "MAX_COUNT": "4", "REQUESTS_PER_TARGET": "x"}, "REQUESTS_PER", ""),
    ],
)
def test_autoscaling_settings_are_refused_naming_the_variable(
    tmp_path: Path, values: dict[str, str], starts: str, says: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(environ={**BASE, **values}, project_dir=tmp_path)
    assert error.value.message.startswith(starts)
    assert error.value.exit_code == 2
    assert says in f"{error.value.message} {error.value.hint}"


# --- against moto --------------------------------------------------------------------------------


def scalable_targets(boto) -> list[dict[str, Any]]:
    return boto("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")[
        "ScalableTargets"
    ]


def policies(boto) -> dict[str, dict[str, Any]]:
    answer = boto("application-autoscaling").describe_scaling_policies(ServiceNamespace="ecs")
    return {p["PolicyName"]: p for p in answer["ScalingPolicies"]}


def desired_count(boto) -> int:
    (service,) = boto("ecs").describe_services(cluster="demo-cluster", services=["demo-service"])[
        "services"
    ]
    return int(service["desiredCount"])


def test_up_registers_target_and_policies_and_a_rerun_changes_nothing(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    result = run("up", "--image", IMAGE, *ON, *BOTH)
    assert result.exit_code == 0, result.output

    (target,) = scalable_targets(boto)
    assert (target["ResourceId"], target["ScalableDimension"]) == (RESOURCE, DIMENSION)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 6)

    found = policies(boto)
    assert set(found) == {"demo-cpu", "demo-requests"}
    cpu = found["demo-cpu"]
    assert cpu["PolicyType"] == "TargetTrackingScaling" and cpu["ResourceId"] == RESOURCE
    cpu_config = cpu["TargetTrackingScalingPolicyConfiguration"]
    assert cpu_config["TargetValue"] == 60.0
    assert cpu_config["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
    }
    requests_config = found["demo-requests"]["TargetTrackingScalingPolicyConfiguration"]
    assert requests_config["TargetValue"] == 500.0
    (balancer,) = boto("elbv2").describe_load_balancers(Names=["demo-alb"])["LoadBalancers"]
    (group,) = boto("elbv2").describe_target_groups(Names=["demo-tg"])["TargetGroups"]
    lb_part = balancer["LoadBalancerArn"].split(":loadbalancer/")[1]  # app/demo-alb/ID
    tg_part = group["TargetGroupArn"].split(":")[-1]  # targetgroup/demo-tg/ID
    assert lb_part.startswith("app/demo-alb/") and tg_part.startswith("targetgroup/demo-tg/")
    assert requests_config["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "ALBRequestCountPerTarget",
        "ResourceLabel": f"{lb_part}/{tg_part}",
    }
    err = said(result.stderr)
    assert "scalable target demo-service created 2-6 tasks" in err
    assert "scaling policy demo-cpu created CPU 60 %" in err
    assert "13 resource(s) created or updated" in err  # test_up's 10, the target, 2 policies

    with recording(aws) as calls:
        again = run("up", "--image", IMAGE, *ON, *BOTH)
    assert again.exit_code == 0, again.output
    assert calls.operations and calls.changing == []

    document = json.loads(run("status", "--json").stdout)
    assert document["autoscaling"] == {
        "min": 2,
        "max": 6,
        "policies": [
            {"name": "demo-cpu", "type": "TargetTrackingScaling", "target": "CPU 60 %"},
            {
                "name": "demo-requests",
                "type": "TargetTrackingScaling",
                "target": "500 requests/min per task",
            },
        ],
    }
    shown = said(run("status").stderr)
    assert "Autoscaling: 2-6 tasks" in shown and "500 requests/min per task" in shown


def test_up_leaves_the_scalers_count_alone(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE, *ON).exit_code == 0
    # the scaler has added tasks since: the next `up` must not take them away
    boto("ecs").update_service(cluster="demo-cluster", service="demo-service", desiredCount=5)
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE, *ON)
    assert result.exit_code == 0, result.output
    assert calls.changing == []
    assert desired_count(boto) == 5


def test_changed_settings_change_only_what_differs(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE, *ON, *BOTH).exit_code == 0
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE, *ON, "--set", "MAX_COUNT=8", "--set", "CPU_TARGET=50")
    assert result.exit_code == 0, result.output
    # the target first; the two policies are independent of each other and go side by side
    assert calls.changing[0] == "RegisterScalableTarget"
    assert sorted(calls.changing[1:]) == ["DeleteScalingPolicy", "PutScalingPolicy"]
    (target,) = scalable_targets(boto)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 8)
    found = policies(boto)
    assert set(found) == {"demo-cpu"}
    assert found["demo-cpu"]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 50.0
    assert "scaling policy demo-requests deleted" in said(result.stderr)


def test_switching_autoscaling_off_removes_it(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE, *ON).exit_code == 0
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE)
    assert result.exit_code == 0, result.output
    assert calls.changing == ["DeleteScalingPolicy", "DeregisterScalableTarget"]
    assert scalable_targets(boto) == [] and policies(boto) == {}
    assert "scalable target demo-service deleted" in said(result.stderr)
    with recording(aws) as calls:
        assert run("up", "--image", IMAGE).exit_code == 0
    assert calls.changing == []


def test_teardown_removes_the_autoscaling_first(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE, *ON, *BOTH).exit_code == 0
    with recording(aws) as calls:
        result = run("teardown", "--yes")
    assert result.exit_code == 0, result.output
    scaling = [c for c in calls.changing if "Scal" in c]
    assert sorted(scaling) == [
        "DeleteScalingPolicy",
        "DeleteScalingPolicy",
        "DeregisterScalableTarget",
    ]
    first_service_change = calls.changing.index("UpdateService")
    assert all(calls.changing.index(c) < first_service_change for c in scaling)
    assert "scaling policy demo-cpu deleted" in said(result.stderr)
    assert "scaling policy demo-requests deleted" in said(result.stderr)
    assert scalable_targets(boto) == [] and policies(boto) == {}

    with recording(aws) as calls:  # a second teardown: nothing left, nothing done, no error
        assert run("teardown", "--yes").exit_code == 0
    assert calls.changing == []


def test_teardown_leaves_the_autoscaling_of_a_foreign_service_alone(
    aws: str, boto, project: Path, run
) -> None:
    ec2, ecs = boto("ec2"), boto("ecs")
    subnet = ec2.describe_subnets()["Subnets"][0]
    group = ec2.create_security_group(
        GroupName="theirs", Description="theirs", VpcId=subnet["VpcId"]
    )["GroupId"]
    ecs.create_cluster(clusterName="demo-cluster")
    ecs.create_service(  # someone else's service under our name, without our tag
        cluster="demo-cluster",
        serviceName="demo-service",
        desiredCount=1,
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": [subnet["SubnetId"]], "securityGroups": [group]}
        },
    )
    scaling = boto("application-autoscaling")
    scaling.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=RESOURCE,
        ScalableDimension=DIMENSION,
        MinCapacity=1,
        MaxCapacity=3,
    )
    with recording(aws) as calls:
        result = run("teardown", "--yes")
    assert [c for c in calls.changing if "Scal" in c] == []
    assert len(scalable_targets(boto)) == 1
    assert "which is not ours" in said(result.stderr)


def test_a_refused_policy_deletion_is_an_error_not_already_gone(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS answers ObjectNotFoundException for a policy that is not there; ValidationException
    means a bad request and must stop the run, leaving the scalable target in place."""
    assert run("up", "--image", IMAGE, *ON).exit_code == 0
    refuse(
        monkeypatch,
        "before-call.application-auto-scaling.DeleteScalingPolicy",
        "ValidationException",
    )
    result = run("up", "--image", IMAGE)
    assert result.exit_code == 1, result.output
    assert "ValidationException" in said(result.stderr)
    assert len(scalable_targets(boto)) == 1


def test_deleting_what_is_already_gone_is_not_an_error(aws: str, project: Path) -> None:
    ctx = context(Captured())
    assert _delete_policy(ctx, "demo-cpu") is False
    remove(ctx, Autoscaling(target={}))  # deregistering a target that is not there

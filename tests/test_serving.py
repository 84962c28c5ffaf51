"""`up` returns when the new version serves: its tasks healthy in the target group and the old
ones draining, without waiting out the deregistration delay (unless --wait-drained); a
circuit-breaker rollback before that point is still a failure.

moto completes a rollout at once, registers no task in the target group and never drains a
target. The world below plays ECS's sequence on a fake clock, with moto's real tasks (run with
the deployment's id as `startedBy`, so they get addresses) and real target registrations:
new tasks start at 10 s, pass their health checks at 20 s, when ECS deregisters the old targets
(draining for the 30 s delay) and the rollout completes at 50 s. Only what moto cannot say is
edited in the answers: the rollout state, and the draining targets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dashscale import context as context_module
from tests.support.operating import FakeClock, on_answer, register_tasks, said

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-repository:v1"
IMAGE_2 = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-repository:v2"
STARTED, HEALTHY, DRAINED = 10.0, 20.0, 50.0  # seconds after the redeploy began
BREAKER = "ECS deployment circuit breaker: tasks failed to start."


class World:
    """ECS and the load balancer during one redeploy, moved on by the fake clock."""

    def __init__(self, boto: Any, old: list[str], rollback: bool = False) -> None:
        self.boto, self.old, self.rollback = boto, old, rollback
        self.clock = FakeClock(on_sleep=lambda _: self.advance())
        self.new: list[str] = []
        self.draining: list[str] = []
        self.group = boto("elbv2").describe_target_groups(Names=["demo-tg"])["TargetGroups"][0]

    def deployment_id(self) -> str:
        (service,) = self.boto("ecs").describe_services(
            cluster="demo-cluster", services=["demo-service"]
        )["services"]
        return str(service["deployments"][0]["id"])

    def advance(self) -> None:
        now = self.clock.time
        if now >= STARTED and not self.new and not self.rollback:
            self.new = self.start_tasks()
        if now >= HEALTHY and self.old and not self.rollback:
            self.boto("elbv2").deregister_targets(
                TargetGroupArn=self.group["TargetGroupArn"],
                Targets=[{"Id": ip, "Port": self.group["Port"]} for ip in self.old],
            )
            self.draining, self.old = self.old, []

    def start_tasks(self) -> list[str]:
        """Three tasks of the deployment, registered in the target group (moto's ECS does not)."""
        ecs, ec2 = self.boto("ecs"), self.boto("ec2")
        ecs.register_task_definition(  # moto runs a task only with container-level memory
            family="stand-in",
            networkMode="awsvpc",
            containerDefinitions=[{"name": "demo-container", "image": IMAGE_2, "memory": 512}],
        )
        subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
        tasks = ecs.run_task(
            cluster="demo-cluster",
            taskDefinition="stand-in",
            launchType="FARGATE",
            count=3,
            startedBy=self.deployment_id(),
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": subnets, "securityGroups": [self.task_group()]}
            },
        )["tasks"]
        ips = [
            d["value"]
            for t in tasks
            for a in t["attachments"]
            for d in a["details"]
            if d["name"] == "privateIPv4Address"
        ]
        self.boto("elbv2").register_targets(
            TargetGroupArn=self.group["TargetGroupArn"],
            Targets=[{"Id": ip, "Port": self.group["Port"]} for ip in ips],
        )
        return ips

    def task_group(self) -> str:
        groups = self.boto("ec2").describe_security_groups(
            Filters=[{"Name": "group-name", "Values": ["demo-from-alb-sg"]}]
        )["SecurityGroups"]
        return str(groups[0]["GroupId"])

    def services(self, parsed: dict[str, Any]) -> None:
        """The rollout as ECS reports it until it completes (moto completes it at once)."""
        now = self.clock.time
        if now >= DRAINED and not self.rollback:
            return
        for service in parsed.get("services", []):
            primary = service["deployments"][0]
            primary.update(  # (moto keeps the first deployment's task definition)
                taskDefinition=service["taskDefinition"],
                rolloutState="IN_PROGRESS",
                runningCount=3 if self.new else 0,
                pendingCount=0 if self.new else 3,
                desiredCount=3,
            )
            if self.rollback and now >= STARTED:
                primary.update(status="ACTIVE", rolloutState="FAILED", rolloutStateReason=BREAKER)
                service["deployments"] = [
                    {"id": "ecs-svc/rollback", "status": "PRIMARY", "rolloutState": "IN_PROGRESS"},
                    primary,
                ]
            else:
                old = {"id": "ecs-svc/old", "status": "ACTIVE", "runningCount": 3}
                service["deployments"] = [primary, old]

    def health(self, parsed: dict[str, Any]) -> None:
        """New targets `initial` until their checks pass; deregistered ones `draining` for the
        delay (moto forgets them at once)."""
        rows = parsed["TargetHealthDescriptions"]
        now = self.clock.time
        for row in rows:
            if row["Target"]["Id"] in self.new and now < HEALTHY:
                row["TargetHealth"] = {"State": "initial", "Reason": "Elb.RegistrationInProgress"}
        if now < DRAINED:
            rows += [
                {
                    "Target": {"Id": ip, "Port": self.group["Port"]},
                    "TargetHealth": {
                        "State": "draining",
                        "Reason": "Target.DeregistrationInProgress",
                    },
                }
                for ip in self.draining
            ]

    def states(self) -> dict[str, str]:
        """What the load balancer reports now, as dashscale sees it."""
        answer = self.boto("elbv2").describe_target_health(
            TargetGroupArn=self.group["TargetGroupArn"]
        )
        self.health(answer)
        return {
            r["Target"]["Id"]: r["TargetHealth"]["State"]
            for r in answer["TargetHealthDescriptions"]
        }


@pytest.fixture
def world(aws: str, boto, project: Path, run, monkeypatch: pytest.MonkeyPatch):
    """A first version deployed with three healthy targets; then a world for the redeploy,
    whose clock every command's context uses."""

    def make(rollback: bool = False) -> World:
        assert run("up", "--image", IMAGE).exit_code == 0
        made = World(boto, register_tasks(boto), rollback)
        original = context_module.Context

        def with_clock(**kwargs: Any) -> Any:
            return original(clock=made.clock, **kwargs)

        monkeypatch.setattr("dashscale.cli.Context", with_clock)
        on_answer(monkeypatch, "after-call.ecs.DescribeServices", made.services)
        on_answer(
            monkeypatch, "after-call.elastic-load-balancing-v2.DescribeTargetHealth", made.health
        )
        return made

    return make


def test_up_returns_once_the_new_tasks_serve_without_waiting_for_the_old_to_drain(
    world, run, no_docker: None
) -> None:
    redeploy = world()
    result = run("up", "--image", IMAGE_2)
    assert result.exit_code == 0, result.output
    now = redeploy.clock.time
    assert HEALTHY <= now < DRAINED, now  # after the checks passed, not after the delay
    states = redeploy.states()  # at that moment: the new serve, the old get no new request
    assert len(redeploy.new) == 3 and all(states[ip] == "healthy" for ip in redeploy.new)
    assert len(redeploy.draining) == 3
    assert all(states[ip] == "draining" for ip in redeploy.draining)
    text = said(result.stderr)
    assert "serving version demo-taskdef:2" in text
    assert "3 new task(s) healthy in demo-tg; 3 old one(s) draining" in text
    assert result.stdout.startswith("http://")


def test_wait_drained_waits_until_the_old_tasks_are_gone(world, run, no_docker: None) -> None:
    redeploy = world()
    result = run("up", "--image", IMAGE_2, "--wait-drained")
    assert result.exit_code == 0, result.output
    assert redeploy.clock.time >= DRAINED
    states = redeploy.states()
    assert set(states) == set(redeploy.new) and set(states.values()) == {"healthy"}
    text = said(result.stderr)
    assert "serving version demo-taskdef:2" in text  # said when it happened, then waited on
    assert "the old tasks drained and stopped" in text


def test_a_rollback_before_serving_is_a_failure(world, run, no_docker: None) -> None:
    redeploy = world(rollback=True)
    result = run("up", "--image", IMAGE_2)
    assert result.exit_code == 1
    text = said(result.stderr)
    assert f"failed: {BREAKER}" in text
    assert "serving version" not in text and result.stdout == ""
    assert redeploy.clock.time < 60  # reported at the first poll after the rollback

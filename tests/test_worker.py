"""WORKERS=N against moto's server: the worker service APP-worker and its task definition as
`up` makes them (no load balancer, the worker command, its own size, REDIS_URL, the `worker`
log prefix), a second `up`, a new image, the dry run, `status`, `scale --workers`, `teardown`;
and the configuration rules."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from dashscale.config import load_config
from dashscale.errors import ConfigError
from tests.support.operating import IMAGE, hook_every_client, said, wide_terminal
from tests.support.recording import recording

__all__ = ["wide_terminal"]  # the fixture, imported for pytest

WORKERS = ("--set", "CACHE=redis", "--set", "WORKERS=2")
BASE = {"APP_NAME": "demo", "AWS_REGION": "eu-west-1"}


def service(boto, name: str) -> dict[str, Any]:
    (found,) = boto("ecs").describe_services(
        cluster="demo-cluster", services=[name], include=["TAGS"]
    )["services"]
    return found


def definition(boto, family: str) -> dict[str, Any]:
    return boto("ecs").describe_task_definition(taskDefinition=family)["taskDefinition"]


def environment(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def test_up_runs_the_workers_beside_the_app(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: dict[str, dict[str, Any]] = {}  # moto keeps no deployment settings: the requests
    hook_every_client(
        monkeypatch,
        "before-parameter-build.ecs.CreateService",
        lambda params, **_: created.setdefault(params["serviceName"], dict(params)),
    )
    (project / "app.env").write_text("APP_TITLE=Sales\n")
    result = run(
        "up", "--image", IMAGE, *WORKERS, "--set", "WORKER_CPU=1024", "--set", "WORKER_MEMORY=2048"
    )
    assert result.exit_code == 0, result.output

    workers, app = service(boto, "demo-worker"), service(boto, "demo-service")
    assert workers["loadBalancers"] == [] and app["loadBalancers"] != []
    assert workers["desiredCount"] == 2
    assert workers["networkConfiguration"] == app["networkConfiguration"]  # reaches the cache
    breaker = created["demo-worker"]["deploymentConfiguration"]["deploymentCircuitBreaker"]
    assert breaker == {"enable": True, "rollback": True}
    tags = {t["key"]: t["value"] for t in workers.get("tags", [])}
    assert tags.get("dashscale:app") == "demo"

    worker_def = definition(boto, "demo-worker-taskdef")
    app_def = definition(boto, "demo-taskdef")
    assert workers["taskDefinition"] == worker_def["taskDefinitionArn"]
    assert (worker_def["cpu"], worker_def["memory"]) == ("1024", "2048")
    assert (app_def["cpu"], app_def["memory"]) == ("1024", "3072")
    (worker,), (web,) = worker_def["containerDefinitions"], app_def["containerDefinitions"]
    assert worker["command"] == ["celery", "-A", "app:celery_app", "worker", "--loglevel=INFO"]
    assert worker["image"] == web["image"] == IMAGE
    assert not worker.get("portMappings")
    assert worker_def["taskRoleArn"] if app_def.get("taskRoleArn") else True
    assert worker_def["executionRoleArn"] == app_def["executionRoleArn"]
    # the same variables, REDIS_URL among them, on both
    assert environment(worker) == environment(web)
    assert environment(web)["REDIS_URL"].startswith("rediss://master.demo-cache.")
    assert environment(web)["APP_TITLE"] == "Sales"
    logs = worker["logConfiguration"]["options"]
    assert logs["awslogs-group"] == "/ecs/demo" and logs["awslogs-stream-prefix"] == "worker"
    assert "ECS service demo-worker created 2 x demo-worker-taskdef:1" in said(result.stderr)

    with recording(aws) as calls:
        again = run(
            "up",
            "--image",
            IMAGE,
            *WORKERS,
            "--set",
            "WORKER_CPU=1024",
            "--set",
            "WORKER_MEMORY=2048",
        )
    assert again.exit_code == 0, again.output
    assert calls.operations and calls.changing == []

    rows = {
        (r["kind"], r["name"]): r
        for r in json.loads(run("status", "--json", *WORKERS).stdout)["resources"]
    }
    assert rows[("ECS service", "demo-worker")]["detail"].startswith("workers: ")
    assert rows[("ECS service", "demo-worker")]["detail"].endswith("2 desired")
    document = json.loads(run("status", "--json", *WORKERS).stdout)
    assert document["workers"]["desired"] == 2
    assert document["workers"]["task_definition"] == "demo-worker-taskdef:1"
    shown = said(run("status", *WORKERS).stderr)
    assert "workers (demo-worker): " in shown and "2 desired, demo-worker-taskdef:1" in shown


def test_a_new_image_updates_both_services(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE, *WORKERS).exit_code == 0
    newer = IMAGE.replace(":v1", ":v2")
    with recording(aws) as calls:
        result = run("up", "--image", newer, *WORKERS)
    assert result.exit_code == 0, result.output
    assert sorted(
        c for c in calls.changing if c in ("RegisterTaskDefinition", "UpdateService")
    ) == [
        "RegisterTaskDefinition",
        "RegisterTaskDefinition",
        "UpdateService",
        "UpdateService",
    ]
    (worker,) = definition(boto, "demo-worker-taskdef")["containerDefinitions"]
    assert worker["image"] == newer
    assert service(boto, "demo-worker")["taskDefinition"].endswith("demo-worker-taskdef:2")


def test_dry_run_scale_and_teardown_of_the_workers(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    plan = said(run("up", "--image", IMAGE, *WORKERS, "--dry-run").stderr)
    assert "ECS service demo-worker would create 2 x demo-worker-taskdef:(new)" in plan
    assert "task definition demo-worker-taskdef:(new) would create" in plan
    assert run("up", "--image", IMAGE, *WORKERS).exit_code == 0

    scaled = run("scale", "--workers", "4", *WORKERS)
    assert scaled.exit_code == 0, scaled.output
    assert service(boto, "demo-worker")["desiredCount"] == 4
    assert service(boto, "demo-service")["desiredCount"] == 3

    with recording(aws) as calls:
        result = run("teardown", "--yes", *WORKERS)
    assert result.exit_code == 0, result.output
    assert "ECS service demo-worker deleted" in said(result.stderr)
    assert calls.changing.index("DeleteService") < calls.changing.index("DeleteCluster")
    for family in ("demo-worker-taskdef", "demo-taskdef"):
        for status in ("ACTIVE", "INACTIVE"):
            listed = boto("ecs").list_task_definitions(familyPrefix=family, status=status)
            assert listed["taskDefinitionArns"] == [], (family, status)


def test_workers_off_removes_the_worker_service(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE, *WORKERS).exit_code == 0
    result = run("up", "--image", IMAGE, "--set", "CACHE=redis")
    assert result.exit_code == 0, result.output
    assert "ECS service demo-worker deleted" in said(result.stderr)
    assert service(boto, "demo-worker")["status"] == "INACTIVE"


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"WORKERS": "2"}, "WORKERS=2 needs CACHE=redis"),
        ({"CACHE": "redis", "WORKERS": "1", "WORKER_CPU": "300"}, "WORKER_CPU=300 is invalid"),
        (
            {"CACHE": "redis", "WORKERS": "1", "WORKER_CPU": "256", "WORKER_MEMORY": "4096"},
            "WORKER_MEMORY=4096 is invalid with WORKER_CPU=256",
        ),
        ({"WORKER_COMMAND": "celery worker"}, "WORKER_COMMAND is set but WORKERS is 0"),
        ({"CACHE": "memcached"}, "CACHE='memcached' is invalid"),
    ],
)
def test_worker_settings_are_refused_naming_the_variable(
    tmp_path: Path, values: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(environ={**BASE, **values}, project_dir=tmp_path)
    assert says in error.value.message and error.value.exit_code == 2


def test_worker_command_overrides_the_default(tmp_path: Path) -> None:
    from dashscale.steps.worker import worker_command

    class Ctx:
        config = load_config(
            environ={
                **BASE,
                "CACHE": "redis",
                "WORKERS": "1",
                "WORKER_COMMAND": "rq worker 'high prio'",
            },
            project_dir=tmp_path,
        )

    assert worker_command(Ctx()) == ["rq", "worker", "high prio"]  # type: ignore[arg-type]


def test_logs_worker_prints_the_workers_lines_only(aws: str, boto, project: Path, run) -> None:
    logs = boto("logs")
    logs.create_log_group(logGroupName="/ecs/demo", tags={"dashscale:app": "demo"})
    now = int(time.time() * 1000)
    streams = {
        "ecs/demo-container/0a1b2c3d4e5f6071": (now - 60_000, "GET / 200"),
        "worker/demo-worker/ffee001122334455": (now - 30_000, "Task slow_job succeeded in 5.0s"),
    }
    for name, (stamp, message) in streams.items():
        logs.create_log_stream(logGroupName="/ecs/demo", logStreamName=name)
        logs.put_log_events(
            logGroupName="/ecs/demo",
            logStreamName=name,
            logEvents=[{"timestamp": stamp, "message": message}],
        )
    workers = run("logs", "--worker", "--since", "5m")
    assert workers.exit_code == 0, workers.output
    assert len(workers.stdout.splitlines()) == 1, workers.stdout
    (line,) = workers.stdout.splitlines()
    assert line.endswith(" ffee0011 Task slow_job succeeded in 5.0s")
    (app_line,) = run("logs", "--since", "5m").stdout.splitlines()
    assert app_line.endswith(" 0a1b2c3d GET / 200")

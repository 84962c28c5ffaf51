"""`dashscale status` against moto's server: a healthy app, a half-deployed one, nothing at all,
an unhealthy target and a foreign resource; always read-only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.operating import IMAGE, on_answer, register_tasks, said, wide_terminal
from tests.support.recording import recording

__all__ = ["wide_terminal"]  # the fixture, imported for pytest

EVERY_RESOURCE = {
    ("ECR repository", "demo-repository"),
    ("security group", "demo-alb-sg"),
    ("security group", "demo-from-alb-sg"),
    ("ECS cluster", "demo-cluster"),
    ("IAM role", "demo-us-east-1-task-execution-role"),
    ("log group", "/ecs/demo"),
    ("task definition", "demo-taskdef"),
    ("load balancer", "demo-alb"),
    ("target group", "demo-tg"),
    ("listener", "demo-alb:80"),
    ("ECS service", "demo-service"),
}


def states(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["kind"], r["name"]): r["state"] for r in document["resources"]}


def test_status_of_a_healthy_app_reads_only(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE).exit_code == 0
    ips = register_tasks(boto)
    (balancer,) = boto("elbv2").describe_load_balancers(Names=["demo-alb"])["LoadBalancers"]
    address = f"http://{balancer['DNSName']}"

    with recording(aws) as calls:
        result = run("status")
    assert result.exit_code == 0, result.output
    assert calls.operations, "the recorder saw nothing: the next assertion would prove nothing"
    assert calls.changing == []
    assert result.stdout == f"{address}\n"  # the address, and only it, on stdout
    err = said(result.stderr)
    for kind, name in EVERY_RESOURCE - {("ECR repository", "demo-repository")}:
        assert f"{kind} │ {name}" in err and f"{name} │ found" in err
    assert "demo-repository │ missing" in err  # --image: no repository of ours
    assert "3 running, 0 pending, 3 desired" in err
    assert "PRIMARY (current) │ COMPLETED" in err
    assert all(f"{ip}:" in err for ip in ips)
    assert "serving: 3 healthy target(s)" in err
    assert "scalable target │ demo-service │ off │ MIN_COUNT and MAX_COUNT unset" in err

    with recording(aws) as calls:
        as_json = run("status", "--json")
    assert as_json.exit_code == 0
    assert calls.changing == []
    document = json.loads(as_json.stdout)  # one JSON document, nothing else on stdout
    assert document["serving"] is True and document["reasons"] == []
    assert document["address"] == address
    assert (document["app"], document["region"], document["account"]) == (
        "demo",
        "us-east-1",
        "123456789012",
    )
    found = states(document)
    assert {key for key, state in found.items() if state == "found"} == EVERY_RESOURCE - {
        ("ECR repository", "demo-repository")
    }
    service = document["service"]
    assert (service["running"], service["pending"], service["desired"]) == (3, 0, 3)
    assert service["task_definition"] == "demo-taskdef:1"
    (deployment,) = service["deployments"]
    assert deployment["status"] == "PRIMARY" and deployment["current"] is True
    assert deployment["rollout_state"] == "COMPLETED"
    assert sorted(t["target"].split(":")[0] for t in document["targets"]) == sorted(ips)
    assert {t["state"] for t in document["targets"]} == {"healthy"}
    assert document["autoscaling"] is None and document["certificate"] is None


def test_status_of_a_half_deployed_app(aws: str, boto, project: Path, run, no_docker) -> None:
    """`cluster` only: the ECS side exists, the load balancer and the service do not."""
    assert run("cluster", "--image", IMAGE).exit_code == 0
    with recording(aws) as calls:
        result = run("status", "--json")
    assert result.exit_code == 1
    assert calls.changing == []
    document = json.loads(result.stdout)
    found = states(document)
    assert found[("ECS cluster", "demo-cluster")] == "found"
    assert found[("task definition", "demo-taskdef")] == "found"
    assert found[("load balancer", "demo-alb")] == "missing"
    assert found[("ECS service", "demo-service")] == "missing"
    assert ("listener", "demo-alb:80") not in found  # no load balancer to have one
    assert document["serving"] is False and document["address"] is None
    assert document["reasons"] == ["no load balancer", "no ECS service"]
    assert "demo is not serving: no load balancer, no ECS service" in said(result.stderr)
    assert "dashscale logs" in result.stderr  # something is deployed: not "run up"

    table = run("status")
    assert table.exit_code == 1 and table.stdout == ""
    assert "demo-alb │ missing" in said(table.stderr)


def test_status_while_a_deployment_rolls_out(aws: str, boto, project: Path, run, no_docker):
    """moto runs 3 tasks (MOTO_ECS_SERVICE_RUNNING): a service of 5 is still rolling out."""
    assert run("up", "--image", IMAGE, "--set", "DESIRED_COUNT=5", "--no-wait").exit_code == 0
    result = run("status", "--json", "--set", "DESIRED_COUNT=5")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    service = document["service"]
    assert (service["running"], service["pending"], service["desired"]) == (3, 2, 5)
    (deployment,) = service["deployments"]
    assert deployment["rollout_state"] == "IN_PROGRESS"
    assert (deployment["running"], deployment["pending"], deployment["desired"]) == (3, 2, 5)
    assert document["reasons"] == ["no healthy target"]  # no task registered yet


def test_status_of_nothing(aws: str, project: Path, run) -> None:
    with recording(aws) as calls:
        result = run("status")
    assert result.exit_code == 1
    assert calls.changing == []
    assert result.stdout == ""
    err = said(result.stderr)
    assert "demo-cluster │ missing" in err and "demo-service │ missing" in err
    assert "demo is not serving: no load balancer, no ECS service" in err
    assert "hint: nothing is deployed: run `dashscale up`" in err
    assert "Traceback" not in result.output

    document = json.loads(run("status", "--json").stdout)
    assert set(states(document).values()) == {"missing"}
    assert document["service"] is None and document["targets"] == []


def test_unhealthy_target_means_not_serving(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto reports every registered target healthy: one answer is changed to what AWS says of
    a task that fails its health check."""
    assert run("up", "--image", IMAGE).exit_code == 0
    ips = register_tasks(boto)

    def one_unhealthy(parsed: dict[str, Any]) -> None:
        for item in parsed.get("TargetHealthDescriptions", []):
            if item["Target"]["Id"] == ips[0]:
                item["TargetHealth"] = {
                    "State": "unhealthy",
                    "Reason": "Target.ResponseCodeMismatch",
                    "Description": "Health checks failed with these codes: [500]",
                }

    on_answer(
        monkeypatch, "after-call.elastic-load-balancing-v2.DescribeTargetHealth", one_unhealthy
    )
    result = run("status")
    assert result.exit_code == 1
    err = said(result.stderr)
    assert "unhealthy │ Target.ResponseCodeMismatch Health checks failed" in err
    assert "demo is not serving: 1 unhealthy target(s)" in err
    assert result.stdout.startswith("http://")  # the address is still printed


def test_foreign_resource_is_shown_not_crashed_on(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    boto("ecs").create_cluster(clusterName="demo-cluster")  # someone else's, no tag
    with recording(aws) as calls:
        result = run("status", "--json")
    assert result.exit_code == 1
    assert calls.changing == []
    assert states(json.loads(result.stdout))[("ECS cluster", "demo-cluster")] == "not this app's"
    table = run("status")
    assert "demo-cluster │ not this app's │ same name, without our tag" in said(table.stderr)
    assert "Traceback" not in table.output


def test_status_with_domain_shows_certificate_and_https_address(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE, "--set", "DOMAIN=example.com").exit_code == 0
    register_tasks(boto)
    with recording(aws) as calls:
        result = run("status", "--json", "--set", "DOMAIN=example.com")
    assert result.exit_code == 0, result.output
    assert calls.changing == []
    document = json.loads(result.stdout)
    assert document["address"] == "https://example.com"
    assert document["certificate"]["status"] == "ISSUED"
    found = states(document)
    assert found[("listener", "demo-alb:443")] == "found"
    assert found[("hosted zone", "example.com")] == "found"
    assert found[("certificate", "example.com")] == "found"


def test_domain_certificate_missing_though_an_earlier_domain_has_one(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    """The survey finds every certificate of the app, whatever its domain: one of an earlier
    DOMAIN is shown, and DOMAIN's own is still reported missing."""
    assert run("up", "--image", IMAGE).exit_code == 0
    boto("acm").request_certificate(
        DomainName="old.example.org",
        ValidationMethod="DNS",
        Tags=[{"Key": "dashscale:app", "Value": "demo"}],
    )
    document = json.loads(run("status", "--json", "--set", "DOMAIN=example.com").stdout)
    found = states(document)
    assert found[("certificate", "old.example.org")] == "found"
    assert found[("certificate", "example.com")] == "missing"
    assert found[("hosted zone", "example.com")] == "missing"
    assert document["certificate"] is None

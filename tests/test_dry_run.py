"""`dashscale up --dry-run` against moto's server: it reads, prints the plan, changes nothing.

Every test records the requests moto receives: a dry run must make no changing call, and the
plan must name what a real run then changes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashscale.aws import Aws, ChangeRefused
from tests.support.recording import recording
from tests.test_up import IMAGE, IMAGE_2, app_port

STATES = ("would create", "would update", "would build and push", "unchanged", "kept")
LINE = re.compile(
    r"^  (?P<kind>\S.{17}) (?P<name>\S.*?)\s+(?P<state>"
    + "|".join(STATES)
    + r")(?:  (?P<note>.*))?$"
)


def plan_of(stderr: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(resource, name) -> (planned action, note), from the resource lines of a dry run."""
    rows = {}
    for line in stderr.splitlines():
        match = LINE.match(line)
        if match:
            key = (match["kind"].strip(), match["name"].strip())
            rows[key] = (match["state"], (match["note"] or "").strip())
    return rows


def states(plan: dict[tuple[str, str], tuple[str, str]]) -> dict[tuple[str, str], str]:
    return {key: state for key, (state, _) in plan.items()}


def nothing_planned_to_change(plan: dict) -> bool:
    return all(state in ("unchanged", "kept") for state in states(plan).values())


def test_dry_run_on_an_empty_account_would_create_everything_and_changes_nothing(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    with recording(aws) as calls:
        result = run("up", "--dry-run")
    assert result.exit_code == 0, result.output
    assert calls.operations, "the recorder saw nothing: the assertion below would prove nothing"
    assert calls.changing == []

    plan = states(plan_of(result.stderr))
    creates = {key for key, state in plan.items() if state == "would create"}
    assert creates == {
        ("ECR repository", "demo-repository"),
        ("security group", "demo-alb-sg"),
        ("security group", "demo-from-alb-sg"),
        ("ECS cluster", "demo-cluster"),
        ("IAM role", "demo-us-east-1-task-execution-role"),
        ("log group", "/ecs/demo"),
        ("target group", "demo-tg"),
        ("load balancer", "demo-alb"),
        ("listener", "demo-alb:80"),
        ("task definition", "demo-taskdef:(new)"),
        ("ECS service", "demo-service"),
    }
    # the image of the current content is neither built nor pushed (no Docker at all)
    ((kind, uri),) = [key for key, state in plan.items() if state == "would build and push"]
    assert kind == "image" and "/demo-repository:" in uri
    tag = uri.rsplit(":", 1)[1]
    assert f"would build and push demo:{tag}" in result.stderr
    assert "plan (11 to create, 1 to build and push)" in " ".join(result.stderr.split())
    assert "nothing was changed" in result.stderr
    # and nothing exists
    assert boto("ecs").describe_clusters(clusters=["demo-cluster"])["clusters"] == [] or all(
        c["status"] != "ACTIVE"
        for c in boto("ecs").describe_clusters(clusters=["demo-cluster"])["clusters"]
    )
    assert boto("ecr").describe_repositories()["repositories"] == []


def test_dry_run_after_up_says_everything_is_unchanged(
    aws: str, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE).exit_code == 0
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE, "--dry-run")
    assert result.exit_code == 0, result.output
    assert calls.operations and calls.changing == []
    plan = plan_of(result.stderr)
    assert len(plan) == 11, plan  # the image and the ten resources
    assert nothing_planned_to_change(plan), plan
    assert "nothing to do" in result.stderr or "11 unchanged" in " ".join(result.stderr.split())


def test_dry_run_lists_exactly_the_differences_and_a_real_run_changes_those(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    old_port = app_port(project)
    new_port = old_port + 1
    assert run("up", "--image", IMAGE).exit_code == 0
    changed = (
        "--image",
        IMAGE_2,
        "--set",
        "DESIRED_COUNT=2",
        "--set",
        f"APP_PORT={new_port}",
        "--set",
        "LOG_RETENTION_DAYS=7",
    )
    with recording(aws) as calls:
        result = run("up", *changed, "--dry-run")
    assert result.exit_code == 0, result.output
    assert calls.operations and calls.changing == []

    plan = plan_of(result.stderr)
    updates = {key: note for key, (state, note) in plan.items() if state == "would update"}
    assert set(updates) == {
        ("security group", "demo-from-alb-sg"),
        ("log group", "/ecs/demo"),
        ("task definition", "demo-taskdef:1"),
        ("ECS service", "demo-service"),
    }, plan
    assert updates[("security group", "demo-from-alb-sg")] == (
        f"inbound rules TCP {old_port} from demo-alb-sg → TCP {new_port} from demo-alb-sg"
    )
    assert updates[("log group", "/ecs/demo")] == "retention days 30 → 7"
    taskdef = updates[("task definition", "demo-taskdef:1")].split("; ")
    assert sorted(taskdef) == sorted(
        [f"image {IMAGE} → {IMAGE_2}", f"container port {old_port}/tcp → {new_port}/tcp"]
    )
    service = updates[("ECS service", "demo-service")].split("; ")
    assert sorted(service) == sorted(
        [
            "task definition demo-taskdef:1 → demo-taskdef:(new)",
            "desired count 3 → 2",
            f"target group demo-container port {old_port} → demo-container port {new_port}",
        ]
    )
    others = {key for key, (state, _) in plan.items() if state not in ("would update",)}
    assert all(plan[key][0] == "unchanged" for key in others), plan
    # nothing changed in AWS
    (group,) = boto("logs").describe_log_groups(logGroupNamePrefix="/ecs/demo")["logGroups"]
    assert group["retentionInDays"] == 30

    # the plan answered the question: a real run changes exactly what it listed
    with recording(aws) as calls:
        real = run("up", *changed)
    assert real.exit_code == 0, real.output
    assert sorted(calls.changing) == [
        "AuthorizeSecurityGroupIngress",
        "PutRetentionPolicy",
        "RegisterTaskDefinition",
        "RevokeSecurityGroupIngress",
        "UpdateService",
    ]
    with recording(aws) as calls:
        after = run("up", *changed, "--dry-run")
    assert after.exit_code == 0 and calls.changing == []
    assert nothing_planned_to_change(plan_of(after.stderr)), after.stderr


def test_dry_run_with_domain_plans_the_tls_pieces(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE, "--set", "DOMAIN=example.com", "--dry-run")
    assert result.exit_code == 0, result.output
    assert calls.operations and calls.changing == []
    plan = states(plan_of(result.stderr))
    for key in (
        ("hosted zone", "example.com"),
        ("certificate", "example.com"),
        ("validation record", "example.com, www.example.com"),
        ("listener", "HTTPS :443"),
        ("listener", "HTTP :80"),
        ("alias record", "example.com"),
        ("alias record", "www.example.com"),
    ):
        assert plan.get(key) == "would create", (key, plan)
    assert boto("route53").list_hosted_zones()["HostedZones"] == []
    assert boto("acm").list_certificates()["CertificateSummaryList"] == []


def test_dry_run_after_up_with_domain_is_unchanged_and_sees_a_lost_redirect(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    domain = ("--set", "DOMAIN=example.com")
    assert run("up", "--image", IMAGE, *domain).exit_code == 0
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE, *domain, "--dry-run")
    assert result.exit_code == 0, result.output
    assert calls.operations and calls.changing == []
    plan = plan_of(result.stderr)
    assert ("certificate", "example.com") in plan and ("listener", "HTTPS :443") in plan
    assert nothing_planned_to_change(plan), plan

    # someone points port 80 back at the target group: the plan says it would redirect again
    elb = boto("elbv2")
    (lb,) = elb.describe_load_balancers(Names=["demo-alb"])["LoadBalancers"]
    (tg,) = elb.describe_target_groups(Names=["demo-tg"])["TargetGroups"]
    (http,) = [
        item
        for item in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        if item["Port"] == 80
    ]
    elb.modify_listener(
        ListenerArn=http["ListenerArn"],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE, *domain, "--dry-run")
    assert result.exit_code == 0 and calls.changing == []
    assert plan_of(result.stderr)[("listener", "HTTP :80")] == (
        "would update",
        "action forward → 301 to HTTPS",
    )


def test_the_safety_net_refuses_a_changing_call_before_it_is_sent(aws: str, boto) -> None:
    clients = Aws("us-east-1", read_only=True)
    ecs = clients.client("ecs")
    with recording(aws) as calls:
        assert ecs.list_clusters()["clusterArns"] == []  # reads go through
        with pytest.raises(ChangeRefused, match="ecs CreateCluster"):
            ecs.create_cluster(clusterName="demo-cluster")
        with pytest.raises(ChangeRefused, match="route53 CreateHostedZone"):
            clients.client("route53").create_hosted_zone(Name="example.com", CallerReference="x")
    assert calls.operations == ["ListClusters"]
    assert boto("ecs").list_clusters()["clusterArns"] == []
    # a client of a normal run is not guarded
    Aws("us-east-1").client("ecs").create_cluster(clusterName="demo-cluster")
    assert len(boto("ecs").list_clusters()["clusterArns"]) == 1


def test_cluster_and_alb_dry_runs_plan_their_own_sections(
    aws: str, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE).exit_code == 0
    with recording(aws) as calls:
        cluster = run("cluster", "--image", IMAGE_2, "--dry-run")
        alb = run("alb", "--dry-run", "--set", "DESIRED_COUNT=1")
    assert cluster.exit_code == 0, cluster.output
    assert alb.exit_code == 0, alb.output
    assert calls.operations and calls.changing == []
    cluster_plan = plan_of(cluster.stderr)
    assert cluster_plan[("task definition", "demo-taskdef:1")] == (
        "would update",
        f"image {IMAGE} → {IMAGE_2}",
    )
    assert [k for k, (s, _) in cluster_plan.items() if s != "unchanged"] == [
        ("task definition", "demo-taskdef:1")
    ]
    alb_plan = plan_of(alb.stderr)
    assert alb_plan[("ECS service", "demo-service")] == ("would update", "desired count 3 → 1")
    assert [k for k, (s, _) in alb_plan.items() if s != "unchanged"] == [
        ("ECS service", "demo-service")
    ]
    assert cluster.stdout == "" and alb.stdout == ""  # no ARN or address: nothing was made

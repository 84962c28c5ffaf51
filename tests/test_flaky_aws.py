"""`up` with DOMAIN through a flaky AWS: 503s, throttling, dropped connections, lost responses.

The tests assert on AWS's final state: exactly one of each resource, nothing half-made.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.flaky_aws import Faults

IMAGE = "registry.example/demo-repository:v1"


def active(items: list[dict]) -> list[dict]:
    """Deleted clusters and services stay visible as INACTIVE for a while, as in AWS."""
    return [item for item in items if item.get("status") == "ACTIVE"]


def count_resources(boto) -> dict[str, int]:
    elbv2, ecs, ec2 = boto("elbv2"), boto("ecs"), boto("ec2")
    groups = ec2.describe_security_groups()["SecurityGroups"]
    lbs = elbv2.describe_load_balancers()["LoadBalancers"]
    revisions = ecs.list_task_definitions(familyPrefix="demo-taskdef", status="ACTIVE")
    return {
        "security groups": sum(1 for g in groups if g["GroupName"].startswith("demo-")),
        "load balancers": len(lbs),
        "target groups": len(elbv2.describe_target_groups()["TargetGroups"]),
        "listeners": sum(
            len(elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"])
            for lb in lbs
        ),
        "clusters": len(active(ecs.describe_clusters(clusters=["demo-cluster"])["clusters"])),
        "services": len(
            active(
                ecs.describe_services(cluster="demo-cluster", services=["demo-service"])["services"]
            )
        ),
        "active revisions": len(revisions["taskDefinitionArns"]),
        "certificates": len(boto("acm").list_certificates()["CertificateSummaryList"]),
        "zones": len(boto("route53").list_hosted_zones()["HostedZones"]),
        "roles": sum(
            1 for r in boto("iam").list_roles()["Roles"] if r["RoleName"].startswith("demo-")
        ),
        "log groups": len(boto("logs").describe_log_groups()["logGroups"]),
    }


EXACTLY_ONE_OF_EACH = {
    "security groups": 2,
    "load balancers": 1,
    "target groups": 1,
    "listeners": 2,
    "clusters": 1,
    "services": 1,
    "active revisions": 1,
    "certificates": 1,
    "zones": 1,
    "roles": 1,
    "log groups": 1,
}


@pytest.mark.parametrize(
    "faults",
    [
        Faults(unavailable=0.1, drop=0.05, lose=0.1, throttle=0.1, seed=4),
        # Every operation's first answer is lost after AWS acted: each create is retried
        # once by botocore and must be recognised rather than made twice.
        Faults(first_of_each="lose", only=r"^(Create|Register|Request|Put|Authorize|Attach|POST)"),
    ],
    ids=["503-throttling-drops-losses", "every-create-answer-lost-once"],
)
def test_up_with_domain_converges_on_a_flaky_network(
    aws: str, boto, project: Path, run, flaky, faults: Faults
) -> None:
    proxy = flaky(faults)
    result = run("up", "--image", IMAGE, "--set", "DOMAIN=example.com")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "https://example.com"
    injected = sum(1 for s in proxy.seen if s.fault)
    assert injected >= 5, "the proxy injected too few faults to prove anything"
    assert count_resources(boto) == EXACTLY_ONE_OF_EACH
    again = run("up", "--image", IMAGE, "--set", "DOMAIN=example.com")
    assert again.exit_code == 0, again.output
    assert count_resources(boto) == EXACTLY_ONE_OF_EACH


@pytest.mark.parametrize(
    ("operation", "error", "said"),
    [
        (
            "CreateCluster",
            (
                400,
                "AccessDeniedException",
                "User: arn:aws:iam::123456789012:user/"
                "ds is not authorized to perform: ecs:CreateCluster",
            ),
            "not allowed to ecs:CreateCluster",
        ),
        (
            "CreateLoadBalancer",
            (400, "TooManyLoadBalancers", "Exceeded quota of account"),
            "quota of this account is reached",
        ),
        (
            "CreateSecurityGroup",
            (400, "UnauthorizedOperation", "You are not authorized"),
            "not allowed to ec2:CreateSecurityGroup",
        ),
    ],
)
def test_errors_the_user_can_act_on_are_one_clear_message(
    aws: str, boto, project: Path, run, flaky, operation: str, error: tuple, said: str
) -> None:
    proxy = flaky(Faults(errors={operation: error}))
    result = run("up", "--image", IMAGE)
    assert result.exit_code == 1
    assert proxy.count("error") == 1, result.output  # not retried: retrying cannot help
    assert said in result.stderr and error[1] in result.stderr
    assert "hint:" in result.stderr and "Traceback" not in result.output


def test_teardown_converges_on_a_flaky_network(aws: str, boto, project: Path, run, flaky) -> None:
    deployed = run("up", "--image", IMAGE, "--set", "DOMAIN=example.com")
    assert deployed.exit_code == 0, deployed.output
    proxy = flaky(Faults(unavailable=0.1, drop=0.05, lose=0.1, throttle=0.05, seed=5))
    result = run("teardown", "--yes", "--set", "DOMAIN=example.com")
    assert result.exit_code == 0, result.output
    assert sum(1 for s in proxy.seen if s.fault) >= 5
    kept = {"zones": 1, "log groups": 1}  # data and identity stay without --all
    assert count_resources(boto) == {name: kept.get(name, 0) for name in EXACTLY_ONE_OF_EACH}

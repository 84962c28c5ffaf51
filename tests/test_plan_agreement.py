"""`up --dry-run` and a real `up` agree on every resource, from several starting states.

The dry run's plan is computed from what it reads; the real run computes the same plan and
applies it. Whatever the plan says for a resource (would create, would update, unchanged, kept)
is what the real run then reports it did (created, updated, found, kept), resource by resource,
and a plan with nothing to change is a run with no changing call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.operating import wide_terminal
from tests.support.recording import recording
from tests.test_dry_run import plan_of
from tests.test_up import IMAGE, IMAGE_2

__all__ = ["wide_terminal"]  # the fixture, imported for pytest

DONE = {
    "would create": "created",
    "would update": "updated",
    "unchanged": "found",
    "kept": "kept",
}
APPLIED = re.compile(
    r"^  (?P<kind>\S.{17}) (?P<name>\S.*?)\s+(?P<state>created|updated|found|kept)(?:  .*)?$"
)
DOMAIN = ("--set", "DOMAIN=example.com")
CALLS = re.compile(r"^  (?P<kind>\S.{17}) (?P<name>\S.*?)\s+calls  (?P<calls>\S.*)$")
# Route 53 is a REST API: the recorder names its calls by method and path
ROUTE53 = (
    (re.compile(r"POST /2013-04-01/hostedzone/?$"), "CreateHostedZone"),
    (re.compile(r"POST /2013-04-01/hostedzone/[^/]+/rrset/?$"), "ChangeResourceRecordSets"),
    (re.compile(r"POST /2013-04-01/tags/hostedzone/[^/]+/?$"), "ChangeTagsForResource"),
    (re.compile(r"DELETE /2013-04-01/hostedzone/[^/]+/?$"), "DeleteHostedZone"),
)


def planned_calls(stderr: str) -> dict[tuple[str, str], set[str]]:
    """(resource, name) -> the AWS operations the dry run printed for its change."""
    found = {}
    for line in stderr.splitlines():
        match = CALLS.match(line)
        if match:
            operations = {c.strip().split(":", 1)[-1] for c in match["calls"].split(",")}
            found[(match["kind"].strip(), match["name"].strip())] = operations
    return found


def operation_name(recorded: str) -> str:
    for pattern, name in ROUTE53:
        if pattern.match(recorded):
            return name
    return recorded


def assert_calls_match_the_plan(
    printed: dict[tuple[str, str], set[str]], changing: list[str]
) -> None:
    """Call by call: every changing call the real run made is one the dry run printed for a
    resource it would change, and each such resource saw at least one of its calls."""
    made = [operation_name(op) for op in changing]
    allowed = set().union(*printed.values()) if printed else set()
    assert [op for op in made if op not in allowed] == [], (made, printed)
    for resource, operations in printed.items():
        assert operations & set(made), (resource, operations, made)


def applied_of(stderr: str) -> dict[tuple[str, str], str]:
    """(resource, name) -> what the real run reports it did."""
    rows = {}
    for line in stderr.splitlines():
        match = APPLIED.match(line)
        if match:
            rows[(match["kind"].strip(), match["name"].strip())] = match["state"]
    return rows


def nothing(boto: Any, run: Any) -> None:
    """An empty account."""


def partial(boto: Any, run: Any) -> None:
    """Only the cluster section, as after `dashscale cluster`."""
    assert run("cluster", "--image", IMAGE).exit_code == 0


def full(boto: Any, run: Any) -> None:
    assert run("up", "--image", IMAGE, *DOMAIN).exit_code == 0


def drifted(boto: Any, run: Any) -> None:
    """A full deployment that someone changed by hand: retention, a target group setting, a
    listener forwarding elsewhere, an extra inbound rule."""
    full(boto, run)
    boto("logs").put_retention_policy(logGroupName="/ecs/demo", retentionInDays=1)
    elb = boto("elbv2")
    (group,) = elb.describe_target_groups(Names=["demo-tg"])["TargetGroups"]
    elb.modify_target_group(TargetGroupArn=group["TargetGroupArn"], HealthCheckPath="/other")
    (balancer,) = elb.describe_load_balancers(Names=["demo-alb"])["LoadBalancers"]
    listeners = elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    (http,) = [item for item in listeners if item["Port"] == 80]
    elb.modify_listener(
        ListenerArn=http["ListenerArn"],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}],
    )
    ec2 = boto("ec2")
    (sg,) = ec2.describe_security_groups(GroupNames=["demo-alb-sg"])["SecurityGroups"]
    ec2.authorize_security_group_ingress(
        GroupId=sg["GroupId"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )


@pytest.mark.parametrize(
    ("start", "image", "changes"),
    [
        (nothing, IMAGE, True),
        (partial, IMAGE, True),
        (drifted, IMAGE, True),
        (full, IMAGE_2, True),  # a new image
        (full, IMAGE, False),
    ],
    ids=["nothing", "partial", "drifted", "new-image", "full"],
)
def test_the_dry_run_and_the_real_run_agree(
    aws: str,
    boto,
    project: Path,
    run,
    no_docker: None,
    start: Callable[[Any, Any], None],
    image: str,
    changes: bool,
) -> None:
    start(boto, run)
    with recording(aws) as calls:
        dry = run("up", "--image", image, *DOMAIN, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert calls.changing == []
    planned = {key: state for key, (state, _) in plan_of(dry.stderr).items()}

    with recording(aws) as calls:
        real = run("up", "--image", image, *DOMAIN)
    assert real.exit_code == 0, real.output
    applied = applied_of(real.stderr)

    assert len(planned) >= 18, planned  # every resource of the app, TLS ones included
    assert {key: DONE[state] for key, state in planned.items()} == {
        key: state for key, state in applied.items() if key in planned or key[0] != "registrar"
    }
    planned_changes = any(state.startswith("would") for state in planned.values())
    assert planned_changes == changes
    assert bool(calls.changing) == changes, calls.changing
    printed = planned_calls(dry.stderr)
    assert set(printed) == {k for k, state in planned.items() if state.startswith("would")}
    assert_calls_match_the_plan(printed, calls.changing)

    with recording(aws) as calls:  # and then there is nothing left to do
        again = run("up", "--image", image, *DOMAIN, "--dry-run")
    assert again.exit_code == 0
    assert all(state in ("unchanged", "kept") for state, _ in plan_of(again.stderr).values())


# (+2 for ALERT_EMAIL: the alarm topic's ListTopics and one DescribeAlarms for all three alarms,
# read also when unset, so that unsetting it removes them)
@pytest.mark.parametrize(("domain", "budget"), [(DOMAIN, 27), ((), 20)], ids=["domain", "plain"])
def test_a_no_op_up_reads_each_resource_once(
    aws: str, project: Path, run, no_docker: None, domain: tuple[str, ...], budget: int
) -> None:
    """Every resource is read once, side by side, before the plan: no step reads it again.
    (The app's stored secrets cost one GetParametersByPath.)"""
    assert run("up", "--image", IMAGE, *domain).exit_code == 0
    with recording(aws) as calls:
        again = run("up", "--image", IMAGE, *domain)
    assert again.exit_code == 0, again.output
    assert calls.changing == []
    assert len(calls.operations) <= budget, sorted(calls.operations)
    repeated = {op for op in calls.operations if calls.operations.count(op) > 1}
    # ListTagsForResource is two services' call (Route 53's zone, the log group's)
    assert repeated <= {"ListTagsForResource"}, sorted(calls.operations)

"""The delete order and the waits of `teardown`, against the errors real AWS gives and moto never
raises: ClusterContainsServicesException, ResourceInUse on a target group a listener uses,
ResourceInUseException on a certificate a listener uses (and for a while after), and
DependencyViolation on security groups a load balancer, a service or another group's rule uses
(and for minutes after, while network interfaces are released).

The errors are injected into the very clients the command uses (botocore `before-call` hooks,
which short-circuit the request) and decided from moto's state at that moment, so a wrong order
fails here as it would on AWS. Waits run on a fake clock: nothing sleeps for real.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from rich.console import Console

from dashscale import cli as cli_module
from dashscale import inventory
from dashscale.config import load_config
from dashscale.context import Context
from dashscale.errors import DashscaleError
from dashscale.model import Resource
from dashscale.steps import teardown as teardown_step
from dashscale.ui import UI
from tests.support.clock import FakeClock
from tests.support.recording import recording

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-repository:v1"
DOMAIN = "example.com"


class StrictAws:
    """What real AWS refuses, decided from moto's state when the call is made.

    `violations` are refusals a correct order never meets; `releasing` are the ones AWS gives
    for a while even in the right order (network interfaces, ACM noticing the load balancer is
    gone): the first `eni_release` and `acm_release` calls after the dependency went are refused.
    """

    def __init__(
        self, ctx: Context, boto: Callable[[str], Any], eni_release: int = 0, acm_release: int = 0
    ) -> None:
        self.boto = boto
        self.eni_release = eni_release
        self.acm_release = acm_release
        self.violations: list[tuple[str, str]] = []
        self.releasing: Counter[tuple[str, str]] = Counter()
        self._interfaces_held: Counter[str] = Counter()  # refusals per group once unused
        rules = {
            ("ecs", "DeleteCluster"): self._cluster,
            ("elbv2", "DeleteTargetGroup"): self._target_group,
            ("acm", "DeleteCertificate"): self._certificate,
            ("ec2", "DeleteSecurityGroup"): self._security_group,
        }
        for (service, operation), rule in rules.items():
            events = ctx.client(service).meta.events
            service_id = ctx.client(service).meta.service_model.service_id.hyphenize()
            events.register(f"before-parameter-build.{service_id}.{operation}", self._keep_params)
            events.register(f"before-call.{service_id}.{operation}", self._refuser(operation, rule))

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["strict_params"] = dict(params)

    def _refuser(
        self, operation: str, rule: Callable[[dict[str, Any]], tuple[str, bool] | None]
    ) -> Callable[..., Any]:
        def before_call(context: dict[str, Any], **_: Any) -> Any:
            refusal = rule(context.get("strict_params", {}))
            if refusal is None:
                return None  # the request goes to moto
            code, violation = refusal
            if violation:
                self.violations.append((operation, code))
            else:
                self.releasing[(operation, code)] += 1
            response = AWSResponse("https://strict-aws.invalid/", 400, {}, None)
            parsed = {
                "Error": {"Code": code, "Message": f"{operation} refused (injected): {code}"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
            return response, parsed

        return before_call

    # --- moto's state -------------------------------------------------------------------------
    def _listeners(self) -> list[dict[str, Any]]:
        elbv2 = self.boto("elbv2")
        listeners = []
        for lb in elbv2.describe_load_balancers()["LoadBalancers"]:
            try:  # teardown deletes side by side: the load balancer may go meanwhile
                listeners += elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])[
                    "Listeners"
                ]
            except elbv2.exceptions.LoadBalancerNotFoundException:
                continue
        return listeners

    def _live_services(self) -> list[dict[str, Any]]:
        ecs = self.boto("ecs")
        services = []
        for cluster_arn in ecs.list_clusters()["clusterArns"]:
            arns = ecs.list_services(cluster=cluster_arn)["serviceArns"]
            if arns:
                found = ecs.describe_services(cluster=cluster_arn, services=arns)["services"]
                services += [s for s in found if s["status"] in ("ACTIVE", "DRAINING")]
        return services

    # --- the rules ----------------------------------------------------------------------------
    def _cluster(self, params: dict[str, Any]) -> tuple[str, bool] | None:
        name = params["cluster"].rsplit("/", 1)[-1]
        if any(s["clusterArn"].rsplit("/", 1)[-1] == name for s in self._live_services()):
            return "ClusterContainsServicesException", True
        return None

    def _target_group(self, params: dict[str, Any]) -> tuple[str, bool] | None:
        arn = params["TargetGroupArn"]
        for listener in self._listeners():
            for action in listener.get("DefaultActions", []):
                groups = [
                    g["TargetGroupArn"]
                    for g in action.get("ForwardConfig", {}).get("TargetGroups", [])
                ]
                if action.get("TargetGroupArn") == arn or arn in groups:
                    return "ResourceInUse", True
        return None

    def _certificate(self, params: dict[str, Any]) -> tuple[str, bool] | None:
        arn = params["CertificateArn"]
        for listener in self._listeners():
            if arn in [c["CertificateArn"] for c in listener.get("Certificates", [])]:
                return "ResourceInUseException", True
        if self.releasing[("DeleteCertificate", "ResourceInUseException")] < self.acm_release:
            return "ResourceInUseException", False
        return None

    def _security_group(self, params: dict[str, Any]) -> tuple[str, bool] | None:
        group_id = params["GroupId"]
        ec2, elbv2 = self.boto("ec2"), self.boto("elbv2")
        in_use = any(
            group_id in lb.get("SecurityGroups", [])
            for lb in elbv2.describe_load_balancers()["LoadBalancers"]
        ) or any(
            group_id
            in s.get("networkConfiguration", {})
            .get("awsvpcConfiguration", {})
            .get("securityGroups", [])
            for s in self._live_services()
        )
        referenced = any(
            pair.get("GroupId") == group_id
            for group in ec2.describe_security_groups()["SecurityGroups"]
            if group["GroupId"] != group_id
            for permission in group.get("IpPermissions", [])
            for pair in permission.get("UserIdGroupPairs", [])
        )
        if in_use or referenced:
            return "DependencyViolation", True
        if self._interfaces_held[group_id] < self.eni_release:
            self._interfaces_held[group_id] += 1
            return "DependencyViolation", False
        return None


def make_context(timeout: float = 900.0) -> tuple[Context, FakeClock, io.StringIO]:
    clock = FakeClock()
    output = io.StringIO()
    ui = UI(err=Console(file=output, width=200, highlight=False), out=Console(file=io.StringIO()))
    return Context(config=load_config(), ui=ui, clock=clock, timeout=timeout), clock, output


@pytest.fixture
def deployed(aws: str, boto, project: Path, run, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full `up` with DOMAIN (HTTPS listener with the certificate, aliases, validation)."""
    monkeypatch.setattr("dashscale.context.connect_docker", lambda: pytest.fail("Docker used"))
    with (project / ".env").open("a") as env:
        env.write(f"DOMAIN={DOMAIN}\n")
    result = run("up", "--image", IMAGE)
    assert result.exit_code == 0, result.output


def test_the_order_and_waits_of_real_aws_are_followed(aws: str, boto, deployed: None) -> None:
    ctx, clock, output = make_context()
    strict = StrictAws(ctx, boto, eni_release=3, acm_release=2)
    with recording(aws) as calls:
        teardown_step.teardown(ctx, everything=False, yes=True, dry_run=False)

    assert strict.violations == []  # nothing was deleted before what it depends on
    assert strict.releasing[("DeleteCertificate", "ResourceInUseException")] == 2
    assert sum(n for (op, _), n in strict.releasing.items() if op == "DeleteSecurityGroup") == 6
    # the retries waited, on the fake clock, with growing intervals capped at 15 s
    assert clock.time >= 3 * 5 and max(clock.sleeps) <= 15
    text = " ".join(output.getvalue().split())
    assert "certificate example.com (" in text and "after 3 attempts" in text
    assert "after 4 attempts" in text and "(DependencyViolation)" in text
    assert "teardown of demo complete" in text

    ops = calls.operations
    first = {op: ops.index(op) for op in set(ops)}
    last = {op: len(ops) - 1 - ops[::-1].index(op) for op in set(ops)}
    assert last["DeleteService"] < first["DeleteCluster"]
    assert last["DeleteListener"] < first["DeleteTargetGroup"]
    assert last["DeleteLoadBalancer"] < first["DeleteCertificate"]
    assert last["DeleteLoadBalancer"] < first["DeleteSecurityGroup"]
    zone_record_changes = [i for i, op in enumerate(ops) if op.endswith("/rrset/")]
    assert zone_record_changes and max(zone_record_changes) < first["DeleteLoadBalancer"]


def test_a_wrong_order_is_refused_and_a_rerun_finishes_from_there(
    aws: str, boto, deployed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The strict fake would catch a wrong order: with the security groups, target group and
    certificate moved before the listeners and load balancer, AWS's refusals outlast --timeout
    and the report names what is left and why. Then the real order finishes the job."""
    early = {"task security group", "load balancer security group", "target group", "certificate"}

    def wrong(resources: list[Resource], resource: Resource) -> tuple[str, ...]:
        """The early ones first, each after the other early ones it needs gone; the rest after
        them (what must really be gone first still decides what a failure skips)."""
        real = inventory.deleted_later(resources, resource)
        if resource.key in early:
            return tuple(key for key in real if key in early)
        return (*real, *sorted(early))

    monkeypatch.setattr(inventory, "run_after", wrong)
    ctx, _, output = make_context(timeout=60)
    strict = StrictAws(ctx, boto)
    with pytest.raises(DashscaleError) as error:
        teardown_step.teardown(ctx, everything=False, yes=True, dry_run=False)
    assert {code for _, code in strict.violations} == {
        "DependencyViolation",
        "ResourceInUse",
        "ResourceInUseException",
    }
    message = error.value.message
    assert "security group demo-from-alb-sg" in message and "timed out after" in message
    assert "security group demo-alb-sg" in message and "not attempted" in message
    assert "target group demo-tg" in message and "certificate example.com" in message
    assert "load balancer" not in message  # that one went
    assert "dashscale teardown" in (error.value.hint or "")
    assert "left" in output.getvalue()

    monkeypatch.setattr(inventory, "run_after", inventory.deleted_later)
    ctx, _, output = make_context()
    strict = StrictAws(ctx, boto, eni_release=1)
    teardown_step.teardown(ctx, everything=False, yes=True, dry_run=False)
    assert strict.violations == []
    assert "teardown of demo complete" in output.getvalue()


def test_a_dependency_that_never_clears_is_named_and_skips_only_what_needs_it(
    aws: str, boto, deployed: None, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the command: network interfaces that are never released. The tasks' group times
    out, the load balancer's group (which its rule refers to) is not attempted, everything else
    is deleted, and the exit code says something is left."""
    contexts: list[tuple[Context, FakeClock, StrictAws]] = []
    real_make_context = cli_module.make_context

    def strict_make_context(*args: Any, **kwargs: Any) -> Context:
        ctx = real_make_context(*args, **kwargs)
        ctx.clock = FakeClock()
        contexts.append((ctx, ctx.clock, StrictAws(ctx, boto, eni_release=10**6)))
        return ctx

    monkeypatch.setattr(cli_module, "make_context", strict_make_context)
    result = run("teardown", "--yes", "--timeout", "300")
    assert result.exit_code == 1, result.output
    (_, clock, strict) = contexts[0]
    assert strict.violations == []
    assert 300 <= clock.time < 320  # one wait of --timeout, not one per group
    text = " ".join(result.stderr.split())
    assert "error: 2 resource(s) of demo are still there" in text
    assert "timed out after 300 s waiting for deleting security group demo-from-alb-sg" in text
    assert "not attempted: security group demo-from-alb-sg" in text
    assert "hint: fix what is named, then run `dashscale teardown` again" in text
    assert "Traceback" not in result.output
    ec2 = boto("ec2")
    left = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["demo-alb-sg", "demo-from-alb-sg"]}]
    )["SecurityGroups"]
    assert len(left) == 2
    assert boto("elbv2").describe_load_balancers()["LoadBalancers"] == []
    assert boto("acm").list_certificates()["CertificateSummaryList"] == []
    iam = boto("iam")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName="demo-us-east-1-task-execution-role")

    # once AWS has released the interfaces, a re-run deletes just the two groups
    contexts.clear()
    monkeypatch.setattr(cli_module, "make_context", real_make_context)
    with recording(aws) as calls:
        again = run("teardown", "--yes")
    assert again.exit_code == 0, again.output
    deletes = [op for op in calls.operations if op.startswith("Delete")]
    assert deletes == ["DeleteSecurityGroup", "DeleteSecurityGroup"]


def refuse_alias_deletions(ctx: Context) -> list[str]:
    """Route 53 refuses (AccessDenied) every change that deletes an A record; returns the
    records refused."""
    refused: list[str] = []
    route53 = ctx.client("route53")
    events = route53.meta.events

    def keep(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["batch"] = params.get("ChangeBatch", {})

    def refuse(context: dict[str, Any], **_: Any) -> Any:
        changes = context.get("batch", {}).get("Changes", [])
        deleting = [c["ResourceRecordSet"] for c in changes if c["Action"] == "DELETE"]
        if not any(record["Type"] == "A" for record in deleting):
            return None
        refused.extend(record["Name"] for record in deleting)
        parsed = {
            "Error": {"Code": "AccessDenied", "Message": "not allowed (injected)"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }
        return AWSResponse("https://strict-aws.invalid/", 403, {}, None), parsed

    events.register("before-parameter-build.route-53.ChangeResourceRecordSets", keep)
    events.register("before-call.route-53.ChangeResourceRecordSets", refuse)
    return refused


def test_the_load_balancer_stays_while_dns_still_points_at_it(
    aws: str, boto, deployed: None
) -> None:
    """Deleting the alias records fails: the load balancer (and what needs it gone first) is not
    attempted, so DNS never points at a deleted load balancer; the rest goes."""
    ctx, _, output = make_context()
    strict = StrictAws(ctx, boto)
    refused = refuse_alias_deletions(ctx)
    with pytest.raises(DashscaleError) as error:
        teardown_step.teardown(ctx, everything=False, yes=True, dry_run=False)
    assert strict.violations == []
    assert sorted(refused) == sorted([f"{DOMAIN}.", f"www.{DOMAIN}."])
    message = error.value.message
    assert f"alias record {DOMAIN} A (not allowed to route53:ChangeResourceRecordSets" in message
    assert "load balancer demo-alb (not attempted: alias record" in message
    (balancer,) = boto("elbv2").describe_load_balancers()["LoadBalancers"]
    assert balancer["LoadBalancerName"] == "demo-alb"
    ecs = boto("ecs")
    assert (
        ecs.describe_services(cluster="demo-cluster", services=["demo-service"])["services"][0][
            "status"
        ]
        != "ACTIVE"
    )
    assert "validation record" in output.getvalue()

"""`dashscale teardown` against moto's server, as a user runs it: listing, confirmation, what goes
and what stays, neighbours and the user's own records untouched, re-runs, `up` again after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dashscale.config import load_config
from dashscale.context import Context
from dashscale.steps.repository import ensure_repository
from dashscale.ui import UI
from tests.support.operating import said
from tests.support.recording import recording

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-repository:v1"
NEIGHBOUR_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo2-repository:v1"
DOMAIN = "example.com"
NEIGHBOUR_DOMAIN = "example.org"
NEIGHBOUR = ("--set", "APP_NAME=demo2", "--set", f"DOMAIN={NEIGHBOUR_DOMAIN}")
USER_RECORDS = [
    {"Name": f"{DOMAIN}.", "Type": "MX", "TTL": 300, "ResourceRecords": [{"Value": "10 mx."}]},
    {"Name": f"{DOMAIN}.", "Type": "TXT", "TTL": 300, "ResourceRecords": [{"Value": '"v=spf1"'}]},
    {
        "Name": f"blog.{DOMAIN}.",
        "Type": "CNAME",
        "TTL": 300,
        "ResourceRecords": [{"Value": "blog.example.net"}],
    },
]


def set_domain(project: Path, domain: str | None) -> None:
    lines = [
        line
        for line in (project / ".env").read_text().splitlines()
        if not line.startswith("DOMAIN=")
    ]
    if domain:
        lines.append(f"DOMAIN={domain}")
    (project / ".env").write_text("\n".join(lines) + "\n")


def user_zone(boto) -> str:
    """A zone the user had before dashscale, with records of their own."""
    route53 = boto("route53")
    zone_id = route53.create_hosted_zone(Name=DOMAIN, CallerReference="the-user")["HostedZone"]
    zone_id = zone_id["Id"].rsplit("/", 1)[-1]
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [{"Action": "CREATE", "ResourceRecordSet": r} for r in USER_RECORDS]
        },
    )
    return zone_id


def repository_with_an_image(app: str, boto, *overrides: str) -> None:
    """The repository as `dashscale push` makes it (tagged), holding one image; no Docker."""
    config = load_config(overrides={"APP_NAME": app} if app != "demo" else {})
    ensure_repository(Context(config=config, ui=UI()))
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 7023,
            "digest": "sha256:" + "a" * 64,
        },
        "layers": [],
    }
    boto("ecr").put_image(
        repositoryName=f"{app}-repository", imageManifest=json.dumps(manifest), imageTag="v1"
    )


def records(boto, zone_id: str) -> list[dict]:
    return boto("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]


def app_records(boto, zone_id: str) -> list[tuple[str, str]]:
    """The records dashscale makes: aliases and validation CNAMEs."""
    return sorted(
        (r["Name"], r["Type"])
        for r in records(boto, zone_id)
        if "AliasTarget" in r or r["Name"].startswith("_")
    )


def service_status(boto, app: str) -> str | None:
    services = boto("ecs").describe_services(cluster=f"{app}-cluster", services=[f"{app}-service"])
    return services["services"][0]["status"] if services["services"] else None


def task_definitions(boto, app: str) -> list[str]:
    ecs = boto("ecs")
    return [
        arn
        for status in ("ACTIVE", "INACTIVE")
        for arn in ecs.list_task_definitions(familyPrefix=f"{app}-taskdef", status=status)[
            "taskDefinitionArns"
        ]
    ]


def active_clusters(boto, app: str) -> list[dict]:
    found = boto("ecs").describe_clusters(clusters=[f"{app}-cluster"])["clusters"]
    return [c for c in found if c["status"] == "ACTIVE"]


def load_balancers(boto, name: str) -> list[dict]:
    elbv2 = boto("elbv2")
    try:
        return elbv2.describe_load_balancers(Names=[name])["LoadBalancers"]
    except elbv2.exceptions.LoadBalancerNotFoundException:
        return []


def target_groups(boto, name: str) -> list[dict]:
    elbv2 = boto("elbv2")
    try:
        return elbv2.describe_target_groups(Names=[name])["TargetGroups"]
    except elbv2.exceptions.TargetGroupNotFoundException:
        return []


def security_groups(boto, *names: str) -> list[dict]:
    return boto("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": list(names)}]
    )["SecurityGroups"]


def role_exists(boto, name: str) -> bool:
    iam = boto("iam")
    try:
        iam.get_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        return False
    return True


def certificates_of(boto, domain: str) -> list[str]:
    acm = boto("acm")
    return [
        c["CertificateArn"]
        for c in acm.list_certificates()["CertificateSummaryList"]
        if c["DomainName"] == domain
    ]


def log_groups(boto, name: str) -> list[str]:
    groups = boto("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    return [g["logGroupName"] for g in groups if g["logGroupName"] == name]


def repository_images(boto, name: str) -> list[dict] | None:
    ecr = boto("ecr")
    try:
        return ecr.list_images(repositoryName=name)["imageIds"]
    except ecr.exceptions.RepositoryNotFoundException:
        return None


def assert_app_gone_but_data(boto, app: str) -> None:
    """Every kind teardown deletes by default is gone."""
    assert service_status(boto, app) in (None, "INACTIVE")
    assert task_definitions(boto, app) == []
    assert active_clusters(boto, app) == []
    assert load_balancers(boto, f"{app}-alb") == []
    assert target_groups(boto, f"{app}-tg") == []
    assert security_groups(boto, f"{app}-alb-sg", f"{app}-from-alb-sg") == []
    assert not role_exists(boto, f"{app}-us-east-1-task-execution-role")


def assert_neighbour_intact(aws: str, boto, run) -> str:
    """demo2 untouched: `up` for it finds everything as it was and changes nothing."""
    assert service_status(boto, "demo2") == "ACTIVE"
    assert len(certificates_of(boto, NEIGHBOUR_DOMAIN)) == 1
    assert repository_images(boto, "demo2-repository") is not None
    with recording(aws) as calls:
        again = run("up", "--image", NEIGHBOUR_IMAGE, *NEIGHBOUR)
    assert again.exit_code == 0, again.output
    assert calls.operations and calls.changing == [], calls.changing
    (zone,) = [
        z
        for z in boto("route53").list_hosted_zones()["HostedZones"]
        if z["Name"] == f"{NEIGHBOUR_DOMAIN}."
    ]
    return zone["Id"].rsplit("/", 1)[-1]


def test_teardown_after_a_full_up_keeps_data_neighbours_and_the_users_records(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    zone_id = user_zone(boto)
    set_domain(project, DOMAIN)
    up = run("up", "--image", IMAGE)
    assert up.exit_code == 0, up.output
    repository_with_an_image("demo", boto)
    # a neighbour whose name starts with APP_NAME, deployed into the same account
    neighbour = run("up", "--image", NEIGHBOUR_IMAGE, *NEIGHBOUR)
    assert neighbour.exit_code == 0, neighbour.output
    repository_with_an_image("demo2", boto)
    assert len(app_records(boto, zone_id)) == 4  # two aliases, two validation records
    neighbour_zone = assert_neighbour_intact(aws, boto, run)
    neighbour_records = records(boto, neighbour_zone)

    # --dry-run lists everything and changes nothing
    with recording(aws) as calls:
        dry = run("teardown", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert calls.operations and calls.changing == [], calls.changing
    listing = said(dry.stderr)
    for line in (
        "ECS service demo-service would delete 3 task(s)",
        "task definition demo-taskdef would delete 1 revision(s)",
        "ECS cluster demo-cluster would delete",
        "listener demo-alb:80 would delete",
        "listener demo-alb:443 would delete",
        "load balancer demo-alb would delete",
        "target group demo-tg would delete",
        f"alias record {DOMAIN} A would delete alias to demo-alb",
        f"alias record www.{DOMAIN} A would delete",
        "IAM role demo-us-east-1-task-execution-role would delete",
        f"certificate {DOMAIN} (",
        f"validation record _d930b28be6c5927595552b219965053e.www.{DOMAIN} CNAME would delete "
        "certificate validation",
        "ECR repository demo-repository kept holds 1 image(s); --all deletes it",
        "log group /ecs/demo kept",
        f"hosted zone {DOMAIN} kept not created by dashscale",
        "dry run: nothing was deleted",
    ):
        assert line in listing, line
    assert "demo2" not in dry.output
    assert listing.index("ECS service") < listing.index("ECS cluster") < listing.index("Kept:")

    # no terminal and no --yes: refused, nothing deleted
    with recording(aws) as calls:
        refused = run("teardown")
    assert refused.exit_code == 2, refused.output
    assert "no terminal to confirm on" in said(refused.stderr)
    assert "--yes" in refused.stderr and "Traceback" not in refused.output
    assert calls.changing == []
    assert service_status(boto, "demo") == "ACTIVE"

    with recording(aws) as calls:
        result = run("teardown", "--yes")
    assert result.exit_code == 0, result.output
    output = said(result.stderr)
    assert "teardown of demo complete" in output
    assert "kept: ECR repository demo-repository, log group /ecs/demo, hosted zone" in output
    for line in ("ECS service demo-service deleted", "load balancer demo-alb deleted"):
        assert line in output, line

    # the order of real AWS, as the requests reached AWS
    ops = calls.operations
    first = {op: ops.index(op) for op in reversed(ops)}
    last = {op: len(ops) - 1 - ops[::-1].index(op) for op in ops}
    assert last["UpdateService"] < first["DeleteService"] < first["DeleteCluster"]
    assert last["DeleteListener"] < first["DeleteTargetGroup"]
    assert last["DeleteLoadBalancer"] < first["DeleteCertificate"]
    assert last["DeleteLoadBalancer"] < first["DeleteSecurityGroup"]
    assert last["DeregisterTaskDefinition"] < first["DeleteTaskDefinitions"]
    assert "DeleteRepository" not in ops and "DeleteLogGroup" not in ops
    assert not any(op.startswith("DELETE /") for op in ops)  # no zone deleted

    assert_app_gone_but_data(boto, "demo")
    assert certificates_of(boto, DOMAIN) == []
    assert app_records(boto, zone_id) == []
    kept = {(r["Name"], r["Type"]): r for r in records(boto, zone_id)}
    for record in USER_RECORDS:
        assert (
            kept[(record["Name"], record["Type"])]["ResourceRecords"] == record["ResourceRecords"]
        )
    assert len(repository_images(boto, "demo-repository") or []) == 1
    assert log_groups(boto, "/ecs/demo") == ["/ecs/demo"]
    assert records(boto, neighbour_zone) == neighbour_records
    assert_neighbour_intact(aws, boto, run)

    # a second teardown finds nothing to delete (no --yes needed) and exits 0
    with recording(aws) as calls:
        again = run("teardown")
    assert again.exit_code == 0, again.output
    assert "nothing to delete" in again.stderr
    assert calls.changing == []

    # --all: the repository with its images and the log group too; the user's zone stays
    everything = run("teardown", "--all", "--yes")
    assert everything.exit_code == 0, everything.output
    assert repository_images(boto, "demo-repository") is None
    assert log_groups(boto, "/ecs/demo") == []
    assert f"hosted zone {DOMAIN} kept not created by dashscale" in said(everything.stderr)
    assert {(r["Name"], r["Type"]) for r in records(boto, zone_id)} >= {
        (r["Name"], r["Type"]) for r in USER_RECORDS
    }
    assert_neighbour_intact(aws, boto, run)
    assert log_groups(boto, "/ecs/demo2") == ["/ecs/demo2"]
    assert len(repository_images(boto, "demo2-repository") or []) == 1

    last_run = run("teardown", "--all")
    assert last_run.exit_code == 0, last_run.output
    assert "nothing to delete" in last_run.stderr

    # and `up` works again from scratch
    up_again = run("up", "--image", IMAGE)
    assert up_again.exit_code == 0, up_again.output
    assert service_status(boto, "demo") == "ACTIVE"
    assert len(app_records(boto, zone_id)) == 4
    assert len(certificates_of(boto, DOMAIN)) == 1


def test_a_partial_deployment_is_torn_down(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    cluster = run("cluster", "--image", IMAGE)  # an `up` interrupted after its cluster step
    assert cluster.exit_code == 0, cluster.output
    assert active_clusters(boto, "demo") and task_definitions(boto, "demo")

    result = run("teardown", "--yes")
    assert result.exit_code == 0, result.output
    assert_app_gone_but_data(boto, "demo")
    assert log_groups(boto, "/ecs/demo") == ["/ecs/demo"]
    assert "teardown of demo complete" in said(result.stderr)

    again = run("teardown", "--all", "--yes")
    assert again.exit_code == 0, again.output
    assert log_groups(boto, "/ecs/demo") == []
    assert run("up", "--image", IMAGE).exit_code == 0
    assert service_status(boto, "demo") == "ACTIVE"


def test_nothing_there_is_nothing_to_do(aws: str, project: Path, run, no_docker: None) -> None:
    with recording(aws) as calls:
        result = run("teardown")
    assert result.exit_code == 0, result.output
    assert "nothing of demo in us-east-1 exists" in said(result.stderr)
    assert calls.operations and calls.changing == []


def test_same_named_resources_without_the_tag_are_reported_and_left_alone(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE).exit_code == 0
    ec2 = boto("ec2")
    # someone else's group of the same name in another VPC, and a repository of the app's name
    # made by hand (push uses it as it is, never tagging it)
    other_vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    theirs = ec2.create_security_group(
        GroupName="demo-alb-sg", Description="not dashscale's", VpcId=other_vpc
    )["GroupId"]
    boto("ecr").create_repository(repositoryName="demo-repository")

    result = run("teardown", "--all", "--yes")
    assert result.exit_code == 0, result.output
    output = said(result.stderr)
    assert f"security group demo-alb-sg ({theirs}) not ours not tagged dashscale:app=demo" in output
    assert "ECR repository demo-repository not ours not tagged dashscale:app=demo" in output
    assert [g["GroupId"] for g in security_groups(boto, "demo-alb-sg")] == [theirs]
    assert repository_images(boto, "demo-repository") == []
    assert security_groups(boto, "demo-from-alb-sg") == []
    assert load_balancers(boto, "demo-alb") == [] and active_clusters(boto, "demo") == []
    assert not role_exists(boto, "demo-us-east-1-task-execution-role")
    assert log_groups(boto, "/ecs/demo") == []  # --all: the app's own log group went


def test_on_a_terminal_it_asks_first(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("cluster", "--image", IMAGE).exit_code == 0
    monkeypatch.setattr("dashscale.steps.teardown.is_interactive", lambda: True)

    with recording(aws) as calls:
        declined = run("teardown", input="n\n")
    assert declined.exit_code == 1
    assert "Delete these 5 resource(s) of demo in us-east-1?" in said(declined.output)
    assert "nothing was deleted" in declined.stderr
    assert calls.changing == [] and active_clusters(boto, "demo")

    accepted = run("teardown", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert_app_gone_but_data(boto, "demo")


def test_without_domain_the_apps_certificate_records_and_zone_are_still_found(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    """DOMAIN removed from .env after an `up` that created the zone: the certificate is found by
    its tag, the zone by its tag, and --all deletes the zone dashscale created."""
    up = run("up", "--image", IMAGE, "--set", f"DOMAIN={DOMAIN}")
    assert up.exit_code == 0, up.output
    (zone,) = boto("route53").list_hosted_zones()["HostedZones"]
    zone_id = zone["Id"].rsplit("/", 1)[-1]

    result = run("teardown", "--yes")
    assert result.exit_code == 0, result.output
    assert certificates_of(boto, DOMAIN) == []
    assert app_records(boto, zone_id) == []
    assert "holds your domain's DNS; --all deletes it" in said(result.stderr)

    everything = run("teardown", "--all", "--yes")
    assert everything.exit_code == 0, everything.output
    assert boto("route53").list_hosted_zones()["HostedZones"] == []


def test_validation_records_another_certificate_needs_are_kept(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    """ACM gives every certificate of a domain the same validation record: the user's own
    certificate for DOMAIN still needs it after the app's is gone."""
    zone_id = user_zone(boto)
    acm = boto("acm")
    users = acm.request_certificate(  # EC: AWS (not moto) lists it only when asked for EC keys
        DomainName=DOMAIN, ValidationMethod="DNS", KeyAlgorithm="EC_prime256v1"
    )["CertificateArn"]
    set_domain(project, DOMAIN)
    assert run("up", "--image", IMAGE).exit_code == 0
    (validation,) = [n for n, t in app_records(boto, zone_id) if t == "CNAME" and "www" not in n]

    result = run("teardown", "--yes")
    assert result.exit_code == 0, result.output
    output = said(result.stderr)
    kept = f"validation record {validation.rstrip('.')} CNAME kept also validates the certificate"
    assert kept in output
    assert app_records(boto, zone_id) == [(validation, "CNAME")]  # www's one is not shared
    assert certificates_of(boto, DOMAIN) == [users]


def test_autoscaling_target_goes_before_the_service(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE).exit_code == 0
    scaling = boto("application-autoscaling")
    scaling.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId="service/demo-cluster/demo-service",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=2,
        MaxCapacity=6,
    )
    with recording(aws) as calls:
        result = run("teardown", "--yes")
    assert result.exit_code == 0, result.output
    assert "scalable target service/demo-cluster/demo-service deleted" in said(result.stderr)
    ops = calls.operations
    assert ops.index("DeregisterScalableTarget") < ops.index("UpdateService")
    assert scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []


def test_a_certificate_deleted_while_teardown_reads_is_not_there(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two apps of one account torn down side by side: the other's certificate, listed, is
    gone when teardown asks for its tags (ACM answers ResourceNotFoundException)."""
    from tests.support.operating import refuse
    from tests.test_up import IMAGE

    assert run("up", "--image", IMAGE).exit_code == 0
    boto("acm").request_certificate(
        DomainName="other.example.net",
        ValidationMethod="DNS",
        Tags=[{"Key": "dashscale:app", "Value": "other"}],
    )
    for operation in ("ListTagsForCertificate", "DescribeCertificate"):
        refuse(monkeypatch, f"before-call.acm.{operation}", "ResourceNotFoundException")
    result = run("teardown", "--yes")
    assert result.exit_code == 0, result.output
    assert "ResourceNotFoundException" not in result.output

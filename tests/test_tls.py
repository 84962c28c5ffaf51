"""`dashscale tls` against moto's server: zone, certificate, validation, listeners, aliases."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashscale.config import load_config
from dashscale.context import Context
from dashscale.errors import WaitTimeout
from dashscale.steps.https import tls_section
from dashscale.ui import UI
from tests.support.clock import FakeClock
from tests.support.dns_server import FakeDns
from tests.support.recording import recording

DOMAIN = "example.com"


@pytest.fixture
def load_balancer(aws: str, boto, project: Path) -> dict:
    """What `alb` leaves: load balancer, target group, port 80 forwarding to it."""
    ec2, elbv2 = boto("ec2"), boto("elbv2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    subnet_ids = [s["SubnetId"] for s in subnets["Subnets"]][:2]
    tags = [{"Key": "dashscale:app", "Value": "demo"}]
    lb = elbv2.create_load_balancer(Name="demo-alb", Subnets=subnet_ids, Tags=tags)
    lb = lb["LoadBalancers"][0]
    tg = elbv2.create_target_group(
        Name="demo-tg",
        Protocol="HTTP",
        Port=8050,
        VpcId=vpc["VpcId"],
        TargetType="ip",
        Tags=tags,
    )["TargetGroups"][0]
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )
    with (project / ".env").open("a") as env:
        env.write(f"DOMAIN={DOMAIN}\n")
    return {"lb": lb, "tg": tg}


def zones(boto) -> list[dict]:
    return [
        z for z in boto("route53").list_hosted_zones()["HostedZones"] if z["Name"] == f"{DOMAIN}."
    ]


def records(boto, zone_id: str) -> dict[tuple[str, str], dict]:
    sets = boto("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {(r["Name"], r["Type"]): r for r in sets}


def listeners(boto, lb_arn: str) -> dict[int, dict]:
    found = boto("elbv2").describe_listeners(LoadBalancerArn=lb_arn)["Listeners"]
    return {listener["Port"]: listener for listener in found}


def test_tls_with_an_existing_zone_keeps_the_users_records(aws, boto, load_balancer, run):
    route53 = boto("route53")
    zone_id = route53.create_hosted_zone(Name=DOMAIN, CallerReference="user")["HostedZone"]["Id"]
    zone_id = zone_id.rsplit("/", 1)[-1]
    user_records = [
        {
            "Name": f"{DOMAIN}.",
            "Type": "MX",
            "TTL": 300,
            "ResourceRecords": [{"Value": "10 mail.example.net."}],
        },
        {
            "Name": f"blog.{DOMAIN}.",
            "Type": "CNAME",
            "TTL": 300,
            "ResourceRecords": [{"Value": "blog.example.net"}],
        },
    ]
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [{"Action": "CREATE", "ResourceRecordSet": r} for r in user_records]
        },
    )
    ns = route53.get_hosted_zone(Id=zone_id)["DelegationSet"]["NameServers"]
    dns = FakeDns(ns)
    try:
        result = run("tls", "--set", f"DNS_RESOLVER={dns.address}")
    finally:
        dns.stop()
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"https://{DOMAIN}"
    assert dns.queries >= 1 and "DNS answers with the zone's servers" in result.output

    # one zone, the user's own, untouched
    assert len(zones(boto)) == 1
    tags = route53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id)
    assert tags["ResourceTagSet"].get("Tags", []) == []
    found = records(boto, zone_id)
    for record in user_records:
        assert (
            found[(record["Name"], record["Type"])]["ResourceRecords"] == record["ResourceRecords"]
        )

    # one issued certificate for apex and www, tagged, validated through its CNAMEs
    acm = boto("acm")
    certificates = acm.list_certificates()["CertificateSummaryList"]
    assert len(certificates) == 1
    cert = acm.describe_certificate(CertificateArn=certificates[0]["CertificateArn"])
    cert = cert["Certificate"]
    assert cert["Status"] == "ISSUED"
    assert {cert["DomainName"], *cert["SubjectAlternativeNames"]} == {DOMAIN, f"www.{DOMAIN}"}
    assert {"Key": "dashscale:app", "Value": "demo"} in acm.list_tags_for_certificate(
        CertificateArn=cert["CertificateArn"]
    )["Tags"]
    options = cert["DomainValidationOptions"]
    assert {o["DomainName"] for o in options} == {DOMAIN, f"www.{DOMAIN}"}  # none: no check
    for option in options:
        rr = option["ResourceRecord"]
        assert found[(rr["Name"], "CNAME")]["ResourceRecords"] == [{"Value": rr["Value"]}]

    # aliases point at the load balancer's own zone
    lb = load_balancer["lb"]
    for name in (f"{DOMAIN}.", f"www.{DOMAIN}."):
        alias = found[(name, "A")]["AliasTarget"]
        assert alias["HostedZoneId"] == lb["CanonicalHostedZoneId"]
        assert alias["DNSName"].rstrip(".") == lb["DNSName"]

    # HTTPS with TLS 1.3 forwarding to the target group; HTTP redirected permanently
    by_port = listeners(boto, lb["LoadBalancerArn"])
    https = by_port[443]
    assert https["Protocol"] == "HTTPS"
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert [c["CertificateArn"] for c in https["Certificates"]] == [cert["CertificateArn"]]
    assert https["DefaultActions"][0]["TargetGroupArn"] == load_balancer["tg"]["TargetGroupArn"]
    redirect = by_port[80]["DefaultActions"][0]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"] == {
        "Protocol": "HTTPS",
        "Port": "443",
        "Host": "#{host}",
        "Path": "/#{path}",
        "Query": "#{query}",
        "StatusCode": "HTTP_301",
    }

    # a second run changes nothing
    with recording(aws) as calls:
        again = run("tls")
    assert again.exit_code == 0, again.output
    assert calls.changing == []
    assert len(acm.list_certificates()["CertificateSummaryList"]) == 1


def test_tls_without_a_zone_creates_one_and_shows_its_name_servers(aws, boto, load_balancer, run):
    dns = FakeDns(["ns1.registrar-parking.example."])
    try:
        result = run("tls", "--set", f"DNS_RESOLVER={dns.address}")
    finally:
        dns.stop()
    assert result.exit_code == 0, result.output
    [zone] = zones(boto)
    zone_id = zone["Id"].rsplit("/", 1)[-1]
    ns = boto("route53").get_hosted_zone(Id=zone_id)["DelegationSet"]["NameServers"]
    assert len(ns) == 4 and all(server in result.output for server in ns)
    assert "registrar" in result.output
    assert "certificate stays pending until the registrar" in result.output  # not delegated
    tags = boto("route53").list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id)
    assert tags["ResourceTagSet"]["Tags"] == [{"Key": "dashscale:app", "Value": "demo"}]
    again = run("tls")
    assert again.exit_code == 0, again.output
    assert len(zones(boto)) == 1


def test_tls_needs_domain_and_a_load_balancer(aws, project, run):
    result = run("tls")
    assert result.exit_code == 2 and "DOMAIN is not set" in result.output
    result = run("tls", "--set", f"DOMAIN={DOMAIN}")
    assert result.exit_code == 1 and "run `dashscale alb`" in result.output, result.output
    assert "Traceback" not in result.output


def test_pending_certificate_times_out_with_what_is_missing(
    aws, boto, load_balancer, project, monkeypatch
):
    import moto.settings

    monkeypatch.setattr(moto.settings, "ACM_VALIDATION_WAIT", 10**6)  # never validates
    clock = FakeClock()
    ctx = Context(config=load_config(), ui=UI(), clock=clock)
    with pytest.raises(WaitTimeout) as error:
        tls_section(ctx, timeout=1800)
    assert "PENDING_VALIDATION" in error.value.message
    assert "dashscale tls" in error.value.hint
    assert 1800 <= clock.time < 1900 and max(clock.sleeps) <= 15
    # nothing was wired to a certificate that is not issued
    assert 443 not in listeners(boto, load_balancer["lb"]["LoadBalancerArn"])
    # a later run picks up the same certificate rather than requesting another
    monkeypatch.setattr(moto.settings, "ACM_VALIDATION_WAIT", 0)
    url = tls_section(Context(config=load_config(), ui=UI(), clock=FakeClock()))
    assert url == f"https://{DOMAIN}"
    assert len(boto("acm").list_certificates()["CertificateSummaryList"]) == 1


def test_a_zone_an_interrupted_run_left_untagged_is_tagged(aws, boto, load_balancer, run):
    route53 = boto("route53")
    zone_id = route53.create_hosted_zone(
        Name=DOMAIN,
        CallerReference="interrupted",
        HostedZoneConfig={"Comment": "dashscale app demo"},
    )["HostedZone"]["Id"].rsplit("/", 1)[-1]
    result = run("tls")
    assert result.exit_code == 0, result.output
    tags = route53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id)
    assert tags["ResourceTagSet"]["Tags"] == [{"Key": "dashscale:app", "Value": "demo"}]
    assert len(zones(boto)) == 1


def test_validation_records_deleted_by_hand_are_restored_while_the_certificate_lives(
    aws, boto, project: Path, run, no_docker: None
) -> None:
    """ACM renews an issued certificate only while its validation CNAMEs exist: `up` checks
    them like any other record, the dry run says it would write the missing one, `up` does."""
    from tests.test_dry_run import plan_of
    from tests.test_up import IMAGE

    assert run("up", "--image", IMAGE, "--set", f"DOMAIN={DOMAIN}").exit_code == 0
    acm = boto("acm")
    (summary,) = acm.list_certificates()["CertificateSummaryList"]
    certificate = acm.describe_certificate(CertificateArn=summary["CertificateArn"])
    assert certificate["Certificate"]["Status"] == "ISSUED"
    wanted = {
        o["ResourceRecord"]["Name"]: o["ResourceRecord"]
        for o in certificate["Certificate"]["DomainValidationOptions"]
    }
    (zone,) = zones(boto)
    zone_id = zone["Id"].rsplit("/", 1)[-1]
    lost_name = f"_d930b28be6c5927595552b219965053e.www.{DOMAIN}."
    lost = records(boto, zone_id)[(lost_name, "CNAME")]
    assert lost_name in wanted
    boto("route53").change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": lost}]},
    )

    with recording(aws) as calls:
        dry = run("up", "--image", IMAGE, "--set", f"DOMAIN={DOMAIN}", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert calls.changing == []
    state, note = plan_of(dry.stderr)[("validation record", f"{DOMAIN}, www.{DOMAIN}")]
    assert (state, note.startswith("1 CNAME")) == ("would create", True), (state, note)

    with recording(aws) as calls:
        real = run("up", "--image", IMAGE, "--set", f"DOMAIN={DOMAIN}")
    assert real.exit_code == 0, real.output
    # one change batch (ChangeResourceRecordSets), nothing else
    assert [op.rstrip("/") for op in calls.changing] == [
        f"POST /2013-04-01/hostedzone/{zone_id}/rrset"
    ], calls.changing
    restored = records(boto, zone_id)[(lost_name, "CNAME")]
    assert restored["ResourceRecords"] == [{"Value": wanted[lost_name]["Value"]}]

    with recording(aws) as calls:  # and a no-op run after it writes nothing
        again = run("up", "--image", IMAGE, "--set", f"DOMAIN={DOMAIN}")
    assert again.exit_code == 0
    assert calls.changing == []


def test_an_issued_certificate_listed_as_a_summary_is_described_once_for_its_records() -> None:
    """AWS's ListCertificates says ISSUED without the validation records (moto's listing leaves
    Status out, so `find_certificate` describes it there anyway): the records' reading asks
    DescribeCertificate itself, once, and finds the CNAME to keep."""
    import boto3
    from botocore.stub import Stubber

    from dashscale.steps.tls import CertificateResource, ValidationRecords, ZoneRecords

    arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    record = {"Name": f"_x.{DOMAIN}.", "Type": "CNAME", "Value": "_y.acm-validations.aws."}
    acm = boto3.client("acm", region_name="us-east-1")
    stubber = Stubber(acm)
    stubber.add_response(
        "describe_certificate",
        {
            "Certificate": {
                "CertificateArn": arn,
                "Status": "ISSUED",
                "DomainValidationOptions": [{"DomainName": DOMAIN, "ResourceRecord": record}],
            }
        },
        {"CertificateArn": arn},
    )

    class Ctx:
        def client(self, service: str) -> object:
            assert service == "acm"
            return acm

    summary = {"CertificateArn": arn, "DomainName": DOMAIN, "Status": "ISSUED"}
    with stubber:
        found = ValidationRecords().find(
            Ctx(), {CertificateResource.key: summary, ZoneRecords.key: (None, [])}
        )
    stubber.assert_no_pending_responses()
    assert [r["Name"] for r in found["wanted"]] == [record["Name"]]

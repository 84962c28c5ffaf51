"""Private dashboards against moto's server: a subdomain in the company's zone, sign-in with
Cognito or the company's OIDC provider, sticky sessions; re-runs change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.leaks import assert_no_leak, assert_no_leak_in_results, distinctive_secret
from tests.support.operating import said
from tests.support.recording import recording
from tests.support.sign_in import oidc_flags, the_client, the_pool
from tests.test_dry_run import plan_of
from tests.test_up import IMAGE

SUB = ("--set", "DOMAIN=sales.example.com")
COGNITO = ("--set", "DOMAIN=example.com", "--set", "AUTH=cognito")
SECRET = distinctive_secret()  # the OIDC client secret: no 4-character piece may show


def listeners(boto) -> dict[int, dict]:
    elbv2 = boto("elbv2")
    (lb,) = elbv2.describe_load_balancers(Names=["demo-alb"])["LoadBalancers"]
    found = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    return {item["Port"]: item for item in found}


def ordered(actions: list[dict]) -> list[dict]:
    return sorted(actions, key=lambda a: int(a.get("Order") or 0))


def all_records(boto, zone_id: str) -> list[dict]:
    return boto("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]


@pytest.fixture
def company_zone(aws: str, boto) -> str:
    """example.com, the company's zone, with records of its own."""
    route53 = boto("route53")
    zone_id = route53.create_hosted_zone(Name="example.com", CallerReference="company")[
        "HostedZone"
    ]["Id"]
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": kind,
                        "TTL": 300,
                        "ResourceRecords": [{"Value": value}],
                    },
                }
                for name, kind, value in (
                    ("example.com.", "MX", "10 mail.example.net."),
                    ("www.example.com.", "CNAME", "company-site.example.net."),
                    ("blog.example.com.", "A", "192.0.2.10"),
                )
            ]
        },
    )
    return zone_id


def test_a_subdomain_lives_in_the_company_zone_and_teardown_removes_only_its_records(
    aws: str, boto, project: Path, run, no_docker: None, company_zone: str
) -> None:
    before = all_records(boto, company_zone)
    result = run("up", "--image", IMAGE, *SUB)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "https://sales.example.com"

    zones = boto("route53").list_hosted_zones()["HostedZones"]
    assert [z["Name"] for z in zones] == ["example.com."]  # no zone created
    after = all_records(boto, company_zone)
    added = [r for r in after if r not in before]
    assert [r for r in before if r not in after] == []  # the company's records as they were
    aliases = [r for r in added if r["Type"] == "A"]
    assert [r["Name"] for r in aliases] == ["sales.example.com."]
    assert {r["Type"] for r in added} == {"A", "CNAME"}  # the alias and the validation record
    (summary,) = boto("acm").list_certificates()["CertificateSummaryList"]
    certificate = boto("acm").describe_certificate(CertificateArn=summary["CertificateArn"])
    assert certificate["Certificate"]["DomainName"] == "sales.example.com"
    assert set(certificate["Certificate"]["SubjectAlternativeNames"]) == {"sales.example.com"}
    assert "registrar" not in said(result.stderr)

    with recording(aws) as calls:
        again = run("up", "--image", IMAGE, *SUB)
    assert again.exit_code == 0, again.output
    assert calls.changing == []

    gone = run("teardown", "--yes", *SUB)
    assert gone.exit_code == 0, gone.output
    assert all_records(boto, company_zone) == before
    assert [z["Name"] for z in boto("route53").list_hosted_zones()["HostedZones"]] == [
        "example.com."
    ]


def test_a_subdomain_without_an_enclosing_zone_gets_one_and_asks_for_ns_records(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    result = run("up", "--image", IMAGE, *SUB)
    assert result.exit_code == 0, result.output
    (zone,) = boto("route53").list_hosted_zones()["HostedZones"]
    assert zone["Name"] == "sales.example.com."
    text = said(result.stderr)
    assert "as NS records for sales.example.com in the DNS of example.com" in text
    assert "registrar" not in text
    aliases = [r["Name"] for r in all_records(boto, zone["Id"]) if r["Type"] == "A"]
    assert aliases == ["sales.example.com."]  # no www. for a subdomain


def test_www_true_serves_www_of_a_subdomain_and_false_removes_it(
    aws: str, boto, project: Path, run, no_docker: None, company_zone: str
) -> None:
    www = run("up", "--image", IMAGE, *SUB, "--set", "WWW=true")
    assert www.exit_code == 0, www.output
    names = sorted(r["Name"] for r in all_records(boto, company_zone) if r["Type"] == "A")
    assert names == ["blog.example.com.", "sales.example.com.", "www.sales.example.com."]
    without = run("up", "--image", IMAGE, *SUB, "--set", "WWW=false")
    assert without.exit_code == 0, without.output
    names = sorted(r["Name"] for r in all_records(boto, company_zone) if r["Type"] == "A")
    assert names == ["blog.example.com.", "sales.example.com."]


def test_cognito_sign_in_users_and_back_to_none(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    result = run("up", "--image", IMAGE, *COGNITO)
    assert result.exit_code == 0, result.output
    cognito = boto("cognito-idp")
    described = the_pool(boto)
    assert described["Name"] == "demo-users"
    assert described["UserPoolTags"] == {"dashscale:app": "demo"}
    assert described["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert described["UsernameAttributes"] == ["email"]
    assert described["Domain"].startswith("demo-")
    client = the_client(boto, described["Id"])
    assert client["ClientSecret"]
    assert client["AllowedOAuthFlows"] == ["code"]
    assert set(client["AllowedOAuthScopes"]) == {"openid", "email"}
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert set(client["CallbackURLs"]) == {
        "https://example.com/oauth2/idpresponse",
        "https://www.example.com/oauth2/idpresponse",
    }
    # Cognito's secret is not ours to choose (letters and digits only): windows of 8, which
    # cannot occur in output by chance as 4 of those could
    assert_no_leak_in_results((result,), [client["ClientSecret"]], window=8)

    found = listeners(boto)
    first, second = ordered(found[443]["DefaultActions"])
    assert (first["Type"], int(first["Order"])) == ("authenticate-cognito", 1)
    assert first["AuthenticateCognitoConfig"]["UserPoolArn"] == described["Arn"]
    assert first["AuthenticateCognitoConfig"]["UserPoolClientId"] == client["ClientId"]
    assert first["AuthenticateCognitoConfig"]["UserPoolDomain"] == described["Domain"]
    assert (second["Type"], int(second["Order"])) == ("forward", 2)
    assert found[80]["DefaultActions"][0]["Type"] == "redirect"

    added = run("users", "add", "ana@example.com", *COGNITO)
    assert added.exit_code == 0, added.output
    assert "invited" in added.stdout
    users = cognito.list_users(UserPoolId=described["Id"])["Users"]
    assert [u["Username"] for u in users] != []
    listing = run("users", "list", *COGNITO)
    assert listing.exit_code == 0, listing.output
    assert "ana@example.com" in listing.stdout
    status = run("status", *COGNITO)
    assert "sign-in: cognito: demo-users, 1 user(s)" in said(status.stderr)
    removed = run("users", "remove", "ana@example.com", *COGNITO)
    assert removed.exit_code == 0, removed.output
    assert "ana@example.com" not in run("users", "list", *COGNITO).stdout
    assert run("users", "remove", "ana@example.com", *COGNITO).exit_code == 1

    with recording(aws) as calls:
        again = run("up", "--image", IMAGE, *COGNITO)
    assert again.exit_code == 0, again.output
    assert calls.changing == []

    plain = run("up", "--image", IMAGE, "--set", "DOMAIN=example.com", "--set", "AUTH=none")
    assert plain.exit_code == 0, plain.output
    (action,) = listeners(boto)[443]["DefaultActions"]
    assert action["Type"] == "forward"

    gone = run("teardown", "--yes", *COGNITO)
    assert gone.exit_code == 0, gone.output
    (kept,) = cognito.list_user_pools(MaxResults=10)["UserPools"]  # it holds the users
    assert cognito.list_user_pool_clients(UserPoolId=kept["Id"])["UserPoolClients"] == []
    assert run("teardown", "--yes", "--all", *COGNITO).exit_code == 0
    assert cognito.list_user_pools(MaxResults=10)["UserPools"] == []


def test_oidc_sign_in_uses_the_discovery_document_and_never_shows_the_secret(
    aws: str,
    boto,
    project: Path,
    run,
    no_docker: None,
    oidc_provider: tuple[str, dict],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issuer, _ = oidc_provider
    oidc = oidc_flags(issuer)
    missing = run("up", "--image", IMAGE, *oidc)
    assert missing.exit_code == 2, missing.output  # no secret: stops before any change
    assert "OIDC_CLIENT_SECRET" in missing.output
    assert boto("elbv2").describe_load_balancers()["LoadBalancers"] == []

    monkeypatch.setenv("OIDC_CLIENT_SECRET", SECRET)
    result = run("up", "--image", IMAGE, *oidc)
    assert result.exit_code == 0, result.output
    first, second = ordered(listeners(boto)[443]["DefaultActions"])
    config = first["AuthenticateOidcConfig"]
    assert first["Type"] == "authenticate-oidc"
    assert config["Issuer"] == issuer
    assert config["AuthorizationEndpoint"] == f"{issuer}/authorize"
    assert config["TokenEndpoint"] == f"{issuer}/token"
    assert config["UserInfoEndpoint"] == f"{issuer}/userinfo"
    assert config["ClientId"] == "dash-client"
    assert second["Type"] == "forward"

    dry = run("up", "--image", IMAGE, *oidc, "--dry-run")
    status = run("status", "--json", *oidc)
    with recording(aws) as calls:
        again = run("up", "--image", IMAGE, *oidc)
    assert again.exit_code == 0, again.output
    assert calls.changing == []
    assert dry.exit_code == 0, dry.output
    assert '"sign_in"' in status.stdout, status.output  # it said something (exit 1: no target)
    assert_no_leak_in_results((result, dry, status, again), [SECRET])
    assert_no_leak((project / ".env").read_text(), [SECRET], ".env")
    definition = boto("ecs").describe_task_definition(taskDefinition="demo-taskdef")
    assert_no_leak(str(definition["taskDefinition"]), [SECRET], "the task definition")


def test_the_oidc_client_secret_can_be_stored_and_is_not_the_apps(
    aws: str,
    boto,
    project: Path,
    run,
    no_docker: None,
    oidc_provider: tuple[str, dict],
    monkeypatch,
) -> None:
    """`dashscale secret set OIDC_CLIENT_SECRET` instead of the environment: the load balancer
    gets it; the app's tasks do not (it is the load balancer's, not the app's)."""
    monkeypatch.delenv("OIDC_CLIENT_SECRET", raising=False)
    issuer, _ = oidc_provider
    oidc = oidc_flags(issuer)
    stored = run("secret", "set", "OIDC_CLIENT_SECRET", input=SECRET + "\n")
    assert stored.exit_code == 0, stored.output
    result = run("up", "--image", IMAGE, *oidc)
    assert result.exit_code == 0, result.output
    first, _ = ordered(listeners(boto)[443]["DefaultActions"])
    assert first["Type"] == "authenticate-oidc"
    assert first["AuthenticateOidcConfig"]["ClientId"] == "dash-client"
    definition = boto("ecs").describe_task_definition(taskDefinition="demo-taskdef")
    (container,) = definition["taskDefinition"]["containerDefinitions"]
    assert [s["name"] for s in container.get("secrets", [])] == []
    with recording(aws) as calls:
        again = run("up", "--image", IMAGE, *oidc)
    assert again.exit_code == 0 and calls.changing == []
    assert_no_leak_in_results((stored, result, again), [SECRET])
    assert_no_leak(str(definition["taskDefinition"]), [SECRET], "the task definition")


def test_sticky_sessions_on_and_off(aws: str, boto, project: Path, run, no_docker: None) -> None:
    elbv2 = boto("elbv2")

    def attributes() -> dict[str, str]:
        (group,) = elbv2.describe_target_groups(Names=["demo-tg"])["TargetGroups"]
        answer = elbv2.describe_target_group_attributes(TargetGroupArn=group["TargetGroupArn"])
        return {a["Key"]: a["Value"] for a in answer["Attributes"]}

    on = run("up", "--image", IMAGE, "--set", "STICKY_SESSIONS=3600")
    assert on.exit_code == 0, on.output
    found = attributes()
    assert found["stickiness.enabled"] == "true"
    assert found["stickiness.type"] == "lb_cookie"
    assert found["stickiness.lb_cookie.duration_seconds"] == "3600"
    with recording(aws) as calls:
        assert run("up", "--image", IMAGE, "--set", "STICKY_SESSIONS=3600").exit_code == 0
    assert calls.changing == []
    off = run("up", "--image", IMAGE)
    assert off.exit_code == 0, off.output
    assert attributes()["stickiness.enabled"] == "false"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (("AUTH=cognito",), "AUTH=cognito needs DOMAIN"),
        (("DOMAIN=example.com", "AUTH=magic"), "AUTH='magic' is invalid"),
        (
            ("DOMAIN=example.com", "AUTH=oidc", "OIDC_ISSUER=http://login.example.com"),
            "OIDC_ISSUER='http://login.example.com' is invalid",
        ),
        (("DOMAIN=example.com", "AUTH=oidc"), "AUTH=oidc needs OIDC_ISSUER and OIDC_CLIENT_ID"),
        (("STICKY_SESSIONS=0",), "STICKY_SESSIONS='0' is invalid"),
    ],
)
def test_bad_combinations_exit_2_before_any_call(
    aws: str, project: Path, run, settings: tuple[str, ...], message: str
) -> None:
    flags = [part for setting in settings for part in ("--set", setting)]
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE, *flags)
    assert result.exit_code == 2, result.output
    assert message in said(result.output)
    assert calls.operations == []


def test_users_without_cognito_exit_2_before_any_call(aws: str, project: Path, run) -> None:
    with recording(aws) as calls:
        for args in (("add", "ana@example.com"), ("list",), ("remove", "ana@example.com")):
            result = run("users", *args, "--set", "DOMAIN=example.com")
            assert result.exit_code == 2, result.output
            assert "AUTH=cognito" in said(result.output)
    assert calls.operations == []


def test_the_dry_run_plans_the_sign_in(aws: str, project: Path, run, no_docker: None) -> None:
    with recording(aws) as calls:
        dry = run("up", "--image", IMAGE, *COGNITO, "--set", "STICKY_SESSIONS=60", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert calls.changing == []
    plan = plan_of(dry.stderr)
    assert plan[("user pool", "demo-users")][0] == "would create"
    assert plan[("user pool client", "demo-alb")][0] == "would create"
    assert plan[("sign-in domain", "demo-users")][0] == "would create"
    assert "sticky 60 s" in said(dry.stderr)


@pytest.mark.parametrize(
    ("domain", "www", "names", "enclosing"),
    [
        ("example.com", None, ("example.com", "www.example.com"), ["example.com"]),
        ("sales.example.com", None, ("sales.example.com",), ["sales.example.com", "example.com"]),
        ("app.example.co.uk", None, ("app.example.co.uk",), ["app.example.co.uk", "example.co.uk"]),
        ("example.co.uk", None, ("example.co.uk", "www.example.co.uk"), ["example.co.uk"]),
        ("example.com", "false", ("example.com",), ["example.com"]),
        ("sales.example.com", "true", ("sales.example.com", "www.sales.example.com"), None),
    ],
)
def test_www_is_for_an_apex_unless_set(
    tmp_path: Path, domain: str, www: str | None, names: tuple[str, ...], enclosing
) -> None:
    from dashscale.config import load_config
    from dashscale.context import Context
    from dashscale.steps import tls
    from dashscale.ui import UI

    environ = {"APP_NAME": "demo", "AWS_REGION": "us-east-1", "DOMAIN": domain}
    if www is not None:
        environ["WWW"] = www
    ctx = Context(load_config(environ=environ, project_dir=tmp_path), UI())
    assert tls.domains(ctx) == names
    if enclosing is not None:
        assert tls.enclosing_names(domain) == enclosing


def test_status_json_shows_the_sign_in(aws: str, project: Path, run, no_docker: None) -> None:
    import json

    assert run("up", "--image", IMAGE, *COGNITO).exit_code == 0
    assert run("users", "add", "ana@example.com", *COGNITO).exit_code == 0
    document = json.loads(run("status", "--json", *COGNITO).stdout)
    assert document["sign_in"]["mode"] == "cognito"
    assert document["sign_in"]["pool"] == "demo-users"
    assert document["sign_in"]["users"] == 1


def test_sign_in_opens_outbound_https_when_the_group_lacks_it(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE, "--set", "DOMAIN=example.com").exit_code == 0
    ec2 = boto("ec2")
    (group,) = ec2.describe_security_groups(GroupNames=["demo-alb-sg"])["SecurityGroups"]
    ec2.revoke_security_group_egress(
        GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"]
    )
    result = run("up", "--image", IMAGE, *COGNITO)
    assert result.exit_code == 0, result.output
    (group,) = ec2.describe_security_groups(GroupNames=["demo-alb-sg"])["SecurityGroups"]
    (rule,) = group["IpPermissionsEgress"]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443)
    with recording(aws) as calls:
        assert run("up", "--image", IMAGE, *COGNITO).exit_code == 0
    assert calls.changing == []


def test_the_dry_run_and_the_real_run_agree_with_sign_in(
    aws: str, boto, project: Path, run, no_docker: None, company_zone: str
) -> None:
    from tests.test_plan_agreement import (
        DONE,
        applied_of,
        assert_calls_match_the_plan,
        planned_calls,
    )

    settings = (*SUB, "--set", "AUTH=cognito", "--set", "STICKY_SESSIONS=120")
    dry = run("up", "--image", IMAGE, *settings, "--dry-run")
    assert dry.exit_code == 0, dry.output
    planned = {key: state for key, (state, _) in plan_of(dry.stderr).items()}
    with recording(aws) as calls:
        real = run("up", "--image", IMAGE, *settings)
    assert real.exit_code == 0, real.output
    assert_calls_match_the_plan(planned_calls(dry.stderr), calls.changing)
    applied = applied_of(real.stderr)
    assert {key: DONE[state] for key, state in planned.items()} == {
        key: state for key, state in applied.items() if key in planned
    }
    assert planned[("hosted zone", "example.com")] == "unchanged"
    assert ("alias record", "www.sales.example.com") not in planned

"""Sign-in as AWS behaves, where moto is laxer: case-insensitive user names, pool and client
updates that keep what dashscale does not own (moto_fixes makes moto reset like AWS)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result

from tests.support.operating import said
from tests.support.recording import recording
from tests.support.sign_in import oidc_flags, the_client, the_pool
from tests.test_dry_run import plan_of
from tests.test_private import COGNITO
from tests.test_up import IMAGE

TRIGGER = "arn:aws:lambda:us-east-1:123456789012:function:pre-sign-up"
MOVE = "dashscale teardown --all"


def test_the_pool_is_made_case_insensitive_and_an_older_one_gets_a_warning(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    result = run("up", "--image", IMAGE, *COGNITO)
    assert result.exit_code == 0, result.output
    assert the_pool(boto)["UsernameConfiguration"] == {"CaseSensitive": False}
    assert MOVE not in said(result.stderr)
    status = run("status", *COGNITO)
    assert MOVE not in said(status.stderr)
    document = json.loads(run("status", "--json", *COGNITO).stdout)
    assert document["sign_in"]["case_sensitive"] is False

    # a pool as an earlier dashscale made it: no UsernameConfiguration, so case-sensitive
    assert run("teardown", "--yes", "--all", *COGNITO).exit_code == 0
    boto("cognito-idp").create_user_pool(
        PoolName="demo-users",
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
        UsernameAttributes=["email"],
        AutoVerifiedAttributes=["email"],
        UserPoolTags={"dashscale:app": "demo"},
    )
    older = run("up", "--image", IMAGE, *COGNITO)
    assert older.exit_code == 0, older.output  # a warning, not an error
    text = said(older.stderr)
    assert "warning:" in text and "case-sensitive user names" in text
    assert MOVE in text and "dashscale users add" in text
    assert "UsernameConfiguration" not in the_pool(boto)  # nothing can change it in place
    shown = said(run("status", *COGNITO).stderr)
    assert "case-sensitive user names" in shown and MOVE in shown
    document = json.loads(run("status", "--json", *COGNITO).stdout)
    assert document["sign_in"]["case_sensitive"] is True
    assert MOVE in document["sign_in"]["warning"]


@pytest.mark.parametrize("mfa", ["OPTIONAL", "ON"])
def test_settings_made_by_hand_survive_an_update_of_the_pool_and_the_client(
    aws: str, boto, project: Path, run, no_docker: None, mfa: str
) -> None:
    assert run("up", "--image", IMAGE, *COGNITO).exit_code == 0
    cognito = boto("cognito-idp")
    pool = the_pool(boto)
    client = the_client(boto, pool["Id"])
    # by hand, as in the console: a password policy, a trigger, and sign-up opened to anyone
    # (ours: up sets it back); UpdateUserPool resets what it omits, so this call sends ours
    cognito.update_user_pool(
        UserPoolId=pool["Id"],
        Policies={"PasswordPolicy": {"MinimumLength": 14, "RequireSymbols": False}},
        LambdaConfig={"PreSignUp": TRIGGER},
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": False},
        AutoVerifiedAttributes=["email"],
        UserPoolTags=pool["UserPoolTags"],
    )
    cognito.set_user_pool_mfa_config(
        UserPoolId=pool["Id"],
        SoftwareTokenMfaConfiguration={"Enabled": True},
        MfaConfiguration=mfa,  # ON: AWS refuses it in UpdateUserPool (SetUserPoolMfaConfig only)
    )
    cognito.update_user_pool_client(
        UserPoolId=pool["Id"],
        ClientId=client["ClientId"],
        ClientName=client["ClientName"],
        AllowedOAuthFlows=client["AllowedOAuthFlows"],
        AllowedOAuthScopes=client["AllowedOAuthScopes"],
        AllowedOAuthFlowsUserPoolClient=True,
        CallbackURLs=client["CallbackURLs"],
        SupportedIdentityProviders=client["SupportedIdentityProviders"],
        AccessTokenValidity=15,
        IdTokenValidity=20,
        RefreshTokenValidity=7,
        TokenValidityUnits={"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days"},
        LogoutURLs=["https://example.com/signed-out"],
    )
    assert the_pool(boto)["MfaConfiguration"] == mfa

    # WWW=false: the client's callbacks change (ours), and the pool's sign-up is ours again
    changed = run("up", "--image", IMAGE, *COGNITO, "--set", "WWW=false")
    assert changed.exit_code == 0, changed.output
    pool = the_pool(boto)
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["MfaConfiguration"] == mfa
    assert cognito.get_user_pool_mfa_config(UserPoolId=pool["Id"])[
        "SoftwareTokenMfaConfiguration"
    ] == {"Enabled": True}
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] == 14
    assert pool["Policies"]["PasswordPolicy"]["RequireSymbols"] is False
    assert pool["LambdaConfig"] == {"PreSignUp": TRIGGER}
    assert pool["UsernameAttributes"] == ["email"]
    assert pool["UsernameConfiguration"] == {"CaseSensitive": False}
    assert pool["UserPoolTags"] == {"dashscale:app": "demo"}
    client = the_client(boto, pool["Id"])
    assert client["CallbackURLs"] == ["https://example.com/oauth2/idpresponse"]
    assert (client["AccessTokenValidity"], client["IdTokenValidity"]) == (15, 20)
    assert client["RefreshTokenValidity"] == 7
    assert client["TokenValidityUnits"]["AccessToken"] == "minutes"
    assert client["LogoutURLs"] == ["https://example.com/signed-out"]
    assert client["ClientSecret"]  # the same client, its secret kept
    assert client["AllowedOAuthFlows"] == ["code"]

    with recording(aws) as calls:
        again = run("up", "--image", IMAGE, *COGNITO, "--set", "WWW=false")
    assert again.exit_code == 0, again.output
    assert calls.changing == []


def test_moto_resets_omitted_client_settings_as_aws_does(aws: str, boto) -> None:
    """The emulator patch itself: an update that omits a setting loses it, as on AWS."""
    cognito = boto("cognito-idp")
    pool = cognito.create_user_pool(PoolName="p")["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool, ClientName="c", AccessTokenValidity=5, LogoutURLs=["https://a/"]
    )["UserPoolClient"]["ClientId"]
    cognito.update_user_pool_client(UserPoolId=pool, ClientId=client, ClientName="c")
    described = cognito.describe_user_pool_client(UserPoolId=pool, ClientId=client)
    assert "AccessTokenValidity" not in described["UserPoolClient"]
    assert "LogoutURLs" not in described["UserPoolClient"]
    assert described["UserPoolClient"]["RefreshTokenValidity"] == 30  # AWS's default


# --- OIDC -----------------------------------------------------------------------------------------

# Every 4-character window of these holds a "~", which dashscale's output never has by itself:
# any 4 characters of a secret in the output are a leak, never a coincidence.
SECRETS = ("Qx~7Kp~Zr~3Wm~Vb~9Jt", "Hd~2Ls~Yq~8Nc~Fw~4Ge", "Tm~6Rv~Ck~1Xa~Pj~5Ub")


def windows(secret: str) -> set[str]:
    return {secret[i : i + 4] for i in range(len(secret) - 3)}


def assert_no_leak(texts: list[str]) -> None:
    for text in texts:
        for seen in (text, "".join(text.split())):  # rich may wrap a long line anywhere
            for secret in SECRETS:
                leaked = [w for w in windows(secret) if w in seen]
                assert leaked == [], f"{leaked} of a client secret in the output"


def https_listener(boto) -> tuple[dict, dict[str, str]]:
    elbv2 = boto("elbv2")
    (lb,) = elbv2.describe_load_balancers(Names=["demo-alb"])["LoadBalancers"]
    found = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    (listener,) = [item for item in found if item["Port"] == 443]
    (described,) = elbv2.describe_tags(ResourceArns=[listener["ListenerArn"]])["TagDescriptions"]
    return listener, {t["Key"]: t["Value"] for t in described["Tags"]}


def secret_held(listener: dict) -> str:
    """The client secret the load balancer holds, from the emulator's own state (AWS never
    returns it; the emulator runs in this process)."""
    from moto.backends import get_backend

    backend = get_backend("elbv2")["123456789012"]["us-east-1"]
    (held,) = backend.describe_listeners(None, [listener["ListenerArn"]])
    (action,) = [a for a in held.default_actions if a.type == "authenticate-oidc"]
    return str(action.data["AuthenticateOidcConfig"]["ClientSecret"])


def oidc_config(listener: dict) -> dict:
    (action,) = [a for a in listener["DefaultActions"] if a["Type"] == "authenticate-oidc"]
    return dict(action["AuthenticateOidcConfig"])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("issuer", "https://login.example.net", "names the issuer https://login.example.net"),
        ("token_endpoint", "http://127.0.0.1/token", "gives token_endpoint http://127.0.0.1/token"),
        ("authorization_endpoint", "/authorize", "gives authorization_endpoint /authorize"),
        ("userinfo_endpoint", "", "lacks userinfo_endpoint"),
    ],
)
def test_a_discovery_document_that_does_not_fit_stops_before_any_change(
    aws: str,
    boto,
    project: Path,
    run,
    no_docker: None,
    oidc_provider: tuple[str, dict],
    monkeypatch: pytest.MonkeyPatch,
    field: str,
    value: str,
    message: str,
) -> None:
    issuer, document = oidc_provider
    monkeypatch.setenv("OIDC_CLIENT_SECRET", SECRETS[0])
    document[field] = value
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE, *oidc_flags(issuer))
    assert result.exit_code == 2, result.output
    (line, *_) = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert message in said(result.output) and "discovery document" in line
    assert calls.changing == []
    assert boto("elbv2").describe_load_balancers()["LoadBalancers"] == []


def test_a_trailing_slash_on_oidc_issuer_is_the_same_issuer(
    aws: str, project: Path, run, no_docker: None, oidc_provider: tuple[str, dict], monkeypatch
) -> None:
    issuer, _ = oidc_provider
    monkeypatch.setenv("OIDC_CLIENT_SECRET", SECRETS[0])
    dry = run("up", "--image", IMAGE, *oidc_flags(issuer + "/"), "--dry-run")
    assert dry.exit_code == 0, dry.output


def test_a_rotated_oidc_client_secret_is_noticed_and_applied_and_never_shown(
    aws: str,
    boto,
    project: Path,
    run,
    no_docker: None,
    oidc_provider: tuple[str, dict],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issuer, _ = oidc_provider
    flags = oidc_flags(issuer)
    outputs: list[str] = []

    def step(*args: str, input: str | None = None) -> Result:
        result = run(*args, input=input)
        outputs.extend((result.stdout, result.stderr))
        # status: 1 as nothing serves without a running app (no targets here)
        assert result.exit_code == (1 if args[0] == "status" else 0), result.output
        return result

    first, second, third = SECRETS
    monkeypatch.setenv("OIDC_CLIENT_SECRET", first)
    step("up", "--image", IMAGE, *flags)
    listener, tags = https_listener(boto)
    recorded = tags["dashscale:oidc-secret"]
    assert oidc_config(listener)["ClientId"] == "dash-client"
    assert secret_held(listener) == first
    with recording(aws) as calls:
        step("up", "--image", IMAGE, *flags)
    assert calls.changing == []

    monkeypatch.setenv("OIDC_CLIENT_SECRET", second)  # rotated at the identity provider
    dry = step("up", "--image", IMAGE, *flags, "--dry-run")
    plan = plan_of(dry.stderr)
    assert plan[("listener", "HTTPS :443")][0] == "would update"
    assert "client secret changed" in plan[("listener", "HTTPS :443")][1]
    with recording(aws) as calls:
        step("up", "--image", IMAGE, *flags)
    assert "ModifyListener" in calls.changing and "AddTags" in calls.changing
    listener, tags = https_listener(boto)
    assert tags["dashscale:oidc-secret"] != recorded
    assert secret_held(listener) == second
    with recording(aws) as calls:
        step("up", "--image", IMAGE, *flags)
    assert calls.changing == []

    # stored instead, and rotated there: noticed just the same
    monkeypatch.delenv("OIDC_CLIENT_SECRET")
    step("secret", "set", "OIDC_CLIENT_SECRET", input=third + "\n")
    with recording(aws) as calls:
        applied = step("up", "--image", IMAGE, *flags)
    assert "ModifyListener" in calls.changing
    assert "client secret changed" in said(applied.stderr)
    assert secret_held(https_listener(boto)[0]) == third
    with recording(aws) as calls:
        step("up", "--image", IMAGE, *flags)
    assert calls.changing == []

    step("status", *flags)
    step("status", "--json", *flags)
    step("up", "--image", IMAGE, *flags, "--dry-run")
    _, tags = https_listener(boto)
    assert_no_leak([*outputs, json.dumps(tags)])
    for fingerprint in (recorded, tags["dashscale:oidc-secret"]):  # nor what the tag keeps
        salt, digest = fingerprint.split(":")
        assert not any(part in text for text in outputs for part in (salt, digest[:8]))

    step("up", "--image", IMAGE, "--set", "DOMAIN=example.com", "--set", "AUTH=none")
    listener, tags = https_listener(boto)
    assert [a["Type"] for a in listener["DefaultActions"]] == ["forward"]
    assert "dashscale:oidc-secret" not in tags  # no fingerprint left behind

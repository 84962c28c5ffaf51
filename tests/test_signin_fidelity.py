"""Sign-in as AWS behaves, where moto is laxer: case-insensitive user names, pool and client
updates that keep what dashscale does not own (moto_fixes makes moto reset like AWS)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.operating import said
from tests.support.recording import recording
from tests.test_private import COGNITO
from tests.test_up import IMAGE

TRIGGER = "arn:aws:lambda:us-east-1:123456789012:function:pre-sign-up"
MOVE = "dashscale teardown --all"


def the_pool(boto) -> dict:
    cognito = boto("cognito-idp")
    (pool,) = cognito.list_user_pools(MaxResults=10)["UserPools"]
    return dict(cognito.describe_user_pool(UserPoolId=pool["Id"])["UserPool"])


def the_client(boto, pool_id: str) -> dict:
    cognito = boto("cognito-idp")
    (listed,) = cognito.list_user_pool_clients(UserPoolId=pool_id)["UserPoolClients"]
    return dict(
        cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=listed["ClientId"])[
            "UserPoolClient"
        ]
    )


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


def test_settings_made_by_hand_survive_an_update_of_the_pool_and_the_client(
    aws: str, boto, project: Path, run, no_docker: None
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
        MfaConfiguration="OPTIONAL",
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
    assert the_pool(boto)["MfaConfiguration"] == "OPTIONAL"

    # WWW=false: the client's callbacks change (ours), and the pool's sign-up is ours again
    changed = run("up", "--image", IMAGE, *COGNITO, "--set", "WWW=false")
    assert changed.exit_code == 0, changed.output
    pool = the_pool(boto)
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["MfaConfiguration"] == "OPTIONAL"
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

"""What the sign-in tests share: the app's user pool and its client as AWS describes them, and
the flags of an app that signs users in with an OIDC provider."""

from __future__ import annotations


def the_pool(boto) -> dict:
    """The one user pool of the account, described."""
    cognito = boto("cognito-idp")
    (pool,) = cognito.list_user_pools(MaxResults=10)["UserPools"]
    return dict(cognito.describe_user_pool(UserPoolId=pool["Id"])["UserPool"])


def the_client(boto, pool_id: str) -> dict:
    """The one client of the pool, described."""
    cognito = boto("cognito-idp")
    (listed,) = cognito.list_user_pool_clients(UserPoolId=pool_id)["UserPoolClients"]
    return dict(
        cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=listed["ClientId"])[
            "UserPoolClient"
        ]
    )


def oidc_flags(issuer: str) -> tuple[str, ...]:
    return (
        "--set",
        "DOMAIN=example.com",
        "--set",
        "AUTH=oidc",
        "--set",
        f"OIDC_ISSUER={issuer}",
        "--set",
        "OIDC_CLIENT_ID=dash-client",
    )

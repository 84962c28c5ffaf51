"""Sign-in before the app: the HTTPS listener authenticates every request before it forwards.

- `AUTH=cognito`: users you manage. The user pool APP-users (sign-up by administrators only,
  email as the user name, case-insensitive; kept by teardown unless --all: it holds the users),
  its app client
  (a secret, the authorization-code flow, the `openid` and `email` scopes, the callback
  https://DOMAIN/oauth2/idpresponse and the www. one where it is served) and its hosted sign-in
  domain. `dashscale users add|list|remove` manage the users. Updates send back every setting
  dashscale does not own (AWS resets what an Update omits): MFA, password policy, triggers and
  token lifetimes set by hand stay.
- `AUTH=oidc`: the company's identity provider, OIDC_ISSUER and OIDC_CLIENT_ID; its endpoints
  come from the issuer's /.well-known/openid-configuration, the client secret from the
  environment (OIDC_CLIENT_SECRET), never from .env, never shown.
- `AUTH=none`: the listener forwards directly.

The load balancer reaches the identity provider over HTTPS: its security group's outbound
rules must allow port 443 (the default all-outbound rule, which dashscale keeps, does).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import ssl
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from dashscale.aws import error_code, require_owned, translated
from dashscale.context import Context
from dashscale.errors import AwsError, ConfigError, DashscaleError
from dashscale.inventory import unless_gone
from dashscale.model import (
    CREATE,
    DELETE,
    FOREIGN,
    KEEP,
    NEW,
    UPDATE,
    Change,
    Item,
    Reading,
    Resource,
    Survey,
    compare,
    create,
)
from dashscale.steps import appconfig
from dashscale.steps.alb import CANNOT_CHANGE, TargetGroup, forward_action
from dashscale.steps.tls import domains

NONE, COGNITO, OIDC = "none", "cognito", "oidc"
SECRET_VARIABLE = "OIDC_CLIENT_SECRET"  # the environment, or `dashscale secret set` stores it
SCOPES = ("email", "openid")
DISCOVERY_PATH = "/.well-known/openid-configuration"
DISCOVERY_TIMEOUT = 15.0
ENDPOINTS = {  # AuthenticateOidcConfig field -> discovery document field
    "AuthorizationEndpoint": "authorization_endpoint",
    "TokenEndpoint": "token_endpoint",
    "UserInfoEndpoint": "userinfo_endpoint",
}
COGNITO_GONE = "ResourceNotFoundException"  # Cognito's answer for what is not there
FINGERPRINT_TAG = "dashscale:oidc-secret"  # on the HTTPS listener: see `fingerprint`
FINGERPRINT_ROUNDS = 100_000
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Pool:
    id: str
    arn: str


# --- updates that keep what dashscale does not own ------------------------------------------------


def _fitted(value: Any, shape: Any) -> Any:
    """`value` cut to what `shape` (botocore's) accepts, member by member: Describe answers carry
    read-only fields (ids, dates, the secret) that the Update call would refuse."""
    if shape.type_name == "structure" and isinstance(value, Mapping):
        return {
            key: _fitted(item, shape.members[key])
            for key, item in value.items()
            if key in shape.members and item is not None
        }
    if shape.type_name == "list" and isinstance(value, list):
        return [_fitted(item, shape.member) for item in value]
    if shape.type_name == "map" and isinstance(value, Mapping):
        return {key: _fitted(item, shape.value) for key, item in value.items()}
    return value


def update_input(cognito: Any, operation: str, described: Mapping[str, Any]) -> dict[str, Any]:
    """Everything of a Describe answer that `operation` takes, to send back unchanged: AWS's
    UpdateUserPool and UpdateUserPoolClient reset every setting the call omits to its default."""
    shape = cognito.meta.service_model.operation_model(operation).input_shape
    return dict(_fitted(described, shape))


def update_pool(cognito: Any, current: Mapping[str, Any], ctx: Context) -> None:
    """UpdateUserPool with the pool as it is; MFA that is ON (which AWS refuses to set in
    UpdateUserPool: SetUserPoolMfaConfig only) is read first and set back after."""
    request = pool_update(cognito, current, ctx)
    mfa_on = request.get("MfaConfiguration") == "ON"
    if mfa_on:
        del request["MfaConfiguration"]
    mfa = cognito.get_user_pool_mfa_config(UserPoolId=current["Id"]) if mfa_on else {}
    restore = {**update_input(cognito, "SetUserPoolMfaConfig", mfa), "UserPoolId": current["Id"]}
    if mfa_on:  # set as it is first: refused, nothing changed (not MFA turned off by the update)
        cognito.set_user_pool_mfa_config(**restore)
    cognito.update_user_pool(**request)
    if mfa_on:
        cognito.set_user_pool_mfa_config(**restore)


def pool_update(cognito: Any, current: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    """UpdateUserPool's parameters: the pool as it is, with dashscale's own fields set (sign-up
    by administrators only, the email verified automatically, the app's tags)."""
    settings = update_input(cognito, "UpdateUserPool", current)
    admin = dict(settings.get("AdminCreateUserConfig") or {})
    admin["AllowAdminCreateUserOnly"] = True
    # deprecated: AWS refuses it beside PasswordPolicy.TemporaryPasswordValidityDays
    admin.pop("UnusedAccountValidityDays", None)
    verified = list(settings.get("AutoVerifiedAttributes") or [])
    return {
        **settings,
        "UserPoolId": current["Id"],
        "PoolName": current["Name"],
        "AdminCreateUserConfig": admin,
        "AutoVerifiedAttributes": verified if "email" in verified else [*verified, "email"],
        "UserPoolTags": {**(current.get("UserPoolTags") or {}), **ctx.names.tag_map()},
    }


def client_update(
    cognito: Any, current: Mapping[str, Any], pool: str, ctx: Context
) -> dict[str, Any]:
    """UpdateUserPoolClient's parameters: the client as it is, with dashscale's settings."""
    settings = update_input(cognito, "UpdateUserPoolClient", current)
    ours = client_settings(ctx)
    if settings.get("DefaultRedirectURI") not in ours.get("CallbackURLs", []):
        settings.pop("DefaultRedirectURI", None)  # AWS refuses one that is not a callback
    return {
        **settings,
        "UserPoolId": pool,
        "ClientId": current["ClientId"],
        "ClientName": ctx.names.user_pool_client,
        **ours,
    }


# --- case-insensitive user names ----------------------------------------------------------------


def case_sensitive(pool: Mapping[str, Any]) -> bool:
    """True for a pool whose user names are case-sensitive: CreateUserPool's default when
    UsernameConfiguration is not given, and it cannot be changed afterwards."""
    return (pool.get("UsernameConfiguration") or {}).get("CaseSensitive") is not False


def case_sensitive_warning(ctx: Context) -> str:
    """How to move from a case-sensitive pool (made by an earlier dashscale): no in-place fix."""
    name = ctx.names.user_pool
    return (
        f"the user pool {name} has case-sensitive user names (made before dashscale created "
        "them case-insensitive), so someone invited as ana@example.com cannot sign in as "
        "Ana@example.com, and Cognito cannot change this on an existing pool. To move: note "
        "the users (`dashscale users list`), run `dashscale teardown --all` (it deletes the "
        "pool with its users and the rest of the app), run `dashscale up` (it creates a "
        "case-insensitive pool), then invite everyone again with `dashscale users add` "
        "(they get new temporary passwords)"
    )


def callbacks(ctx: Context) -> list[str]:
    return [f"https://{name}/oauth2/idpresponse" for name in domains(ctx)]


# --- finders --------------------------------------------------------------------------------------


def find_user_pool(ctx: Context) -> dict[str, Any] | None:
    """The user pool APP-users as DescribeUserPool gives it; None when missing."""
    cognito = ctx.client("cognito-idp")
    name = ctx.names.user_pool
    with translated(f"looking up the user pool {name}"):
        for page in cognito.get_paginator("list_user_pools").paginate(MaxResults=60):
            for pool in page.get("UserPools", []):
                if pool.get("Name") == name:
                    described = cognito.describe_user_pool(UserPoolId=pool["Id"])["UserPool"]
                    require_owned(ctx.names, "user pool", name, described.get("UserPoolTags"))
                    return dict(described)
    return None


def find_client(ctx: Context, pool_id: str) -> dict[str, Any] | None:
    """The app client APP-alb of the pool, without its secret (only whether it has one)."""
    cognito = ctx.client("cognito-idp")
    with translated("looking up the user pool's app client"):
        pages = cognito.get_paginator("list_user_pool_clients").paginate(
            UserPoolId=pool_id, MaxResults=60
        )
        for page in pages:
            for client in page.get("UserPoolClients", []):
                if client.get("ClientName") == ctx.names.user_pool_client:
                    described = cognito.describe_user_pool_client(
                        UserPoolId=pool_id, ClientId=client["ClientId"]
                    )["UserPoolClient"]
                    has_secret = bool(described.pop("ClientSecret", None))
                    return {**described, "HasSecret": has_secret}
    return None


def discover(issuer: str) -> dict[str, str]:
    """The issuer and its endpoints from its discovery document, fetched over HTTPS with the
    system's trusted certificates (SSL_CERT_FILE names another bundle, such as a company CA's).
    The document must name OIDC_ISSUER as its issuer (a trailing slash aside: the document's
    spelling is kept, the tokens carry it) and give https:// endpoints: ConfigError otherwise."""
    url = issuer.rstrip("/") + DISCOVERY_PATH
    try:
        with urllib.request.urlopen(
            url, timeout=DISCOVERY_TIMEOUT, context=ssl.create_default_context()
        ) as answer:
            document = json.load(answer)
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise DashscaleError(
            f"cannot read the identity provider's discovery document {url}: {reason}",
            "check OIDC_ISSUER (the issuer URL without /.well-known/...)",
        ) from None
    fields = ("issuer", *ENDPOINTS.values())
    missing = [f for f in fields if not isinstance(document, dict) or not document.get(f)]
    if missing:
        raise ConfigError(
            f"the discovery document {url} lacks {', '.join(missing)}",
            "check OIDC_ISSUER: it must be an OpenID Connect provider",
        )
    named = str(document["issuer"])
    if named.rstrip("/") != issuer.rstrip("/"):
        raise ConfigError(
            f"the discovery document {url} names the issuer {named}, not OIDC_ISSUER {issuer}",
            "set OIDC_ISSUER to the issuer exactly as the provider's discovery document gives it",
        )
    endpoints = {key: str(document[entry]) for key, entry in ENDPOINTS.items()}
    for key, entry in ENDPOINTS.items():
        parsed = urllib.parse.urlsplit(endpoints[key])
        if parsed.scheme != "https" or not parsed.netloc:
            raise ConfigError(
                f"the discovery document {url} gives {entry} {endpoints[key]}, not an https:// URL",
                "the load balancer signs in over HTTPS only: ask the identity provider's "
                "administrators for its HTTPS endpoints",
            )
    return {"Issuer": named, **endpoints}


@dataclass(frozen=True)
class ClientSecret:
    """The OIDC client secret, held for the listener only: its repr never shows the value."""

    value: str = field(repr=False)
    source: str  # "environment" or "stored"


def find_client_secret(ctx: Context) -> ClientSecret | None:
    """OIDC_CLIENT_SECRET from the environment, else the one `dashscale secret set` stored
    (read now, so that a rotated secret is noticed by the plan); None when neither exists."""
    value = os.environ.get(SECRET_VARIABLE)
    if value:
        return ClientSecret(value, "environment")
    value = appconfig.stored_value(ctx, SECRET_VARIABLE)
    return ClientSecret(value, "stored") if value else None


def fingerprint(secret: str, salt: str | None = None) -> str:
    """What the HTTPS listener's tag keeps of the secret AWS never returns: a random salt and a
    slow salted hash (PBKDF2-HMAC-SHA256, truncated), so that anyone who can read the tags
    cannot test guesses of a weak secret cheaply. Never shown."""
    salt = salt or secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt.encode(), FINGERPRINT_ROUNDS)
    return f"{salt}:{digest.hex()[:32]}"


def secret_matches(secret: str, recorded: str | None) -> bool:
    """True when the listener's recorded fingerprint is of `secret`."""
    salt, _, digest = (recorded or "").partition(":")
    return bool(salt and digest) and hmac.compare_digest(fingerprint(secret, salt), recorded or "")


class OidcProvider(Reading):
    """The identity provider's endpoints (AUTH=oidc): its discovery document, not AWS."""

    key = "oidc provider"

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, str]:
        assert ctx.config.oidc_issuer
        return discover(ctx.config.oidc_issuer)


class OidcSecret(Reading):
    """The OIDC client secret (AUTH=oidc), from the environment or the store; None without."""

    find_calls = ("ssm:GetParameter",)

    key = "oidc client secret"

    def find(self, ctx: Context, found: Mapping[str, Any]) -> ClientSecret | None:
        return find_client_secret(ctx)


# --- the resources --------------------------------------------------------------------------------


class UserPool(Resource):
    """APP-users: sign-up by administrators only, email as the user name. Its ref is a Pool."""

    find_calls = ("cognito-idp:ListUserPools", "cognito-idp:DescribeUserPool")
    survey_calls = find_calls
    delete_calls = ("cognito-idp:DeleteUserPool",)

    calls = {
        CREATE: ("cognito-idp:CreateUserPool",),
        UPDATE: (
            "cognito-idp:UpdateUserPool",
            "cognito-idp:GetUserPoolMfaConfig",
            "cognito-idp:SetUserPoolMfaConfig",
        ),
    }
    key = kind = "user pool"
    named = "user_pool"

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        pool = find_user_pool(ctx)
        if pool is not None and case_sensitive(pool):  # a warning: the pool still works
            ctx.ui.warn(case_sensitive_warning(ctx))
        return pool

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        name = self.name(ctx)
        if current is None:
            return create(self.kind, name, "sign-up by administrators only, email as user name")
        if current.get("UsernameAttributes") != ["email"]:
            raise AwsError(f"user pool {name} does not use the email as user name", CANNOT_CHANGE)
        differing = {}
        if not (current.get("AdminCreateUserConfig") or {}).get("AllowAdminCreateUserOnly"):
            differing["sign-up"] = ("anyone", "administrators only")
        users = current.get("EstimatedNumberOfUsers", 0)
        return compare(self.kind, name, differing, f"{current['Id']}, {users} user(s)")

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> Pool:
        cognito = ctx.client("cognito-idp")
        admin_only = {"AllowAdminCreateUserOnly": True}
        with translated(f"setting up the user pool {self.name(ctx)}"):
            if current is None:
                current = cognito.create_user_pool(
                    PoolName=self.name(ctx),
                    AdminCreateUserConfig=admin_only,
                    UsernameAttributes=["email"],
                    # AWS's default is case-sensitive, and it cannot be changed later
                    UsernameConfiguration={"CaseSensitive": False},
                    AutoVerifiedAttributes=["email"],
                    UserPoolTags=ctx.names.tag_map(),
                )["UserPool"]
            else:
                update_pool(cognito, current, ctx)
        return Pool(str(current["Id"]), str(current["Arn"]))

    def ref(self, ctx: Context, current: Any, change: Change) -> Pool:
        return Pool(str(current["Id"]), str(current["Arn"])) if current else Pool(NEW, NEW)

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        """Kept unless --all: it holds the users (and their passwords, MFA, groups)."""
        items = self.found_item(ctx, lambda: find_user_pool(ctx))
        for item in items:
            if item.action == FOREIGN:
                continue
            pool = item.data["resource"]
            users = int(pool.get("EstimatedNumberOfUsers", 0))
            item.data["pool"] = pool["Id"]
            if survey.everything:
                item.reason = f"with its {users} user(s)"
            else:
                item.action, item.reason = KEEP, f"holds {users} user(s); --all deletes it"
        return items

    def delete(self, ctx: Context, item: Item) -> str:
        cognito = ctx.client("cognito-idp")
        pool = item.data["pool"]
        return unless_gone(lambda: cognito.delete_user_pool(UserPoolId=pool), COGNITO_GONE)

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        pool = item.data["resource"]
        return item.name, f"{pool['Id']}, {pool.get('EstimatedNumberOfUsers', 0)} user(s)"

    def when_absent(self, ctx: Context, survey: Survey) -> tuple[str, str, str] | None:
        if survey.of(self.key) or ctx.config.auth != COGNITO:
            return None
        return self.name(ctx), "missing", ""


def client_settings(ctx: Context) -> dict[str, Any]:
    return {
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthScopes": list(SCOPES),
        "AllowedOAuthFlowsUserPoolClient": True,
        "CallbackURLs": callbacks(ctx),
        "SupportedIdentityProviders": ["COGNITO"],
    }


def _same(current: Any, wanted: Any) -> bool:
    if isinstance(wanted, list):
        return sorted(current or []) == sorted(wanted)
    return bool(current == wanted)


class UserPoolClient(Resource):
    """The pool's app client the load balancer signs in with: a secret, the code flow, the
    openid and email scopes, the callbacks of DOMAIN (and www.DOMAIN). Its ref is its id."""

    find_calls = ("cognito-idp:ListUserPoolClients", "cognito-idp:DescribeUserPoolClient")
    survey_calls = find_calls
    delete_calls = ("cognito-idp:DeleteUserPoolClient",)

    calls = {
        CREATE: ("cognito-idp:CreateUserPoolClient",),
        UPDATE: ("cognito-idp:UpdateUserPoolClient",),
    }
    key = kind = "user pool client"
    named = "user_pool_client"
    reads = (UserPool.key,)
    needs = (UserPool.key,)

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        pool = found[UserPool.key]
        return find_client(ctx, str(pool["Id"])) if pool else None

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        name = self.name(ctx)
        detail = "code flow, openid email, with a secret"
        if current is None:
            return create(self.kind, name, detail)
        if not current.get("HasSecret"):
            raise AwsError(
                f"app client {name} has no secret; the load balancer needs one", CANNOT_CHANGE
            )
        differing = {
            field: (current.get(field), wanted)
            for field, wanted in client_settings(ctx).items()
            if not _same(current.get(field), wanted)
        }
        return compare(self.kind, name, differing, detail)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> str:
        cognito = ctx.client("cognito-idp")
        pool: Pool = refs[UserPool.key]
        with translated(f"setting up the app client {self.name(ctx)}"):
            if current is None:
                client = cognito.create_user_pool_client(
                    UserPoolId=pool.id,
                    GenerateSecret=True,
                    ClientName=self.name(ctx),
                    **client_settings(ctx),
                )["UserPoolClient"]
                return str(client["ClientId"])
            cognito.update_user_pool_client(**client_update(cognito, current, pool.id, ctx))
        return str(current["ClientId"])

    def ref(self, ctx: Context, current: Any, change: Change) -> str:
        return str(current["ClientId"]) if current else NEW

    surveys_after = (UserPool.key,)

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        """Deleted even when the pool stays: the listener that signed in with it goes too."""
        pools = [i for i in survey.of(UserPool.key) if i.action != FOREIGN]
        if not pools:
            return []
        pool = pools[0].data["pool"]
        client = find_client(ctx, pool)
        if client is None:
            return []
        data = {"pool": pool, "client": client["ClientId"]}
        reason = "the load balancer's sign-in client"
        return [Item(self.kind, ctx.names.user_pool_client, DELETE, reason, data)]

    def delete(self, ctx: Context, item: Item) -> str:
        cognito = ctx.client("cognito-idp")
        return unless_gone(
            lambda: cognito.delete_user_pool_client(
                UserPoolId=item.data["pool"], ClientId=item.data["client"]
            ),
            COGNITO_GONE,
        )


class UserPoolDomain(Resource):
    """The pool's hosted sign-in pages, PREFIX.auth.REGION.amazoncognito.com (names.py makes
    the prefix). Its ref is the prefix."""

    delete_calls = ("cognito-idp:DeleteUserPoolDomain",)

    calls = {
        CREATE: ("cognito-idp:CreateUserPoolDomain",),
    }
    key = kind = "sign-in domain"
    named = "user_pool"
    reads = (UserPool.key,)
    needs = (UserPool.key,)

    def find(self, ctx: Context, found: Mapping[str, Any]) -> str | None:
        pool = found[UserPool.key]
        return str(pool["Domain"]) if pool and pool.get("Domain") else None

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        if current is None:
            return create(self.kind, self.name(ctx), "hosted sign-in pages")
        where = f"{current}.auth.{ctx.config.aws_region}.amazoncognito.com"
        return compare(self.kind, self.name(ctx), {}, where)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> str:
        pool: Pool = refs[UserPool.key]
        prefix = ctx.names.sign_in_domain(pool.id)
        with translated(f"creating the sign-in domain {prefix}"):
            ctx.client("cognito-idp").create_user_pool_domain(Domain=prefix, UserPoolId=pool.id)
        return prefix

    def ref(self, ctx: Context, current: Any, change: Change) -> str:
        return str(current) if current else NEW

    surveys_after = (UserPool.key,)

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        """Kept with the pool, deleted with it."""
        items = []
        for pool in (i for i in survey.of(UserPool.key) if i.action != FOREIGN):
            prefix = pool.data["resource"].get("Domain")
            if prefix:
                reason = (
                    "kept with the user pool" if pool.action == KEEP else "hosted sign-in pages"
                )
                data = {"pool": pool.data["pool"]}
                items.append(Item(self.kind, str(prefix), pool.action, reason, data))
        return items

    def delete(self, ctx: Context, item: Item) -> str:
        cognito = ctx.client("cognito-idp")
        return unless_gone(
            lambda: cognito.delete_user_pool_domain(UserPoolId=item.data["pool"], Domain=item.name),
            COGNITO_GONE,
        )


RESOURCES: tuple[Resource, ...] = (UserPool(), UserPoolClient(), UserPoolDomain())


def resources(ctx: Context) -> list[Resource]:
    return list(RESOURCES) if ctx.config.auth == COGNITO else []


def readings(ctx: Context) -> list[Reading]:
    return [OidcProvider(), OidcSecret()] if ctx.config.auth == OIDC else []


# --- the listener's actions -----------------------------------------------------------------------


def listener_actions(ctx: Context, refs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The HTTPS listener's default actions: sign-in (order 1) then forward (order 2); forward
    alone with AUTH=none. Without the OIDC client secret: see `with_secret`."""
    forward = forward_action(refs[TargetGroup.key])
    auth = ctx.config.auth
    if auth == COGNITO:
        pool: Pool = refs[UserPool.key]
        first = {
            "Type": "authenticate-cognito",
            "AuthenticateCognitoConfig": {
                "UserPoolArn": pool.arn,
                "UserPoolClientId": refs[UserPoolClient.key],
                "UserPoolDomain": refs[UserPoolDomain.key],
            },
        }
    elif auth == OIDC:
        first = {
            "Type": "authenticate-oidc",
            "AuthenticateOidcConfig": {
                **refs[OidcProvider.key],
                "ClientId": ctx.config.oidc_client_id,
            },
        }
    else:
        return [forward]
    return [{**first, "Order": 1}, {**forward, "Order": 2}]


CONFIG_KEYS = {
    "authenticate-cognito": (
        "AuthenticateCognitoConfig",
        ("UserPoolArn", "UserPoolClientId", "UserPoolDomain"),
    ),
    "authenticate-oidc": ("AuthenticateOidcConfig", ("Issuer", *ENDPOINTS, "ClientId")),
}


def shape(action: Mapping[str, Any]) -> tuple[Any, ...]:
    """What matters of an action for comparing (never the client secret AWS does not return)."""
    kind = action.get("Type")
    if kind == "forward":
        target = action.get("TargetGroupArn")
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups", [])
        return (kind, target or tuple(g.get("TargetGroupArn") for g in groups))
    if kind in CONFIG_KEYS:
        key, fields = CONFIG_KEYS[kind]
        config = action.get(key) or {}
        return (kind, *(config.get(field) for field in fields))
    return (kind,)


def shapes(actions: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    ordered = sorted(actions, key=lambda a: int(a.get("Order") or 0))
    return [shape(action) for action in ordered]


def describe(actions: list[dict[str, Any]]) -> str:
    """The actions as the plan shows them."""
    return " then ".join(str(s[0]) for s in shapes(actions)) or "(none)"


def with_secret(
    ctx: Context,
    actions: list[dict[str, Any]],
    current: list[dict[str, Any]],
    refs: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """The OIDC action with the client secret (the environment's, else the one stored with
    `dashscale secret set OIDC_CLIENT_SECRET`: the OidcSecret reading), or told to keep the
    listener's own when the issuer and client id stay. Stops before any change without one."""
    result = []
    secret: ClientSecret | None = refs.get(OidcSecret.key)
    for action in actions:
        if action["Type"] == "authenticate-oidc":
            config = dict(action["AuthenticateOidcConfig"])
            if secret is not None:
                config["ClientSecret"] = secret.value
            elif keeps_secret(config, current):
                config["UseExistingClientSecret"] = True
            else:
                raise ConfigError(
                    f"AUTH=oidc needs the client secret: {SECRET_VARIABLE} is not set",
                    f"store it with `dashscale secret set {SECRET_VARIABLE}`, or export "
                    f"{SECRET_VARIABLE}=... in the shell that runs dashscale (never in .env), "
                    "then re-run",
                )
            action = {**action, "AuthenticateOidcConfig": config}
        result.append(action)
    return result


def secret_change(ctx: Context, refs: Mapping[str, Any], tags: Mapping[str, str]) -> str | None:
    """How the listener's client secret differs from the one dashscale has (the listener's tag
    keeps its fingerprint: AWS never returns the secret), as the plan shows it; None when the
    same, or when there is none to compare (the listener keeps its own)."""
    secret: ClientSecret | None = refs.get(OidcSecret.key)
    if ctx.config.auth != OIDC or secret is None:
        return None
    recorded = tags.get(FINGERPRINT_TAG)
    if recorded is None:
        return "client secret not recorded yet: written again"
    return None if secret_matches(secret.value, recorded) else "client secret changed"


def keeps_secret(config: Mapping[str, Any], current: list[dict[str, Any]]) -> bool:
    """True when the listener already signs in with this issuer and client id (its secret)."""
    for action in current:
        existing = action.get("AuthenticateOidcConfig") or {}
        if action.get("Type") == "authenticate-oidc" and all(
            existing.get(k) == config[k] for k in ("Issuer", "ClientId")
        ):
            return True
    return False


# --- users (AUTH=cognito) -------------------------------------------------------------------------


def pool_id(ctx: Context) -> str:
    """The pool's id; stops (exit 2) without AUTH=cognito, before any call."""
    if ctx.config.auth != COGNITO:
        raise ConfigError(
            f"`dashscale users` manages the users of AUTH=cognito, but AUTH is {ctx.config.auth}",
            "set AUTH=cognito (with DOMAIN) in .env and run `dashscale up`; with AUTH=oidc "
            "your identity provider manages the users",
        )
    pool = find_user_pool(ctx)
    if pool is None:
        raise DashscaleError(
            f"the user pool {ctx.names.user_pool} does not exist yet", "run `dashscale up` first"
        )
    return str(pool["Id"])


def check_email(email: str) -> str:
    if not EMAIL.fullmatch(email):
        raise ConfigError(f"{email!r} is not an email address", "give one such as ana@example.com")
    return email.lower()


# The IAM actions of `dashscale users add`, `list` and `remove` (dashscale/policy.py): the pool
# found by name, then the user call.
USERS_ADD_CALLS = (*UserPool.find_calls, "cognito-idp:AdminCreateUser")
USERS_LIST_CALLS = (*UserPool.find_calls, "cognito-idp:ListUsers")
USERS_REMOVE_CALLS = (*UserPool.find_calls, "cognito-idp:AdminDeleteUser")


def add_user(ctx: Context, email: str) -> str:
    """Invites EMAIL: Cognito mails a temporary password. Returns what happened."""
    email = check_email(email)
    pool = pool_id(ctx)
    cognito = ctx.client("cognito-idp")
    with translated(f"inviting {email}"):
        try:
            cognito.admin_create_user(
                UserPoolId=pool,
                Username=email,
                UserAttributes=[
                    {"Name": "email", "Value": email},
                    {"Name": "email_verified", "Value": "true"},
                ],
                DesiredDeliveryMediums=["EMAIL"],
            )
        except botocore.exceptions.ClientError as error:
            if error_code(error) == "UsernameExistsException":
                return "already a user"
            raise
    return "invited: Cognito mails a temporary password"


def list_users(ctx: Context) -> list[dict[str, str]]:
    """Every user's email and status (no secret, no password)."""
    pool = pool_id(ctx)
    users = []
    with translated("listing the users"):
        pages = ctx.client("cognito-idp").get_paginator("list_users").paginate(UserPoolId=pool)
        for page in pages:
            for user in page.get("Users", []):
                attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
                users.append(
                    {
                        "email": attributes.get("email", user.get("Username", "")),
                        "status": str(user.get("UserStatus", "")),
                        "enabled": "yes" if user.get("Enabled", True) else "no",
                    }
                )
    return sorted(users, key=lambda u: u["email"])


def remove_user(ctx: Context, email: str) -> None:
    email = check_email(email)
    pool = pool_id(ctx)
    with translated(f"removing {email}"):
        try:
            ctx.client("cognito-idp").admin_delete_user(UserPoolId=pool, Username=email)
        except botocore.exceptions.ClientError as error:
            if error_code(error) == "UserNotFoundException":
                raise DashscaleError(
                    f"{email} is not a user of {ctx.names.user_pool}",
                    "`dashscale users list` shows who is",
                ) from None
            raise

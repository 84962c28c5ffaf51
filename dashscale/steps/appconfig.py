"""The app's own configuration: its environment variables, its secrets and its task role.

- `app.env` (APP_ENV_FILE) lists the container's variables. A value `ssm:NAME` refers to an SSM
  parameter, `secretsmanager:NAME` (or an ARN, optionally `:json-key`) to a Secrets Manager
  secret: ECS reads those when a task starts; their values never pass through dashscale.
- `dashscale secret set NAME` stores a SecureString under /dashscale/APP/NAME: every parameter
  there becomes the secret NAME of the container.
- The execution role (ECS itself) gets the inline policy `dashscale-secrets`: reading exactly
  those parameters and secrets. The task role `APP-REGION-task-role` is what the app's code gets:
  TASK_ROLE_POLICIES attached, TASK_POLICY_FILE inline. Never one widened for the other.

Only names, ARNs and dates are read: no value is ever decrypted, printed or logged.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from dashscale import partition
from dashscale.aws import NotAllowed, error_code, translated
from dashscale.context import Context
from dashscale.errors import ConfigError, DashscaleError
from dashscale.inventory import unless_gone
from dashscale.model import (
    ABSENT,
    CREATE,
    DELETE,
    KEEP,
    NEW,
    UPDATE,
    Change,
    Item,
    Reading,
    Resource,
    Survey,
    absent,
    compare,
    create,
)
from dashscale.steps.iam import policy_document, role_name_of
from dashscale.steps.taskrole import (
    SERVICE_KEY,
    AfterDeployment,
    TaskRole,
    TaskRoleRemoval,
    may_run_older,
)

# Keys of the model (dashscale/model.py); cluster.py's task definition needs these.
SETTINGS_KEY, SECRETS_POLICY_KEY = "app settings", "secrets policy"
EXECUTION_ROLE_KEY, TASK_DEFINITION_KEY = (
    "execution role",
    "task definition",
)  # cluster.ExecutionRole.key (cluster imports this module)

SECRETS_POLICY = "dashscale-secrets"
# Stored secrets that are dashscale's own, for the load balancer: never given to the app.
LOAD_BALANCER_SECRETS = ("OIDC_CLIENT_SECRET",)
SMOKE_PLACEHOLDER = "dashscale-smoke-check"  # what `build`'s smoke check gives each secret
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SSM_PREFIX, SECRETS_MANAGER_PREFIX = "ssm:", "secretsmanager:"


def valid_name(name: str) -> bool:
    """ECS drops a variable whose name is not an identifier, silently: refused up front."""
    return bool(ENV_NAME.fullmatch(name))


def invalid_name(name: str, where: str) -> ConfigError:
    return ConfigError(
        f"{name!r} ({where}) is not a valid environment variable name",
        "use letters, digits and _, not starting with a digit (ECS would drop it silently)",
    )


# --- app.env (local) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AppEnv:
    """app.env as written: plain variables, and references to secrets by name."""

    variables: dict[str, str]
    ssm: dict[str, str]  # variable -> SSM parameter name (or ARN)
    secrets_manager: dict[str, SecretReference]  # variable -> the secret and its fields

    @property
    def secret_names(self) -> list[str]:
        return sorted({*self.ssm, *self.secrets_manager})


def read_app_env(ctx: Context) -> AppEnv:
    """Parses APP_ENV_FILE (none: nothing); raises ConfigError for an invalid name or line."""
    from dotenv import dotenv_values

    path = ctx.config.app_env_path
    variables: dict[str, str] = {}
    ssm: dict[str, str] = {}
    manager: dict[str, SecretReference] = {}
    if not path.is_file():
        if ctx.config.app_env_file != "app.env":  # set explicitly: it must be there
            raise ConfigError(f"APP_ENV_FILE {path}: no such file", "create it or unset it")
        return AppEnv(variables, ssm, manager)
    for name, value in dotenv_values(path).items():
        if not valid_name(name):
            raise invalid_name(name, path.name)
        if value is None:
            raise ConfigError(f"{name} in {path.name} has no value", f"write {name}=VALUE")
        if value.startswith(SSM_PREFIX):
            ssm[name] = value.removeprefix(SSM_PREFIX).strip()
            check_arn_region(ctx, name, ssm[name], "ssm", SSM_PREFIX)
        elif value.startswith(SECRETS_MANAGER_PREFIX):
            manager[name] = secret_reference(ctx, name, value)
        else:
            variables[name] = value
    return AppEnv(variables, ssm, manager)


@dataclass(frozen=True)
class SecretReference:
    """`secretsmanager:NAME-OR-ARN[:json-key[:version-stage[:version-id]]]` from app.env."""

    secret: str  # the secret's name or ARN
    json_key: str = ""
    version_stage: str = ""
    version_id: str = ""

    def value_from(self, arn: str) -> str:
        """ECS's valueFrom: the ARN, then all three fields (empty ones as ::) when any is set."""
        if not (self.json_key or self.version_stage or self.version_id):
            return arn
        return f"{arn}:{self.json_key}:{self.version_stage}:{self.version_id}"


SECRET_FIELDS = "NAME-OR-ARN[:json-key[:version-stage[:version-id]]]"
VERSION_ID = re.compile(r"[A-Za-z0-9-]{32,64}")  # what Secrets Manager's VersionId allows


def secret_and_key(reference: str) -> tuple[str, list[str]]:
    """`NAME[:fields]` or `ARN[:fields]` -> (secret, fields after it); an ARN has seven fields
    of its own (arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME-SUFFIX), and a secret's
    name cannot hold a colon."""
    fields = reference.split(":")
    if reference.startswith("arn:"):
        return ":".join(fields[:7]), fields[7:]
    return fields[0], fields[1:]


def secret_reference(ctx: Context, variable: str, value: str) -> SecretReference:
    """The reference checked for what ECS accepts, before any call: at most three fields, a
    version stage or a version id (not both), an ARN of a secret in AWS_REGION."""
    written = f"{variable}={value}"
    where = ctx.config.app_env_file
    secret, fields = secret_and_key(value.removeprefix(SECRETS_MANAGER_PREFIX).strip())
    if not secret or len(fields) > 3:
        raise ConfigError(
            f"{written} in {where} is not a Secrets Manager reference ECS accepts",
            f"write {variable}={SECRETS_MANAGER_PREFIX}{SECRET_FIELDS} (empty fields as ::)",
        )
    key, stage, version = (*fields, "", "", "")[:3]
    if stage and version:
        raise ConfigError(
            f"{written} in {where} names both a version stage and a version id",
            "ECS takes one of them: keep the stage (such as AWSPREVIOUS) or the id, and leave "
            "the other empty",
        )
    if version and not VERSION_ID.fullmatch(version):
        raise ConfigError(
            f"{written} in {where}: {version!r} is not a secret version id",
            "a version id is 32 to 64 letters, digits and hyphens (see `aws secretsmanager "
            "list-secret-version-ids`)",
        )
    check_arn_region(ctx, variable, secret, "secretsmanager", SECRETS_MANAGER_PREFIX)
    return SecretReference(secret, key, stage, version)


def check_arn_region(
    ctx: Context, variable: str, reference: str, service: str, prefix: str
) -> None:
    """A reference by ARN must name a `service` resource in AWS_REGION's partition and region:
    dashscale checks that it exists and grants the execution role exactly it, in AWS_REGION
    only (refused, not half supported)."""
    fields = partition.arn_fields(reference)
    if fields is None:
        return
    region = ctx.config.aws_region
    home = partition.for_region(region)
    written = f"{variable}={prefix}{reference}"
    if fields[2] != service or not home.owns(reference):
        raise ConfigError(
            f"{written} in {ctx.config.app_env_file} is not a {service} ARN of {home.name}, the "
            f"partition of AWS_REGION={region}",
            f"write {prefix}NAME, or its ARN as {service} shows it",
        )
    if fields[3] != region:
        raise ConfigError(
            f"{written} in {ctx.config.app_env_file} is in {fields[3]}, but the app runs in "
            f"{region}: secrets are read from AWS_REGION only",
            f"replicate or copy it to {region} and refer to that copy",
        )


def check_app_env(ctx: Context) -> None:
    """app.env parsed and its references checked (no AWS call): `up` and `cluster` call it
    first, so that a bad line stops the run before anything is read or changed."""
    read_app_env(ctx)


# --- the settings as ECS will see them ------------------------------------------------------------


@dataclass(frozen=True)
class Secret:
    name: str  # the container's variable
    value_from: str  # what ECS reads it from
    arn: str  # what the execution role must be allowed to read
    source: str  # "stored", "ssm" or "secretsmanager"


@dataclass(frozen=True)
class AppSettings:
    variables: tuple[tuple[str, str], ...] = ()  # sorted by name
    secrets: tuple[Secret, ...] = ()  # sorted by name
    stored: tuple[dict[str, Any], ...] = ()  # the parameters under /dashscale/APP/ (no values)

    def environment(self) -> list[dict[str, str]]:
        return [{"name": name, "value": value} for name, value in self.variables]

    def secret_list(self) -> list[dict[str, str]]:
        return [{"name": s.name, "valueFrom": s.value_from} for s in self.secrets]


def parameter_arn(region: str, account: str, name: str) -> str:
    return partition.for_region(region).arn("ssm", region, account, f"parameter/{name.lstrip('/')}")


def stored_value(ctx: Context, name: str) -> str | None:
    """One stored secret's value, for dashscale's own use (never printed); None when there is
    none."""
    ssm = ctx.client("ssm")
    with translated(f"reading the stored secret {name}"):
        try:
            answer = ssm.get_parameter(Name=ctx.names.secret(name), WithDecryption=True)
        except botocore.exceptions.ClientError as error:
            if error_code(error) != "ParameterNotFound":
                raise
            return None
    return str(answer["Parameter"]["Value"])


def stored_secrets(ctx: Context) -> list[dict[str, Any]]:
    """The parameters `secret set` stored: names, ARNs, dates; values never decrypted."""
    ssm = ctx.client("ssm")
    found: list[dict[str, Any]] = []
    with translated(f"listing the secrets under {ctx.names.secrets_path}"):
        for page in ssm.get_paginator("get_parameters_by_path").paginate(
            Path=ctx.names.secrets_path.rstrip("/"), Recursive=False, WithDecryption=False
        ):
            for parameter in page.get("Parameters", []):
                found.append(
                    {
                        "Name": parameter["Name"],
                        "ARN": parameter.get("ARN"),
                        "LastModifiedDate": parameter.get("LastModifiedDate"),
                        "Version": parameter.get("Version"),
                    }
                )
    return sorted(found, key=lambda p: p["Name"])


def read_settings(ctx: Context) -> AppSettings:
    """app.env and the stored secrets, each referenced secret checked to exist (reads only).
    A bad name or a missing secret is a ConfigError: before anything changes."""
    env = read_app_env(ctx)
    stored = stored_secrets(ctx)
    secrets: dict[str, Secret] = {}
    region = ctx.config.aws_region
    for parameter in stored:
        name = parameter["Name"].removeprefix(ctx.names.secrets_path)
        if name in LOAD_BALANCER_SECRETS:  # the load balancer's (sign-in), not the app's
            continue
        if not valid_name(name):
            raise invalid_name(name, f"stored secret {parameter['Name']}")
        if name in env.variables or name in env.ssm or name in env.secrets_manager:
            raise ConfigError(
                f"{name} is both in {ctx.config.app_env_file} and a stored secret",
                f"remove it from one: `dashscale secret remove {name}` or edit the file",
            )
        arn = parameter["ARN"] or parameter_arn(region, ctx.aws.account_id, parameter["Name"])
        secrets[name] = Secret(name, arn, arn, "stored")
    if env.ssm:
        secrets.update(_ssm_references(ctx, env.ssm))
    for name, reference in env.secrets_manager.items():
        arn = _secret_arn(ctx, name, reference)
        secrets[name] = Secret(name, reference.value_from(arn), arn, "secretsmanager")
    return AppSettings(
        tuple(sorted(env.variables.items())),
        tuple(secrets[name] for name in sorted(secrets)),
        tuple(stored),
    )


def _ssm_references(ctx: Context, references: Mapping[str, str]) -> dict[str, Secret]:
    def parameter_name(reference: str) -> str:
        if reference.startswith("arn:"):
            return "/" + reference.split(":parameter/", 1)[-1]
        return reference

    names = sorted({parameter_name(r) for r in references.values()})
    ssm = ctx.client("ssm")
    existing: set[str] = set()
    with translated("checking the SSM parameters app.env names"):
        for start in range(0, len(names), 50):
            chunk = names[start : start + 50]
            for page in ssm.get_paginator("describe_parameters").paginate(
                ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": chunk}]
            ):
                existing |= {p["Name"] for p in page.get("Parameters", [])}
    missing = [
        f"{v}={SSM_PREFIX}{r}" for v, r in references.items() if parameter_name(r) not in existing
    ]
    if missing:
        raise ConfigError(
            f"{ctx.config.app_env_file} refers to SSM parameters that do not exist in "
            f"{ctx.config.aws_region}: {', '.join(sorted(missing))}",
            "create them (or `dashscale secret set NAME` for one dashscale stores), or fix "
            "the names",
        )
    result = {}
    for variable, reference in references.items():
        if reference.startswith("arn:"):
            arn = reference
        else:
            arn = parameter_arn(ctx.config.aws_region, ctx.aws.account_id, reference)
        result[variable] = Secret(variable, arn, arn, "ssm")
    return result


def _secret_arn(ctx: Context, variable: str, reference: SecretReference) -> str:
    """The secret's full ARN (NAME-SUFFIX), checked to exist, with the version the reference
    names."""
    manager = ctx.client("secretsmanager")
    written = f"{variable}={SECRETS_MANAGER_PREFIX}{reference.secret}"
    with translated(f"checking the Secrets Manager secret {reference.secret}"):
        try:
            answer = manager.describe_secret(SecretId=reference.secret)
        except botocore.exceptions.ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            answer = None
    if answer is None:
        raise ConfigError(
            f"{ctx.config.app_env_file} refers to a Secrets Manager secret that does not exist "
            f"in {ctx.config.aws_region}: {written}",
            "create it, or fix the name",
        )
    versions: dict[str, list[str]] = answer.get("VersionIdsToStages") or {}
    stages = {stage for labels in versions.values() for stage in labels}
    if reference.version_id and versions and reference.version_id not in versions:
        raise ConfigError(
            f"{written} has no version {reference.version_id}",
            "see `aws secretsmanager list-secret-version-ids`, or leave the version id empty",
        )
    if reference.version_stage and versions and reference.version_stage not in stages:
        raise ConfigError(
            f"{written} has no version labelled {reference.version_stage} "
            f"(it has {', '.join(sorted(stages))})",
            "use one of those stages, or leave the version stage empty for AWSCURRENT",
        )
    return str(answer["ARN"])


class Settings(Reading):
    """app.env and the stored secrets, read once for the task definition and the policy."""

    find_calls = (
        "ssm:GetParametersByPath",
        "ssm:DescribeParameters",
        "secretsmanager:DescribeSecret",
    )

    key = SETTINGS_KEY

    def find_permissions(self, ctx: Context) -> tuple[str, ...]:
        # the references of app.env are checked only when it has some
        env = read_app_env(ctx)
        return tuple(
            action
            for action, wanted in zip(
                self.find_calls, (True, bool(env.ssm), bool(env.secrets_manager)), strict=True
            )
            if wanted
        )

    finder = staticmethod(read_settings)


def settings_of(refs: Mapping[str, Any]) -> AppSettings:
    settings = refs.get(Settings.key)
    return settings if isinstance(settings, AppSettings) else AppSettings()


# --- the execution role's secrets policy --------------------------------------------------


def _container_secrets(found: Mapping[str, Any]) -> list[Any]:
    """The secrets the latest task definition names (what its tasks need the policy for)."""
    definition = found.get(TASK_DEFINITION_KEY) or {}
    return [s for c in definition.get("containerDefinitions", []) for s in c.get("secrets") or []]


def secrets_policy(ctx: Context, settings: AppSettings, account: str) -> dict[str, Any] | None:
    """Reading exactly the app's secrets; None when it has none."""
    if not settings.secrets:
        return None
    parameters = sorted({s.arn for s in settings.secrets if s.source == "ssm"})
    if any(s.source == "stored" for s in settings.secrets):
        path = ctx.names.secrets_path.lstrip("/")
        parameters.insert(0, parameter_arn(ctx.config.aws_region, account, f"{path}*"))
    managed = sorted({s.arn for s in settings.secrets if s.source == "secretsmanager"})
    statements = []
    if parameters:
        statements.append(
            {"Effect": "Allow", "Action": ["ssm:GetParameters"], "Resource": parameters}
        )
    if managed:
        statements.append(
            {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": managed}
        )
    return {"Version": "2012-10-17", "Statement": statements}


def _resources(document: dict[str, Any] | None) -> list[str]:
    if not document:
        return []
    found: list[str] = []
    for statement in document.get("Statement", []):
        resource = statement.get("Resource", [])
        found += [resource] if isinstance(resource, str) else list(resource)
    return sorted(found)


def _short(arn: str) -> str:
    """A parameter or secret as the plan shows it: its name."""
    if ":parameter/" in arn:
        return "/" + arn.split(":parameter/", 1)[1]
    if ":secret:" in arn:
        return arn.split(":secret:", 1)[1]
    return arn


class SecretsPolicy(Resource):
    """The execution role's inline policy `dashscale-secrets`: ECS may read the app's secrets."""

    find_calls = ("iam:GetRolePolicy",)

    calls = {
        CREATE: ("iam:PutRolePolicy",),
        UPDATE: ("iam:PutRolePolicy",),
    }
    key = SECRETS_POLICY_KEY
    kind = "IAM policy"
    reads = (EXECUTION_ROLE_KEY, SETTINGS_KEY, TASK_DEFINITION_KEY, SERVICE_KEY)
    needs = (EXECUTION_ROLE_KEY,)

    def name(self, ctx: Context) -> str:
        return f"{ctx.names.execution_role}/{SECRETS_POLICY}"

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        if found.get(EXECUTION_ROLE_KEY) is None:
            return None
        if ctx.config.execution_role_arn:  # the platform's role: its policies are theirs
            platform_secrets_access(ctx, ctx.config.execution_role_arn, settings_of(found))
            return None
        if (
            not settings_of(found).secrets
            and not _container_secrets(found)
            and not may_run_older(found)
        ):
            return None  # no secrets asked for or in use: a no-op `up` spends no call here
        iam = ctx.client("iam")
        with translated(f"reading the policy {self.name(ctx)}"):
            try:
                answer = iam.get_role_policy(
                    RoleName=ctx.names.execution_role, PolicyName=SECRETS_POLICY
                )
            except iam.exceptions.NoSuchEntityException:
                return None
        return {"document": policy_document(answer["PolicyDocument"])}

    def _desired(self, ctx: Context, refs: Mapping[str, Any]) -> dict[str, Any] | None:
        role = str(refs.get(EXECUTION_ROLE_KEY) or "")
        account = role.split(":")[4] if role.startswith("arn:") else NEW
        return secrets_policy(ctx, settings_of(refs), account)

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        desired = self._desired(ctx, refs)
        names = [_short(arn) for arn in _resources(desired)]
        detail = f"reads {len(names)} secret source(s)"
        # None: SecretsPolicyRemoval deletes it, after the deployment; the platform's: none
        if desired is None or ctx.config.execution_role_arn:
            return absent(self.kind, self.name(ctx))
        if current is None:
            return create(self.kind, self.name(ctx), detail)
        have = [_short(arn) for arn in _resources(current["document"])]
        differing = {}
        if current["document"] != desired:
            differing["secrets readable"] = (have, names)
        return compare(self.kind, self.name(ctx), differing, detail)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> Any:
        iam = ctx.client("iam")
        role = ctx.names.execution_role
        with translated(f"setting the policy {self.name(ctx)}"):
            desired = self._desired(ctx, refs)
            iam.put_role_policy(
                RoleName=role, PolicyName=SECRETS_POLICY, PolicyDocument=json.dumps(desired)
            )
        return SECRETS_POLICY

    def ref(self, ctx: Context, current: Any, change: Change) -> Any:
        return None if change.action == ABSENT or current is None else SECRETS_POLICY


# asked only with the platform's execution role and secrets; a denial is a notice, not a stop
SIMULATE_CALLS = ("iam:SimulatePrincipalPolicy",)


def platform_secrets_access(ctx: Context, role_arn: str, settings: AppSettings) -> None:
    """With the platform team's execution role (EXECUTION_ROLE_ARN) and secrets: the exact
    statement the team must attach, printed, and whether the role has it, asked of IAM's policy
    simulator where iam:SimulatePrincipalPolicy is allowed (a notice where it is not). A role
    that cannot read a secret stops the run here, before any change: its tasks would never
    start ("unable to pull secrets")."""
    document = secrets_policy(ctx, settings, role_arn.split(":")[4])
    if document is None:
        return
    name = role_name_of(role_arn)
    ctx.ui.info(
        f"EXECUTION_ROLE_ARN: the platform team's role {name} must allow ECS to read the app's "
        f"secrets; the policy to attach:\n{json.dumps(document, indent=2)}"
    )
    iam, refused = ctx.client("iam"), []
    for statement in document["Statement"]:
        try:
            answer = iam.simulate_principal_policy(
                PolicySourceArn=role_arn,
                ActionNames=statement["Action"],
                ResourceArns=statement["Resource"],
            )
        except NotAllowed:  # every client names denials (dashscale/aws.py name_denials)
            ctx.ui.info(
                f"not allowed to ask IAM's policy simulator (iam:SimulatePrincipalPolicy) about "
                f"{name}: whether it can read the secrets is not checked"
            )
            return
        refused += [
            f"{result['EvalActionName']} on {result.get('EvalResourceName', '*')}"
            for result in answer.get("EvaluationResults", [])
            if result.get("EvalDecision") != "allowed"
        ]
    if refused:
        raise DashscaleError(
            f"EXECUTION_ROLE_ARN: IAM role {name} may not read the app's secrets "
            f"({'; '.join(refused)}): its tasks would never start",
            "ask the platform team to attach the policy printed above, then run again",
        )
    ctx.ui.info(f"{name} may read the app's secrets (checked with IAM's policy simulator)")


class SecretsPolicyRemoval(AfterDeployment):
    """The secrets policy deleted once the app has no secrets, after the new tasks serve."""

    calls = {DELETE: ("iam:DeleteRolePolicy",)}
    key = "secrets policy removal"
    kind = SecretsPolicy.kind
    of = SecretsPolicy()
    reads = (SecretsPolicy.key,)

    def unwanted(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> str | None:
        if current is None or settings_of(refs).secrets or ctx.config.execution_role_arn:
            return None
        return "the app has no secrets"

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> bool:
        iam = ctx.client("iam")
        with (
            translated(f"deleting the policy {self.name(ctx)}"),
            contextlib.suppress(iam.exceptions.NoSuchEntityException),
        ):
            iam.delete_role_policy(RoleName=ctx.names.execution_role, PolicyName=SECRETS_POLICY)
        return True


class StoredSecrets(Resource):
    """The secrets `dashscale secret set` stored under /dashscale/APP/: the app's data, kept by
    teardown unless --all. `up` only reads them (Settings); `secret set` and `secret delete`
    change them."""

    survey_calls = ("ssm:GetParametersByPath",)
    delete_calls = ("ssm:DeleteParameter",)

    key = "stored secrets"
    kind = "SSM parameter"
    deleted_after = (SERVICE_KEY,)  # the running tasks read them until they stop

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        items = []
        for parameter in stored_secrets(ctx):
            if not survey.everything:
                reason = "holds your secrets; --all deletes them"
                items.append(Item(self.kind, parameter["Name"], KEEP, reason))
                continue
            changed = parameter.get("LastModifiedDate")
            reason = f"changed {changed:%Y-%m-%d}" if changed else ""
            items.append(Item(self.kind, parameter["Name"], DELETE, reason))
        return items

    def delete(self, ctx: Context, item: Item) -> str:
        ssm = ctx.client("ssm")
        return unless_gone(lambda: ssm.delete_parameter(Name=item.name), "ParameterNotFound")


# In the order a run makes them, before the task definition (cluster.RESOURCES lists them);
# their removals after the rollout of a task definition without them.
RESOURCES: tuple[Resource, ...] = (
    SecretsPolicy(),
    TaskRole(),
    SecretsPolicyRemoval(),
    TaskRoleRemoval(),
)
OPTIONAL = frozenset(r.key for r in RESOURCES)  # absent unless configured


# --- `dashscale secret` ------------------------------------------------------------


def check_secret_name(name: str) -> str:
    if not valid_name(name):
        raise invalid_name(name, "secret name")
    return name


# The IAM actions of `dashscale secret set`, `list` and `remove` (dashscale/policy.py).
SECRET_SET_CALLS = ("ssm:GetParametersByPath", "ssm:PutParameter", "ssm:AddTagsToResource")
SECRET_LIST_CALLS = ("ssm:GetParametersByPath",)
SECRET_REMOVE_CALLS = ("ssm:DeleteParameter",)


def set_secret(ctx: Context, name: str, value: str) -> bool:
    """Stores `value` as the SecureString /dashscale/APP/NAME (never printed); True when it
    replaced a value (running tasks keep the old one until they restart)."""
    check_secret_name(name)
    if not value:
        raise ConfigError(f"no value given for the secret {name}", "type it, or pipe it on stdin")
    parameter = ctx.names.secret(name)
    ssm = ctx.client("ssm")
    with translated(f"storing the secret {name}"):
        known = {p["Name"] for p in stored_secrets(ctx)}
        ssm.put_parameter(
            Name=parameter,
            Value=value,
            Type="SecureString",
            Overwrite=True,
            Description=f"dashscale: secret {name} of {ctx.names.app}",
        )
        # Tags and Overwrite cannot go in one request
        ssm.add_tags_to_resource(
            ResourceType="Parameter", ResourceId=parameter, Tags=ctx.names.tags()
        )
    new = parameter not in known
    ctx.ui.resource("secret", name, "created" if new else "updated", f"SSM {parameter}")
    if new:
        ctx.ui.info(
            f"{name} is new: run `dashscale up` to give it to the app (it becomes the "
            f"environment variable {name} of new tasks)"
        )
    return not new


def list_secrets(ctx: Context) -> list[dict[str, Any]]:
    stored = stored_secrets(ctx)
    rows = []
    for parameter in stored:
        changed = parameter.get("LastModifiedDate")
        rows.append(
            (
                parameter["Name"].removeprefix(ctx.names.secrets_path),
                f"{changed:%Y-%m-%d %H:%M:%S %Z}".strip() if changed else "",
            )
        )
    ctx.ui.table(f"{ctx.names.app}: {len(rows)} stored secret(s)", ("name", "last changed"), rows)
    return stored


def remove_secret(ctx: Context, name: str) -> None:
    check_secret_name(name)
    ssm = ctx.client("ssm")
    with translated(f"removing the secret {name}"):
        try:
            ssm.delete_parameter(Name=ctx.names.secret(name))
        except ssm.exceptions.ParameterNotFound:
            raise ConfigError(
                f"there is no stored secret {name}", "see `dashscale secret list`"
            ) from None
    ctx.ui.resource("secret", name, "deleted", f"SSM {ctx.names.secret(name)}")
    ctx.ui.info(
        f"run `dashscale up` now: the task definition still names {name}, and new tasks cannot "
        "start while it refers to a secret that is gone"
    )

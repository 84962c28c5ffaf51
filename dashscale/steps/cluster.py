"""`dashscale cluster`: the guide's ECS section up to the task definition.

Security groups, the Fargate cluster, the task execution role, the app's log group and the task
definition for the image. Every resource is found first by exact name and the dashscale:app tag;
only what is missing is created and only what differs is changed, so a re-run makes no change.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import botocore.exceptions

from dashscale.aws import error_code, require_owned, translated
from dashscale.context import Context
from dashscale.errors import AwsError, DashscaleError
from dashscale.plan import NEW, change, is_new
from dashscale.steps.network import (
    Network,
    Outcome,
    SecurityGroups,
    ensure_security_groups,
    find_network,
    find_security_groups,
    report,
)

T = TypeVar("T")

EXECUTION_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
LOG_STREAM_PREFIX = "ecs"  # streams are ecs/CONTAINER/TASK-ID
ROLE_RETRY_ATTEMPTS = 8
ROLE_RETRY_DELAY = 5.0


@dataclass(frozen=True)
class DeployImage:
    """The image to run: a registry URI and the ECS name of its CPU architecture."""

    uri: str
    architecture: str  # X86_64 or ARM64


@dataclass(frozen=True)
class ClusterResult:
    network: Network
    security_groups: SecurityGroups
    cluster_arn: str
    role_arn: str
    log_group: str
    task_definition_arn: str
    image: str
    outcomes: tuple[Outcome, ...] = ()


# --- the image --------------------------------------------------------------------------------


def resolve_image(ctx: Context, uri: str | None) -> DeployImage:
    """`--image URI` as given (architecture from PLATFORM), otherwise what `push` pushed for the
    current content. Never builds or pushes."""
    if uri:
        return DeployImage(uri, ctx.config.architecture)
    from dashscale.steps.push import find_pushed

    pushed = find_pushed(ctx)
    if pushed is None:
        raise DashscaleError(
            "no pushed image for the current content of src/",
            "run `dashscale push` first, or pass --image URI to deploy an image that is "
            "already in a registry",
        )
    return DeployImage(pushed.uri, pushed.architecture)


# --- finders (no changes) -----------------------------------------------------------------------


def find_cluster(ctx: Context) -> dict[str, Any] | None:
    """The ACTIVE cluster APP-cluster, checked to be this app's; None when missing."""
    name = ctx.names.cluster
    with translated(f"looking up ECS cluster {name}"):
        clusters = ctx.client("ecs").describe_clusters(clusters=[name], include=["TAGS"])[
            "clusters"
        ]
    active = [c for c in clusters if c.get("status") == "ACTIVE"]
    if not active:
        return None
    require_owned(ctx.names, "ECS cluster", name, active[0].get("tags"))
    return dict(active[0])


def find_execution_role(ctx: Context) -> dict[str, Any] | None:
    name = ctx.names.execution_role
    iam = ctx.client("iam")
    with translated(f"looking up IAM role {name}"):
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except iam.exceptions.NoSuchEntityException:
            return None
        tags = role.get("Tags")
        if tags is None:  # older answers leave tags out of GetRole
            tags = iam.list_role_tags(RoleName=name).get("Tags", [])
    require_owned(ctx.names, "IAM role", name, tags)
    return dict(role)


def find_log_group(ctx: Context) -> dict[str, Any] | None:
    name = ctx.names.log_group
    logs = ctx.client("logs")
    with translated(f"looking up log group {name}"):
        groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        group = next((g for g in groups if g["logGroupName"] == name), None)
        if group is None:
            return None
        arn = group.get("logGroupArn") or str(group["arn"]).removesuffix(":*")
        tags = logs.list_tags_for_resource(resourceArn=arn).get("tags", {})
    require_owned(ctx.names, "log group", name, tags)
    return dict(group)


def find_task_definition(ctx: Context) -> dict[str, Any] | None:
    """The latest ACTIVE revision of APP-taskdef, checked to be this app's; None when there is
    none."""
    family = ctx.names.taskdef
    ecs = ctx.client("ecs")
    with translated(f"looking up task definition {family}"):
        try:
            answer = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
        except botocore.exceptions.ClientError as error:
            # ECS answers a family with no ACTIVE revision with a bare ClientException, the same
            # code as a refused or malformed request: ask the family's list before calling it
            # "none", so a real error is never taken for a first run.
            if error_code(error) != "ClientException" or _has_active_revision(ecs, family):
                raise
            return None
    definition = dict(answer["taskDefinition"])
    require_owned(
        ctx.names, "task definition", f"{family}:{definition.get('revision')}", answer.get("tags")
    )
    return definition


def _has_active_revision(ecs: Any, family: str) -> bool:
    answer = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE", maxResults=1)
    return bool(answer.get("taskDefinitionArns"))


# --- desired state ----------------------------------------------------------------------------


def trust_policy(account_id: str) -> dict[str, Any]:
    """ECS tasks of this account only may assume the execution role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ],
    }


def container_definition(ctx: Context, image: str) -> dict[str, Any]:
    port = ctx.config.app_port
    return {
        "name": ctx.names.container,
        "image": image,
        "essential": True,
        "portMappings": [{"containerPort": port, "hostPort": port, "protocol": "tcp"}],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": ctx.names.log_group,
                "awslogs-region": ctx.config.aws_region,
                "awslogs-stream-prefix": LOG_STREAM_PREFIX,
            },
        },
    }


def task_definition_request(ctx: Context, image: DeployImage, role_arn: str) -> dict[str, Any]:
    """The RegisterTaskDefinition request for the configuration and the image."""
    return {
        "family": ctx.names.taskdef,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": str(ctx.config.task_cpu),
        "memory": str(ctx.config.task_memory),
        "executionRoleArn": role_arn,
        "runtimePlatform": {
            "cpuArchitecture": image.architecture,
            "operatingSystemFamily": "LINUX",
        },
        "containerDefinitions": [container_definition(ctx, image.uri)],
        "tags": ctx.names.ecs_tags(),
    }


def _container_view(container: dict[str, Any]) -> dict[str, Any]:
    """The fields of a container definition we manage (AWS fills in many others)."""
    log = container.get("logConfiguration") or {}
    return {
        "name": container.get("name"),
        "image": container.get("image"),
        "essential": container.get("essential", True),
        "ports": sorted(
            (int(p["containerPort"]), str(p.get("protocol", "tcp")))
            for p in container.get("portMappings", [])
        ),
        "logs": (log.get("logDriver"), dict(log.get("options") or {})),
    }


def _task_definition_view(definition: dict[str, Any]) -> dict[str, Any]:
    platform = definition.get("runtimePlatform") or {}
    return {
        "image": [c.get("image") for c in definition.get("containerDefinitions", [])],
        "container": [_container_view(c) for c in definition.get("containerDefinitions", [])],
        "cpu": str(definition.get("cpu")),
        "memory": str(definition.get("memory")),
        "network mode": definition.get("networkMode"),
        "launch type": sorted(definition.get("requiresCompatibilities", [])),
        "execution role": definition.get("executionRoleArn"),
        "architecture": (
            platform.get("cpuArchitecture", "X86_64"),
            platform.get("operatingSystemFamily", "LINUX"),
        ),
    }


def task_definition_changes(desired: dict[str, Any], current: dict[str, Any] | None) -> list[str]:
    """Names of what differs between the desired request and a registered revision; the image
    counts once (not again as a container change)."""
    if current is None:
        return ["new"]
    want, have = _task_definition_view(desired), _task_definition_view(current)
    changes = [field for field in want if want[field] != have[field]]
    if "image" in changes and "container" in changes:
        want_rest = [dict(c, image=None) for c in want["container"]]
        have_rest = [dict(c, image=None) for c in have["container"]]
        if want_rest == have_rest:
            changes.remove("container")
    return changes


_CONTAINER_LABELS = {"ports": "container port", "logs": "container logs"}


def task_definition_differences(desired: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs, field by field, as `old → new` (for the plan of a dry run)."""
    want, have = _task_definition_view(desired), _task_definition_view(current)
    differences = []
    for field in task_definition_changes(desired, current):
        if field == "container":
            for old, new in zip(have["container"], want["container"], strict=False):
                for key in new:
                    if key != "image" and old.get(key) != new[key]:
                        label = _CONTAINER_LABELS.get(key, f"container {key}")
                        differences.append(change(label, _plain(old.get(key)), _plain(new[key])))
            if len(have["container"]) != len(want["container"]):
                differences.append(
                    change("containers", len(have["container"]), len(want["container"]))
                )
        elif field == "execution role" and is_new(str(want[field])):
            differences.append(change(field, have[field], f"the new role {NEW}"))
        else:
            differences.append(change(field, _plain(have[field]), _plain(want[field])))
    return differences


def _plain(value: Any) -> Any:
    """Ports shown as 8050/tcp; one-item lists as their item."""
    if isinstance(value, list) and value and all(isinstance(p, tuple) for p in value):
        return [f"{port}/{protocol}" for port, protocol in value]
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


# --- retrying a role ECS cannot use yet --------------------------------------------------------


def role_not_ready(error: botocore.exceptions.ClientError) -> bool:
    """ECS's answer while a new IAM role has not reached every region's cache yet."""
    message = str(error.response.get("Error", {}).get("Message", "")).lower()
    return error_code(error) in ("ClientException", "InvalidParameterException") and (
        "role" in message
    )


def retry_role_not_ready(ctx: Context, call: Callable[[], T], what: str) -> T:
    """Runs an ECS call, retrying briefly while ECS cannot assume a freshly created role."""
    for attempt in range(1, ROLE_RETRY_ATTEMPTS + 1):
        try:
            return call()
        except botocore.exceptions.ClientError as error:
            if not role_not_ready(error) or attempt == ROLE_RETRY_ATTEMPTS:
                raise
            ctx.ui.detail(f"{what}: ECS cannot use the new role yet, retrying ({attempt})")
            ctx.clock.sleep(ROLE_RETRY_DELAY)
    raise AssertionError("unreachable")


# --- ensuring each resource ---------------------------------------------------------------------


def ensure_cluster_only(ctx: Context, outcomes: list[Outcome]) -> str:
    """The ECS cluster; returns its ARN."""
    name = ctx.names.cluster
    cluster = find_cluster(ctx)
    if cluster is not None:
        report(ctx, outcomes, "ECS cluster", name, "found")
        return str(cluster["clusterArn"])
    if ctx.dry_run:
        report(ctx, outcomes, "ECS cluster", name, "created", "Fargate")
        return NEW
    with translated(f"creating ECS cluster {name}"):
        created = ctx.client("ecs").create_cluster(
            clusterName=name, capacityProviders=["FARGATE"], tags=ctx.names.ecs_tags()
        )["cluster"]
    report(ctx, outcomes, "ECS cluster", name, "created", "Fargate")
    return str(created["clusterArn"])


def _policy_document(document: Any) -> Any:
    if isinstance(document, str):
        return json.loads(urllib.parse.unquote(document))
    return document


def ensure_execution_role(ctx: Context, outcomes: list[Outcome]) -> str:
    """The task execution role: trusted by ECS tasks of this account only, with the AWS managed
    task execution policy and nothing else attached. Returns its ARN."""
    name = ctx.names.execution_role
    iam = ctx.client("iam")
    trust = trust_policy(ctx.aws.account_id)
    role = find_execution_role(ctx)
    state = "found"
    if ctx.dry_run:
        return _plan_execution_role(ctx, role, trust, outcomes)
    if role is None:
        with (
            translated(f"creating IAM role {name}"),
            contextlib.suppress(iam.exceptions.EntityAlreadyExistsException),
        ):
            iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust),
                Description=f"dashscale: lets ECS pull {ctx.names.app}'s image and write logs",
                Tags=ctx.names.tags(),
            )
        role = find_execution_role(ctx)
        if role is None:
            raise AwsError(f"IAM role {name} was created but cannot be found", "re-run in a minute")
        state = "created"
    with translated(f"setting up IAM role {name}"):
        if state == "found" and _policy_document(role.get("AssumeRolePolicyDocument")) != trust:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
            state = "updated"
        attached = {
            p["PolicyArn"]
            for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        }
        if EXECUTION_POLICY_ARN not in attached:
            iam.attach_role_policy(RoleName=name, PolicyArn=EXECUTION_POLICY_ARN)
            state = "updated" if state == "found" else state
        for extra in sorted(attached - {EXECUTION_POLICY_ARN}):
            iam.detach_role_policy(RoleName=name, PolicyArn=extra)
            state = "updated" if state == "found" else state
    report(ctx, outcomes, "IAM role", name, state, "AmazonECSTaskExecutionRolePolicy")
    return str(role["Arn"])


def _plan_execution_role(
    ctx: Context, role: dict[str, Any] | None, trust: dict[str, Any], outcomes: list[Outcome]
) -> str:
    """What ensure_execution_role would do, with the differing fields; changes nothing."""
    name = ctx.names.execution_role
    if role is None:
        report(ctx, outcomes, "IAM role", name, "created", "AmazonECSTaskExecutionRolePolicy")
        return NEW
    differences = []
    if _policy_document(role.get("AssumeRolePolicyDocument")) != trust:
        differences.append("trust policy (ECS tasks of this account only)")
    with translated(f"reading the policies of IAM role {name}"):
        attached = {
            p["PolicyArn"]
            for p in ctx.client("iam").list_attached_role_policies(RoleName=name)[
                "AttachedPolicies"
            ]
        }
    if attached != {EXECUTION_POLICY_ARN}:
        differences.append(change("attached policies", sorted(attached), [EXECUTION_POLICY_ARN]))
    state = "updated" if differences else "found"
    report(ctx, outcomes, "IAM role", name, state, "; ".join(differences))
    return str(role["Arn"])


def ensure_log_group(ctx: Context, outcomes: list[Outcome]) -> str:
    name = ctx.names.log_group
    days = ctx.config.log_retention_days
    logs = ctx.client("logs")
    group = find_log_group(ctx)
    state = "found"
    if ctx.dry_run:
        if group is None:
            report(ctx, outcomes, "log group", name, "created", f"kept {days} days")
        elif group.get("retentionInDays") != days:
            note = change("retention days", group.get("retentionInDays"), days)
            report(ctx, outcomes, "log group", name, "updated", note)
        else:
            report(ctx, outcomes, "log group", name, "found", f"kept {days} days")
        return name
    with translated(f"setting up log group {name}"):
        if group is None:
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=name, tags=ctx.names.tag_map())
            group = find_log_group(ctx) or {}
            state = "created"
        if group.get("retentionInDays") != days:
            logs.put_retention_policy(logGroupName=name, retentionInDays=days)
            state = "updated" if state == "found" else state
    report(ctx, outcomes, "log group", name, state, f"kept {days} days")
    return name


def ensure_task_definition(
    ctx: Context, image: DeployImage, role_arn: str, outcomes: list[Outcome]
) -> str:
    """Registers a new revision only when the latest ACTIVE one differs; returns the ARN of the
    revision to run."""
    desired = task_definition_request(ctx, image, role_arn)
    current = find_task_definition(ctx)
    changes = task_definition_changes(desired, current)
    if current is not None and not changes:
        report(ctx, outcomes, "task definition", _revision_name(current), "found", image.uri)
        return str(current["taskDefinitionArn"])
    if ctx.dry_run:
        family = ctx.names.taskdef
        if current is None:
            report(ctx, outcomes, "task definition", f"{family}:{NEW}", "created", image.uri)
        else:
            note = "; ".join(task_definition_differences(desired, current))
            report(ctx, outcomes, "task definition", _revision_name(current), "updated", note)
        return f"{family}:{NEW}"
    ecs = ctx.client("ecs")
    with translated(f"registering task definition {ctx.names.taskdef}"):
        registered = retry_role_not_ready(
            ctx,
            lambda: ecs.register_task_definition(**desired)["taskDefinition"],
            "registering the task definition",
        )
    _deregister_duplicates(ctx, desired, registered, current)
    state = "created" if current is None else "updated"
    note = image.uri if current is None else f"{', '.join(changes)} changed; {image.uri}"
    report(ctx, outcomes, "task definition", _revision_name(registered), state, note)
    return str(registered["taskDefinitionArn"])


def _deregister_duplicates(
    ctx: Context,
    desired: dict[str, Any],
    registered: dict[str, Any],
    previous: dict[str, Any] | None,
) -> None:
    """RegisterTaskDefinition has no idempotency token: when its answer is lost, botocore's
    retry registers the same definition again. Identical revisions newer than the previous one,
    other than the one we use, are such duplicates: deregister them."""
    ecs = ctx.client("ecs")
    floor = int(previous["revision"]) if previous else 0
    with translated(f"checking {ctx.names.taskdef} for duplicate revisions"):
        arns = ecs.list_task_definitions(
            familyPrefix=ctx.names.taskdef, status="ACTIVE", sort="DESC"
        )["taskDefinitionArns"]
        for arn in arns:
            family, _, revision = arn.rsplit("/", 1)[-1].rpartition(":")
            if family != ctx.names.taskdef or int(revision) <= floor:
                continue
            if arn == registered["taskDefinitionArn"]:
                continue
            other = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            if not task_definition_changes(desired, other):
                ecs.deregister_task_definition(taskDefinition=arn)
                ctx.ui.detail(f"deregistered {family}:{revision}, a duplicate of a retried request")


def _revision_name(definition: dict[str, Any]) -> str:
    return f"{definition['family']}:{definition['revision']}"


# --- the step -------------------------------------------------------------------------------------


def check_ownership(ctx: Context, network: Network) -> None:
    """Runs every finder of this step, so a resource under one of our names that is not this
    app's stops the run before anything changes."""
    find_security_groups(ctx, network)
    find_cluster(ctx)
    find_execution_role(ctx)
    find_log_group(ctx)
    find_task_definition(ctx)


def ensure_cluster(ctx: Context, image: DeployImage) -> ClusterResult:
    """The whole `cluster` section: network, security groups, cluster, role, logs, task
    definition."""
    ctx.ui.step(f"Cluster {ctx.names.cluster} in {ctx.config.aws_region}")
    outcomes: list[Outcome] = []
    network = find_network(ctx)
    ctx.ui.detail(f"VPC {network.vpc_id}, subnets {', '.join(network.subnet_ids)}")
    check_ownership(ctx, network)
    groups = ensure_security_groups(ctx, network, outcomes)
    cluster_arn = ensure_cluster_only(ctx, outcomes)
    role_arn = ensure_execution_role(ctx, outcomes)
    log_group = ensure_log_group(ctx, outcomes)
    task_definition_arn = ensure_task_definition(ctx, image, role_arn, outcomes)
    return ClusterResult(
        network=network,
        security_groups=groups,
        cluster_arn=cluster_arn,
        role_arn=role_arn,
        log_group=log_group,
        task_definition_arn=task_definition_arn,
        image=image.uri,
        outcomes=tuple(outcomes),
    )


def existing_cluster(ctx: Context) -> ClusterResult:
    """What `cluster` made, found without any change (for `dashscale alb` on its own)."""
    network = find_network(ctx)
    groups = find_security_groups(ctx, network)
    cluster = find_cluster(ctx)
    role = find_execution_role(ctx)
    definition = find_task_definition(ctx)
    missing = [
        label
        for label, found in (
            ("security groups", groups),
            ("ECS cluster", cluster),
            ("task execution role", role),
            ("task definition", definition),
        )
        if found is None
    ]
    if missing or groups is None or cluster is None or role is None or definition is None:
        raise DashscaleError(
            f"the cluster is not set up yet: {', '.join(missing)} missing",
            "run `dashscale cluster` (or `dashscale up`) first",
        )
    images = [c.get("image", "") for c in definition.get("containerDefinitions", [])]
    return ClusterResult(
        network=network,
        security_groups=groups,
        cluster_arn=str(cluster["clusterArn"]),
        role_arn=str(role["Arn"]),
        log_group=ctx.names.log_group,
        task_definition_arn=str(definition["taskDefinitionArn"]),
        image=images[0] if images else "",
    )

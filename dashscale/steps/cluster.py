"""`dashscale cluster`: the guide's ECS section up to the task definition.

Declared here: the Fargate cluster, the task execution role, the app's log group and the task
definition (a new revision only when the latest differs; duplicates of a retried register are
deregistered), with their finders, which status, survey and logs use too. The section
(RESOURCES) adds the security groups of network.py and appconfig.py's resources (the secrets
policy and the task role, made or removed as configured), in the order a run makes them;
`cluster_section` runs it for the `cluster` command.

Also here: DeployImage (the image a task runs) and `resolve_image` (`--image URI`, or what `push`
pushed for the current content); the RegisterTaskDefinition request and its comparison with a
registered revision, field by field for a dry run (variables and secrets by name, never a value);
and the retry while ECS cannot use a freshly made role yet, which service.py uses too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import botocore.exceptions

from dashscale import partition
from dashscale.aws import error_code, require_owned, translated
from dashscale.context import Context
from dashscale.driver import section
from dashscale.errors import AwsError, DashscaleError
from dashscale.inventory import retrying, unless_gone
from dashscale.model import (
    CREATE,
    DELETE,
    FOREIGN,
    NEW,
    UPDATE,
    Change,
    Item,
    Reading,
    Resource,
    Survey,
    change,
    compare,
    create,
    is_new,
    not_ours,
)
from dashscale.steps import appconfig, cache
from dashscale.steps.appconfig import SECRETS_POLICY_KEY, SETTINGS_KEY
from dashscale.steps.cache import CACHE_KEY, REDIS_URL
from dashscale.steps.iam import Role, platform_role
from dashscale.steps.network import (
    AlbSecurityGroup,
    NetworkReading,
    SecurityGroupsReading,
    TaskSecurityGroup,
)
from dashscale.steps.taskrole import TASK_ROLE_KEY

T = TypeVar("T")

EXECUTION_POLICY = "service-role/AmazonECSTaskExecutionRolePolicy"  # AWS managed
LOG_STREAM_PREFIX = "ecs"  # streams are ecs/CONTAINER/TASK-ID
ROLE_RETRY_ATTEMPTS = 8
ROLE_RETRY_DELAY = 5.0


def execution_policy_arn(ctx: Context) -> str:
    return partition.for_region(ctx.config.aws_region).managed_policy(EXECUTION_POLICY)


@dataclass(frozen=True)
class DeployImage:
    """The image to run: a registry URI and the ECS name of its CPU architecture."""

    uri: str
    architecture: str  # X86_64 or ARM64


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


def find_task_definition(ctx: Context, family: str | None = None) -> dict[str, Any] | None:
    """The latest ACTIVE revision of APP-taskdef (or of `family`), checked to be this app's;
    None when there is none."""
    family = family or ctx.names.taskdef
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


def container_definition(
    ctx: Context, image: str, settings: Any = None, redis_url: str | None = None
) -> dict[str, Any]:
    """The app's container; `settings` (appconfig.AppSettings) gives its variables and secrets,
    `redis_url` the shared cache's address (CACHE=redis) as REDIS_URL."""
    port = ctx.config.app_port
    configured: dict[str, Any] = {}
    environment = settings.environment() if settings is not None and settings.variables else []
    if redis_url:
        environment = [e for e in environment if e["name"] != REDIS_URL]
        environment.append({"name": REDIS_URL, "value": redis_url})
    if environment:
        configured["environment"] = environment
    if settings is not None and settings.secrets:
        configured["secrets"] = settings.secret_list()
    return {
        "name": ctx.names.container,
        "image": image,
        "essential": True,
        "portMappings": [{"containerPort": port, "hostPort": port, "protocol": "tcp"}],
        **configured,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": ctx.names.log_group,
                "awslogs-region": ctx.config.aws_region,
                "awslogs-stream-prefix": LOG_STREAM_PREFIX,
            },
        },
    }


def task_definition_request(
    ctx: Context,
    image: DeployImage,
    role_arn: str,
    settings: Any = None,
    task_role_arn: str | None = None,
    redis_url: str | None = None,
) -> dict[str, Any]:
    """The RegisterTaskDefinition request for the configuration and the image; `settings`
    (appconfig.AppSettings) gives the container's variables and secrets, `redis_url` the
    shared cache's address."""
    task_role = {"taskRoleArn": task_role_arn} if task_role_arn else {}
    return {
        "family": ctx.names.taskdef,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": str(ctx.config.task_cpu),
        "memory": str(ctx.config.task_memory),
        "executionRoleArn": role_arn,
        **task_role,
        "runtimePlatform": {
            "cpuArchitecture": image.architecture,
            "operatingSystemFamily": "LINUX",
        },
        "containerDefinitions": [container_definition(ctx, image.uri, settings, redis_url)],
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
        "environment": sorted(
            (e["name"], e.get("value", "")) for e in container.get("environment") or []
        ),
        "secrets": sorted((s["name"], s["valueFrom"]) for s in container.get("secrets") or []),
        "command": list(container.get("command") or []),
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
        "task role": definition.get("taskRoleArn"),
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
                    if key in ("environment", "secrets") and old.get(key) != new[key]:
                        differences.append(_names_changed(key, old.get(key), new[key]))
                    elif key != "image" and old.get(key) != new[key]:
                        label = _CONTAINER_LABELS.get(key, f"container {key}")
                        differences.append(change(label, _plain(old.get(key)), _plain(new[key])))
            if len(have["container"]) != len(want["container"]):
                differences.append(
                    change("containers", len(have["container"]), len(want["container"]))
                )
        elif field in ("execution role", "task role") and is_new(str(want[field])):
            differences.append(change(field, have[field], f"the new role {NEW}"))
        else:
            differences.append(change(field, _plain(have[field]), _plain(want[field])))
    return differences


def _names_changed(key: str, old: Any, new: Any) -> str:
    """Which variables or secrets are added, removed or changed: by NAME, never a value."""
    have, want = dict(old or []), dict(new or [])
    parts = []
    for label, names in (
        ("added", sorted(set(want) - set(have))),
        ("removed", sorted(set(have) - set(want))),
        ("changed", sorted(n for n in set(want) & set(have) if want[n] != have[n])),
    ):
        if names:
            parts.append(f"{label} {', '.join(names)}")
    what = "variables" if key == "environment" else "secrets"
    return f"{what}: {'; '.join(parts)}"


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


# --- the resources ------------------------------------------------------------------------------


class Cluster(Resource):
    """The Fargate cluster APP-cluster."""

    find_calls = ("ecs:DescribeClusters",)
    survey_calls = find_calls
    delete_calls = ("ecs:DeleteCluster",)

    calls = {
        CREATE: (
            "ecs:CreateCluster",
            "ecs:TagResource",
        ),
    }
    key = kind = "ECS cluster"
    named = "cluster"

    finder = staticmethod(find_cluster)

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        if current is None:
            return create(self.kind, self.name(ctx), "Fargate")
        return compare(self.kind, self.name(ctx), {})

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> str:
        with translated(f"creating ECS cluster {self.name(ctx)}"):
            created = ctx.client("ecs").create_cluster(
                clusterName=self.name(ctx), capacityProviders=["FARGATE"], tags=ctx.names.ecs_tags()
            )["cluster"]
        return str(created["clusterArn"])

    def ref(self, ctx: Context, current: Any, change: Change) -> str:
        return str(current["clusterArn"]) if current else NEW

    missing_shown = True

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        return self.found_item(ctx, lambda: find_cluster(ctx))

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        return item.name, "ACTIVE"

    def delete(self, ctx: Context, item: Item) -> str:
        ecs = ctx.client("ecs")
        name = self.name(ctx)
        return retrying(
            ctx,
            f"deleting cluster {name}",
            lambda: ecs.delete_cluster(cluster=name),
            ("ClusterContainsServicesException", "ClusterContainsTasksException"),
            gone="ClusterNotFoundException",
        )


class ExecutionRole(Role):
    """The task execution role: what ECS itself uses to pull the image, write the logs and read
    the secrets (appconfig's SecretsPolicy, an inline policy of its own); the AWS managed task
    execution policy and nothing else attached."""

    calls = {
        CREATE: ("iam:CreateRole", "iam:TagRole", "iam:AttachRolePolicy"),
        UPDATE: ("iam:UpdateAssumeRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy"),
    }
    key = "execution role"
    named = "execution_role"
    platform = "EXECUTION_ROLE_ARN"

    def description(self, ctx: Context) -> str:
        return f"dashscale: lets ECS pull {ctx.names.app}'s image and write logs"

    def attached(self, ctx: Context) -> list[str]:
        return [execution_policy_arn(ctx)]

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        arn = self.platform_arn(ctx)
        return platform_role(ctx, self.platform, arn) if arn else self.read(ctx)

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        if self.platform_arn(ctx):
            return item.name, f"task execution; {item.reason}"
        return item.name, "task execution"


class LogGroup(Resource):
    """The app's log group, kept LOG_RETENTION_DAYS days."""

    find_calls = ("logs:DescribeLogGroups", "logs:ListTagsForResource")
    survey_calls = find_calls
    delete_calls = ("logs:DeleteLogGroup",)

    calls = {
        CREATE: (
            "logs:CreateLogGroup",
            "logs:TagResource",
            "logs:PutRetentionPolicy",
        ),
        UPDATE: ("logs:PutRetentionPolicy",),
    }
    key = kind = "log group"
    named = "log_group"

    finder = staticmethod(find_log_group)

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        days = ctx.config.log_retention_days
        detail = f"kept {days} days"
        if current is None:
            return create(self.kind, self.name(ctx), detail)
        differing = {}
        if current.get("retentionInDays") != days:
            differing["retention days"] = (current.get("retentionInDays"), days)
        return compare(self.kind, self.name(ctx), differing, detail)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> str:
        name = self.name(ctx)
        logs = ctx.client("logs")
        with translated(f"setting up log group {name}"):
            if current is None:
                with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                    logs.create_log_group(logGroupName=name, tags=ctx.names.tag_map())
            logs.put_retention_policy(
                logGroupName=name, retentionInDays=ctx.config.log_retention_days
            )
        return name

    def ref(self, ctx: Context, current: Any, change: Change) -> str:
        return self.name(ctx)

    missing_shown = True

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        keep = "" if survey.everything else "holds your app's logs; --all deletes it"
        return self.found_item(ctx, lambda: find_log_group(ctx), keep=keep)

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        return item.name, f"kept {item.data['resource'].get('retentionInDays', 'forever')} days"

    def delete(self, ctx: Context, item: Item) -> str:
        logs = ctx.client("logs")
        return unless_gone(
            lambda: logs.delete_log_group(logGroupName=self.name(ctx)), "ResourceNotFoundException"
        )


class TaskDefinition(Resource):
    """APP-taskdef: a new revision only when the latest ACTIVE one differs."""

    find_calls = ("ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions")
    survey_calls = find_calls
    delete_calls = ("ecs:DeregisterTaskDefinition", "ecs:DeleteTaskDefinitions")

    calls = {
        CREATE: (
            "ecs:RegisterTaskDefinition",
            "ecs:TagResource",
            "ecs:DeregisterTaskDefinition",
        ),
        UPDATE: (
            "ecs:RegisterTaskDefinition",
            "ecs:TagResource",
            "ecs:DeregisterTaskDefinition",
        ),
    }
    redeploy_calls = calls[UPDATE]  # a new image is a new revision
    key = kind = "task definition"
    # with CACHE=redis, the cache's address (REDIS_URL): the one thing of `up` that waits for it
    needs = ("image", ExecutionRole.key, LogGroup.key, SECRETS_POLICY_KEY, TASK_ROLE_KEY, CACHE_KEY)
    named = "taskdef"

    def desired(self, ctx: Context, refs: Mapping[str, Any]) -> dict[str, Any]:
        return task_definition_request(
            ctx,
            refs["image"],
            refs[ExecutionRole.key],
            refs.get(SETTINGS_KEY),
            refs.get(TASK_ROLE_KEY),
            refs.get(CACHE_KEY),
        )

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        return find_task_definition(ctx, self.name(ctx))

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        image: DeployImage = refs["image"]
        desired = self.desired(ctx, refs)
        if current is None:
            return create(self.kind, f"{self.name(ctx)}:{NEW}", image.uri)
        name = _revision_name(current)
        changes = task_definition_changes(desired, current)
        if not changes:
            return compare(self.kind, name, {}, image.uri)
        differences = tuple(task_definition_differences(desired, current))
        return Change(self.kind, name, UPDATE, differences, image.uri, frozenset(changes))

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> str:
        desired = self.desired(ctx, refs)
        ecs = ctx.client("ecs")
        with translated(f"registering task definition {self.name(ctx)}"):
            registered = retry_role_not_ready(
                ctx,
                lambda: ecs.register_task_definition(**desired)["taskDefinition"],
                "registering the task definition",
            )
        _deregister_duplicates(ctx, desired, registered, current)
        ctx.ui.detail(f"registered {_revision_name(registered)}")
        return str(registered["taskDefinitionArn"])

    def ref(self, ctx: Context, current: Any, change: Change) -> str:
        if current is None or change.changes_aws:
            return f"{self.name(ctx)}:{NEW}"
        return str(current["taskDefinitionArn"])

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        """Every revision of the family, ACTIVE and INACTIVE; the latest one's tags decide."""
        family = self.name(ctx)
        revisions = {
            status: family_revisions(ctx, status, family) for status in ("ACTIVE", "INACTIVE")
        }
        arns = revisions["ACTIVE"] + revisions["INACTIVE"]
        if not arns:
            return []
        # the newest ACTIVE revision (what `up` compares with), else the newest of all
        latest = max(revisions["ACTIVE"] or arns, key=lambda arn: int(arn.rsplit(":", 1)[-1]))
        with translated(f"reading task definition {family}"):
            described = ctx.client("ecs").describe_task_definition(
                taskDefinition=latest, include=["TAGS"]
            )
        if not ctx.names.owns(described.get("tags")):
            return [Item(self.kind, family, FOREIGN, not_ours(ctx))]
        data = {
            "arns": arns,
            "active": revisions["ACTIVE"],
            "newest": described["taskDefinition"] if revisions["ACTIVE"] else None,
        }
        return [Item(self.kind, family, DELETE, f"{len(arns)} revision(s)", data)]

    missing_shown = True

    def status_state(self, ctx: Context, item: Item) -> str:
        return "found" if item.data["newest"] is not None else "missing"

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        newest = item.data["newest"]
        if newest is None:
            return item.name, f"{len(item.data['arns'])} inactive revision(s)"
        images = ", ".join(str(c.get("image")) for c in newest.get("containerDefinitions", []))
        return item.name, f"revision {newest.get('revision')}: {images}"

    def delete(self, ctx: Context, item: Item) -> str:
        """Every revision deregistered, then deleted (AWS deletes only INACTIVE revisions)."""
        ecs = ctx.client("ecs")
        arns: list[str] = item.data["arns"]
        for arn in item.data["active"]:
            ecs.deregister_task_definition(taskDefinition=arn)
        failures: list[dict[str, Any]] = []
        for start in range(0, len(arns), TASK_DEFINITION_BATCH):
            answer = ecs.delete_task_definitions(
                taskDefinitions=arns[start : start + TASK_DEFINITION_BATCH]
            )
            failures += answer.get("failures", [])
        if not failures:
            return f"{len(arns)} revision(s) deregistered and deleted"
        # A revision deleted meanwhile fails too; what is still listed has really failed.
        family = self.name(ctx)
        left = {
            *family_revisions(ctx, "ACTIVE", family),
            *family_revisions(ctx, "INACTIVE", family),
        }
        failed = [f for f in failures if f.get("arn") in left]
        if failed:
            reasons = "; ".join(f"{f['arn'].rsplit('/', 1)[-1]}: {f.get('reason')}" for f in failed)
            raise AwsError(
                f"AWS did not delete {len(failed)} revision(s) of {family}: {reasons}",
                "run `dashscale teardown` again; a revision still used by a task is deleted "
                "once the task stops",
            )
        return f"{len(arns)} revision(s) deregistered and deleted"


TASK_DEFINITION_BATCH = 10  # DeleteTaskDefinitions takes at most ten


def family_revisions(ctx: Context, status: str, family: str | None = None) -> list[str]:
    """The ARNs of the app's task definition revisions in `status` (ACTIVE or INACTIVE), of
    APP-taskdef or `family`."""
    family = family or ctx.names.taskdef
    with translated(f"listing the revisions of task definition {family}"):
        pages = (
            ctx.client("ecs")
            .get_paginator("list_task_definitions")
            .paginate(familyPrefix=family, status=status)
        )
        # familyPrefix matches prefixes (APP-taskdef2...): keep this exact family only
        return [
            arn
            for page in pages
            for arn in page["taskDefinitionArns"]
            if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family
        ]


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
    ours = desired["family"]
    with translated(f"checking {ours} for duplicate revisions"):
        arns = ecs.list_task_definitions(familyPrefix=ours, status="ACTIVE", sort="DESC")[
            "taskDefinitionArns"
        ]
        for arn in arns:
            family, _, revision = arn.rsplit("/", 1)[-1].rpartition(":")
            if family != ours or int(revision) <= floor:
                continue
            if arn == registered["taskDefinitionArn"]:
                continue
            other = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            if not task_definition_changes(desired, other):
                ecs.deregister_task_definition(taskDefinition=arn)
                ctx.ui.detail(f"deregistered {family}:{revision}, a duplicate of a retried request")


def _revision_name(definition: dict[str, Any]) -> str:
    return f"{definition['family']}:{definition['revision']}"


# The guide's cluster section, in the order a run makes them.
RESOURCES: tuple[Resource, ...] = (
    AlbSecurityGroup(),
    TaskSecurityGroup(),
    Cluster(),
    ExecutionRole(),
    LogGroup(),
    *appconfig.RESOURCES,
    *cache.RESOURCES,
    TaskDefinition(),
)
READINGS: tuple[Reading, ...] = (NetworkReading(), SecurityGroupsReading(), appconfig.Settings())


def cluster_section(ctx: Context, image: DeployImage) -> str | None:
    """The `cluster` command: network, security groups, cluster, role, logs, task definition.
    Returns the task definition's ARN (None for a dry run)."""
    ctx.ui.step(f"Cluster {ctx.names.cluster} in {ctx.config.aws_region}")
    appconfig.check_app_env(ctx)  # a bad app.env line stops the run before any AWS call
    applied = section(ctx, READINGS, RESOURCES, given={"image": image})
    return None if applied is None else str(applied.results[TaskDefinition.key])

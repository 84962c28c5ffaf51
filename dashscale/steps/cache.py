"""The shared cache (CACHE=redis): an ElastiCache replication group every task reaches.

Three resources of the model: the cache's security group `APP-cache-sg` (its port, from the
tasks' security group only), its subnet group `APP-cache-subnets` (the app's subnets) and the
replication group `APP-cache` itself (Valkey, one node of CACHE_NODE_TYPE, encrypted at rest and
in transit: ElastiCache encrypts only replication groups, and only with a subnet group). Its ref
is the app's REDIS_URL, the `rediss://` primary endpoint: the task definitions need it, and
nothing else of `up` does, so the minutes AWS takes to make the cache pass while the load
balancer, the certificate and the image are made (its turn waits, the rest goes on).

With CACHE unset, whatever an earlier run made is deleted: the cache holds only cached data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import botocore.exceptions

from dashscale.aws import error_code, require_owned, translated
from dashscale.context import Context
from dashscale.errors import AwsError, DashscaleError
from dashscale.inventory import retrying, wait_for
from dashscale.model import (
    CREATE,
    DELETE,
    NEW,
    UPDATE,
    Change,
    Item,
    Resource,
    Survey,
    absent,
    compare,
    create,
)
from dashscale.steps.network import Network, Rule, SecurityGroup, TaskSecurityGroup

CACHE_KEY = "cache"
REDIS_URL = "REDIS_URL"  # the tasks' variable with the cache's address
ENGINE = "valkey"  # Redis OSS compatible; ElastiCache bills it about a fifth less than Redis OSS
PORT = 6379
POLL_SECONDS = 15.0
GROUP_GONE = "ReplicationGroupNotFoundFault"
SUBNETS_GONE = "CacheSubnetGroupNotFoundFault"
CACHE_IS_DATA = "a cache: its cached data goes with it"


def redis_url(group: Mapping[str, Any]) -> str | None:
    """The `rediss://` URL of the group's primary endpoint; None until AWS gives one. Celery's
    Redis backend refuses a rediss:// URL that does not say how to check the certificate."""
    for node_group in group.get("NodeGroups") or []:
        endpoint = node_group.get("PrimaryEndpoint") or {}
        if endpoint.get("Address"):
            port = endpoint.get("Port") or PORT
            return f"rediss://{endpoint['Address']}:{port}/0?ssl_cert_reqs=required"
    return None


def describe_cache(ctx: Context) -> dict[str, Any] | None:
    """APP-cache as AWS describes it, in any state, with its tags; None when there is none."""
    client = ctx.client("elasticache")
    with translated(f"looking up cache {ctx.names.cache}"):
        try:
            groups = client.describe_replication_groups(ReplicationGroupId=ctx.names.cache)
        except botocore.exceptions.ClientError as error:
            if error_code(error) == GROUP_GONE:
                return None
            raise
        group = dict(groups["ReplicationGroups"][0])
        group["Tags"] = client.list_tags_for_resource(ResourceName=group["ARN"]).get("TagList")
    return group


def find_cache(ctx: Context) -> dict[str, Any] | None:
    """APP-cache, checked to be this app's; None when missing. One still being deleted stops
    the run: its name is not free yet."""
    group = describe_cache(ctx)
    if group is None:
        return None
    require_owned(ctx.names, "cache", ctx.names.cache, group.get("Tags"))
    if group.get("Status") == "deleting":
        raise AwsError(
            f"cache {ctx.names.cache} is still being deleted",
            "wait a few minutes until it is gone, then re-run",
        )
    return group


def may_exist(ctx: Context, found: Mapping[str, Any]) -> bool:
    """Whether `up` must look for the cache and its subnet group: with CACHE=redis, or when its
    security group is there (made before them, deleted after them). So an app that never used
    the cache pays no read for it."""
    groups = found.get("security groups")
    return ctx.config.redis or groups is None or ctx.names.cache_sg in groups


def cache_exists(ctx: Context) -> bool:
    return describe_cache(ctx) is not None


def wanted(ctx: Context) -> str:
    return f"{ENGINE}, {ctx.config.cache_node_type}, encrypted at rest and in transit"


ENCRYPTION = (
    ("encryption at rest", "AtRestEncryptionEnabled"),
    ("encryption in transit", "TransitEncryptionEnabled"),
)


def fixed_differences(group: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """What AWS cannot change on an existing group, where it differs from what dashscale makes."""
    differing: dict[str, tuple[Any, Any]] = {}
    if str(group.get("Engine", ENGINE)).lower() != ENGINE:
        differing["engine"] = (group.get("Engine"), ENGINE)
    for label, field in ENCRYPTION:
        if group.get(field) is not True:
            differing[label] = ("off", "on")
    return differing


class ReplicationGroup(Resource):
    """APP-cache. Its ref is REDIS_URL (None with CACHE unset): its turn waits until AWS has
    made the cache, and only the task definitions need it."""

    calls = {
        CREATE: (
            "elasticache:CreateReplicationGroup",
            "elasticache:AddTagsToResource",
        ),
        UPDATE: ("elasticache:ModifyReplicationGroup",),
        DELETE: (
            "elasticache:DeleteReplicationGroup",
            "elasticache:DeleteCacheSubnetGroup",
            "ec2:DeleteSecurityGroup",
        ),
    }
    find_calls = ("elasticache:DescribeReplicationGroups", "elasticache:ListTagsForResource")
    survey_calls = find_calls
    delete_calls = ("elasticache:DeleteReplicationGroup", "elasticache:DescribeReplicationGroups")
    key = kind = CACHE_KEY
    needs = ("cache security group", "cache subnet group")
    reads = ("security groups",)
    named = "cache"

    def configured(self, ctx: Context) -> bool:
        return bool(ctx.config.redis)

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        return find_cache(ctx) if may_exist(ctx, found) else None

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        name = self.name(ctx)
        if not ctx.config.redis:
            if current is None:
                return absent(self.kind, name)
            return Change(self.kind, name, DELETE, detail=f"CACHE is off; {CACHE_IS_DATA}")
        if current is None:
            return create(self.kind, name, wanted(ctx))
        differing = fixed_differences(current)
        if current.get("CacheNodeType") != ctx.config.cache_node_type:
            differing["node type"] = (current.get("CacheNodeType"), ctx.config.cache_node_type)
        if current.get("Status") != "available":  # an interrupted run: its turn waits for it
            differing["status"] = (current.get("Status"), "available")
        return compare(self.kind, name, differing, wanted(ctx))

    def apply(
        self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change
    ) -> str | None:
        name = self.name(ctx)
        if change.action == DELETE:
            self.delete(ctx, Item(self.kind, name, DELETE))
            remove_network(ctx)
            return None
        client = ctx.client("elasticache")
        fixed = sorted(set(fixed_differences(current or {})) & change.fields)
        if current is not None and fixed:
            raise DashscaleError(
                f"cache {name} has {', '.join(fixed)} other than dashscale makes, and AWS cannot "
                "change that on an existing cache",
                "delete it (`aws elasticache delete-replication-group`), then re-run `up`",
            )
        with translated(f"setting up cache {name}"):
            if current is None:
                self._create(ctx, refs)
            elif "node type" in change.fields:
                client.modify_replication_group(
                    ReplicationGroupId=name,
                    CacheNodeType=ctx.config.cache_node_type,
                    ApplyImmediately=True,
                )
        return wait_available(ctx)

    def _create(self, ctx: Context, refs: Mapping[str, Any]) -> None:
        try:
            ctx.client("elasticache").create_replication_group(
                ReplicationGroupId=self.name(ctx),
                ReplicationGroupDescription=f"dashscale: {ctx.names.app}'s shared cache",
                Engine=ENGINE,
                CacheNodeType=ctx.config.cache_node_type,
                NumCacheClusters=1,
                Port=PORT,
                CacheSubnetGroupName=refs["cache subnet group"],
                SecurityGroupIds=[refs["cache security group"]],
                AtRestEncryptionEnabled=True,
                TransitEncryptionEnabled=True,
                AutomaticFailoverEnabled=False,
                SnapshotRetentionLimit=0,  # a cache: nothing to back up
                Tags=ctx.names.tags(),
            )
        except botocore.exceptions.ClientError as error:
            # a create retried after a lost answer: the first one made it
            if error_code(error) != "ReplicationGroupAlreadyExistsFault":
                raise

    def ref(self, ctx: Context, current: Any, change: Change) -> str | None:
        if not ctx.config.redis:
            return None
        url = redis_url(current) if current is not None else None
        if url is None or change.changes_aws:
            return f"rediss://{self.name(ctx)}{NEW}"
        return url

    missing_shown = True

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        def found() -> dict[str, Any] | None:
            group = describe_cache(ctx)
            if group is not None:
                require_owned(ctx.names, "cache", ctx.names.cache, group.get("Tags"))
            return group

        return self.found_item(ctx, found, reason=CACHE_IS_DATA)

    def when_absent(self, ctx: Context, survey: Survey) -> tuple[str, str, str] | None:
        if survey.of(self.key) or not ctx.config.redis:
            return None
        return self.name(ctx), "missing", ""

    def status_state(self, ctx: Context, item: Item) -> str:
        state = str(item.data["resource"].get("Status"))
        return {"available": "found", "deleting": "being deleted"}.get(state, state)

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        group = item.data["resource"]
        endpoint = redis_url(group) or "no endpoint yet"
        return item.name, f"{group.get('Engine', ENGINE)} {group.get('CacheNodeType')}: {endpoint}"

    def delete(self, ctx: Context, item: Item) -> str:
        """Deleted, then waited for until it is gone (its subnet group and security group stay
        in use until then)."""
        client = ctx.client("elasticache")
        name = self.name(ctx)
        # AWS refuses the delete while the group is still being made (or already deleting)
        note = retrying(
            ctx,
            f"deleting cache {name}",
            lambda: client.delete_replication_group(ReplicationGroupId=name),
            ("InvalidReplicationGroupState", "InvalidReplicationGroupStateFault"),
            gone=GROUP_GONE,
        )
        waited = wait_for(ctx, f"cache {name}: being deleted", lambda: _gone(ctx))
        gone = f"gone after {int(waited)} s" if int(waited) else "gone"
        return "; ".join(part for part in (note, gone, CACHE_IS_DATA) if part)


def _gone(ctx: Context) -> bool | None:
    return True if describe_cache(ctx) is None else None


def wait_available(ctx: Context) -> str:
    """Waits until APP-cache is available (minutes on AWS); its REDIS_URL."""
    name = ctx.names.cache

    def check() -> str | None:
        group = describe_cache(ctx)
        if group is None:
            raise AwsError(f"cache {name} disappeared while it was being made", "re-run `up`")
        if group.get("Status") == "create-failed":
            raise AwsError(
                f"AWS could not make cache {name} (create-failed)",
                "check CACHE_NODE_TYPE is offered in AWS_REGION and your ElastiCache quota; "
                "`dashscale teardown` removes the failed cache",
            )
        url = redis_url(group)
        return url if group.get("Status") == "available" and url else None

    url = ctx.wait(
        f"waiting for cache {name} (AWS takes minutes)",
        f"cache {name} to be available",
        check,
        POLL_SECONDS,
    )
    ctx.ui.detail(f"cache {name} is available")
    return url


def remove_network(ctx: Context) -> None:
    """The cache's subnet group and security group, once the cache is gone (CACHE switched
    off): what their own turns leave to the cache's."""
    subnets = CacheSubnetGroup()
    for item in subnets.survey(ctx, Survey(False)):
        if item.action == DELETE:
            ctx.ui.resource(item.kind, item.name, "deleted", subnets.delete(ctx, item))
    group = CacheSecurityGroup()
    for item in group.survey(ctx, Survey(False)):
        if item.action == DELETE:
            ctx.ui.resource(item.kind, item.name, "deleted", group.delete(ctx, item))


# --- the subnet group ---------------------------------------------------------------------------


def find_subnet_group(ctx: Context) -> dict[str, Any] | None:
    name = ctx.names.cache_subnet_group
    client = ctx.client("elasticache")
    with translated(f"looking up cache subnet group {name}"):
        try:
            answer = client.describe_cache_subnet_groups(CacheSubnetGroupName=name)
        except botocore.exceptions.ClientError as error:
            if error_code(error) == SUBNETS_GONE:
                return None
            raise
        group = dict(answer["CacheSubnetGroups"][0])
        tags = client.list_tags_for_resource(ResourceName=group["ARN"]).get("TagList")
    require_owned(ctx.names, "cache subnet group", name, tags)
    return group


def subnet_ids(group: Mapping[str, Any]) -> list[str]:
    return sorted(s["SubnetIdentifier"] for s in group.get("Subnets") or [])


class CacheSubnetGroup(Resource):
    """APP-cache-subnets: the app's subnets, where the cache's node lives."""

    calls = {
        CREATE: ("elasticache:CreateCacheSubnetGroup", "elasticache:AddTagsToResource"),
        UPDATE: ("elasticache:ModifyCacheSubnetGroup",),
        DELETE: ("elasticache:DeleteCacheSubnetGroup",),
    }
    find_calls = ("elasticache:DescribeCacheSubnetGroups", "elasticache:ListTagsForResource")
    survey_calls = find_calls
    delete_calls = ("elasticache:DeleteCacheSubnetGroup",)
    key = kind = "cache subnet group"
    reads = ("security groups",)

    def configured(self, ctx: Context) -> bool:
        return bool(ctx.config.redis)

    named = "cache_subnet_group"

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        return find_subnet_group(ctx) if may_exist(ctx, found) else None

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        name = self.name(ctx)
        if not ctx.config.redis:
            if current is None:
                return absent(self.kind, name)
            return Change(self.kind, name, DELETE, detail="goes once the cache is gone")
        network: Network = refs["network"]
        desired = sorted(network.subnet_ids)
        if current is None:
            return create(self.kind, name, ", ".join(desired))
        differing = {}
        if subnet_ids(current) != desired:
            differing["subnets"] = (subnet_ids(current), desired)
        return compare(self.kind, name, differing, ", ".join(desired))

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> str:
        name = self.name(ctx)
        client = ctx.client("elasticache")
        if change.action == DELETE:
            if not cache_exists(ctx):  # otherwise the cache's turn deletes it once it is gone
                self.delete(ctx, Item(self.kind, name, DELETE))
            return name
        network: Network = refs["network"]
        with translated(f"setting up cache subnet group {name}"):
            if current is None:
                try:
                    client.create_cache_subnet_group(
                        CacheSubnetGroupName=name,
                        CacheSubnetGroupDescription=f"dashscale: {ctx.names.app}'s cache",
                        SubnetIds=list(network.subnet_ids),
                        Tags=ctx.names.tags(),
                    )
                except botocore.exceptions.ClientError as error:
                    if error_code(error) != "CacheSubnetGroupAlreadyExists":
                        raise
            else:
                client.modify_cache_subnet_group(
                    CacheSubnetGroupName=name, SubnetIds=list(network.subnet_ids)
                )
        return name

    def ref(self, ctx: Context, current: Any, change: Change) -> str:
        return self.name(ctx)

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        return self.found_item(ctx, lambda: find_subnet_group(ctx))

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        return item.name, ", ".join(subnet_ids(item.data["resource"]))

    def when_absent(self, ctx: Context, survey: Survey) -> tuple[str, str, str] | None:
        if survey.of(self.key) or not ctx.config.redis:
            return None
        return self.name(ctx), "missing", ""

    def delete(self, ctx: Context, item: Item) -> str:
        client = ctx.client("elasticache")
        return retrying(
            ctx,
            f"deleting cache subnet group {item.name}",
            lambda: client.delete_cache_subnet_group(CacheSubnetGroupName=self.name(ctx)),
            ("CacheSubnetGroupInUse",),
            gone=SUBNETS_GONE,
        )


# --- the security group -------------------------------------------------------------------------


class CacheSecurityGroup(SecurityGroup):
    """APP-cache-sg: the cache's port, from the tasks' security group only (the app's tasks and
    its workers); nothing from anywhere else."""

    calls = {**SecurityGroup.calls, DELETE: ("ec2:DeleteSecurityGroup",)}
    key = "cache security group"
    needs = (TaskSecurityGroup.key,)
    named = "cache_sg"
    source_named = "task_sg"

    def configured(self, ctx: Context) -> bool:
        return bool(ctx.config.redis)

    def description(self, ctx: Context) -> str:
        return f"{ctx.names.app} cache: port {PORT} from the app's tasks only"

    def rules(self, ctx: Context, refs: Mapping[str, Any]) -> set[Rule]:
        return {("tcp", PORT, PORT, refs[TaskSecurityGroup.key])}

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        if ctx.config.redis:
            return super().plan(ctx, current, refs)
        if current is None:
            return absent(self.kind, self.name(ctx))
        return Change(self.kind, self.name(ctx), DELETE, detail="goes once the cache is gone")

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> str:
        if change.action != DELETE:
            return super().apply(ctx, current, refs, change)
        if not cache_exists(ctx):  # otherwise the cache's turn deletes it once it is gone
            self.delete(ctx, Item(self.kind, self.name(ctx), DELETE, data={"resource": current}))
        return str(current["GroupId"])

    def when_absent(self, ctx: Context, survey: Survey) -> tuple[str, str, str] | None:
        if survey.of(self.key) or not ctx.config.redis:
            return None
        return self.name(ctx), "missing", ""


# The cache's section, in the order a run makes them (cluster.RESOURCES includes it: the task
# definitions need the cache's address).
RESOURCES: tuple[Resource, ...] = (CacheSecurityGroup(), CacheSubnetGroup(), ReplicationGroup())
KEYS = frozenset(r.key for r in RESOURCES)

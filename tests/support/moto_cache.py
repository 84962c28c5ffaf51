"""ElastiCache as AWS does it, where moto 5 does less: applied to the in-process moto server.

- CreateReplicationGroup: AWS answers CacheSubnetGroupNotFoundFault for a subnet group that does
  not exist (moto accepts any name); the group is `creating`, without an endpoint, for minutes
  (moto: `available` at once). Here it is creating for CREATING_SECONDS (0 by default).
- DeleteReplicationGroup: the group is `deleting`, then gone (moto keeps it `deleting` forever);
  a second delete meanwhile answers InvalidReplicationGroupState. Gone after DELETING_SECONDS.
- DeleteCacheSubnetGroup (moto lacks it): CacheSubnetGroupInUse while a replication group,
  deleting ones included, uses it.
- ModifyReplicationGroup (moto lacks it): the node type, refused while the group is not
  available.
"""

from __future__ import annotations

import time
from typing import Any

CREATING_SECONDS = 0.0
DELETING_SECONDS = 0.0


def _error(code: str, message: str) -> Exception:
    from moto.elasticache.exceptions import ElastiCacheException

    return ElastiCacheException(code, message)


def _settle(backend: Any) -> None:
    """Groups whose creation or deletion has had its time: available, or gone."""
    now = time.monotonic()
    for name, group in list(backend.replication_groups.items()):
        started = getattr(group, "_dashscale_since", None)
        if group.status == "creating" and now - started >= CREATING_SECONDS:
            group.status = "available"
            for node_group in group.node_groups:
                node_group["status"] = "available"
                node_group.update(node_group.pop("_dashscale_endpoint", {}))
        elif group.status == "deleting" and now - started >= DELETING_SECONDS:
            del backend.replication_groups[name]


def apply() -> None:
    from moto.elasticache.models import ElastiCacheBackend
    from moto.elasticache.responses import ElastiCacheResponse

    if getattr(ElastiCacheBackend.create_replication_group, "_dashscale_fixed", False):
        return
    create, describe = (
        ElastiCacheBackend.create_replication_group,
        ElastiCacheBackend.describe_replication_groups,
    )
    delete = ElastiCacheBackend.delete_replication_group

    def create_replication_group(self: Any, *args: Any, **kwargs: Any) -> Any:
        subnets = kwargs.get("cache_subnet_group_name")
        if subnets and subnets not in self.cache_subnet_groups:
            raise _error("CacheSubnetGroupNotFoundFault", f"CacheSubnetGroup {subnets} not found.")
        group = create(self, *args, **kwargs)
        group._dashscale_since = time.monotonic()
        if CREATING_SECONDS > 0:
            group.status = "creating"
            for node_group in group.node_groups:  # no endpoint until it is available
                node_group["status"] = "creating"
                node_group["_dashscale_endpoint"] = {
                    key: node_group.pop(key)
                    for key in ("primary_endpoint", "primary_endpoint_address")
                    if key in node_group
                }
        return group

    def describe_replication_groups(self: Any, *args: Any, **kwargs: Any) -> Any:
        _settle(self)
        return describe(self, *args, **kwargs)

    def delete_replication_group(
        self: Any, replication_group_id: str, *args: Any, **kwargs: Any
    ) -> Any:
        _settle(self)
        group = self.replication_groups.get(replication_group_id)
        if group is not None and group.status != "available":
            raise _error(
                "InvalidReplicationGroupState",
                f"Replication group {replication_group_id} is {group.status}.",
            )
        deleted = delete(self, replication_group_id, *args, **kwargs)
        deleted._dashscale_since = time.monotonic()
        return deleted

    def delete_cache_subnet_group(self: Any, name: str) -> None:
        _settle(self)
        if name not in self.cache_subnet_groups:
            raise _error("CacheSubnetGroupNotFoundFault", f"CacheSubnetGroup {name} not found.")
        users = [
            g.replication_group_id
            for g in self.replication_groups.values()
            if g.cache_subnet_group_name == name
        ]
        if users:
            raise _error(
                "CacheSubnetGroupInUse", f"Cache subnet group {name} is in use by {users[0]}."
            )
        del self.cache_subnet_groups[name]

    def modify_replication_group(self: Any, replication_group_id: str, node_type: str) -> Any:
        _settle(self)
        (group,) = describe(self, replication_group_id)
        if group.status != "available":
            raise _error(
                "InvalidReplicationGroupState",
                f"Replication group {replication_group_id} is {group.status}.",
            )
        if node_type:
            group.cache_node_type = node_type
        return group

    def respond_delete_subnet_group(self: Any) -> Any:
        from moto.core.responses import EmptyResult

        self.elasticache_backend.delete_cache_subnet_group(self._get_param("CacheSubnetGroupName"))
        return EmptyResult()

    def respond_modify(self: Any) -> Any:
        from moto.core.responses import ActionResult

        group = self.elasticache_backend.modify_replication_group(
            self._get_param("ReplicationGroupId"), self._get_param("CacheNodeType")
        )
        return ActionResult({"ReplicationGroup": group})

    create_replication_group._dashscale_fixed = True  # type: ignore[attr-defined]
    ElastiCacheBackend.create_replication_group = create_replication_group  # type: ignore[method-assign]
    ElastiCacheBackend.describe_replication_groups = describe_replication_groups  # type: ignore[method-assign]
    ElastiCacheBackend.delete_replication_group = delete_replication_group  # type: ignore[method-assign]
    ElastiCacheBackend.delete_cache_subnet_group = delete_cache_subnet_group  # type: ignore[attr-defined]
    ElastiCacheBackend.modify_replication_group = modify_replication_group  # type: ignore[attr-defined]
    ElastiCacheResponse.delete_cache_subnet_group = respond_delete_subnet_group  # type: ignore[attr-defined]
    ElastiCacheResponse.modify_replication_group = respond_modify  # type: ignore[attr-defined]

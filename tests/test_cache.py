"""CACHE=redis against moto's server: the replication group, its subnet group and security
group as `up` makes them, REDIS_URL in the task definition, the second `up`, the dry run,
`status` and `teardown`; and the AWS rules moto does not enforce (tests/support/moto_cache.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.operating import IMAGE, hook_every_client, said, wide_terminal
from tests.support.recording import recording

__all__ = ["wide_terminal"]  # the fixture, imported for pytest

CACHE = ("--set", "CACHE=redis")


def replication_group(boto) -> dict[str, Any]:
    (group,) = boto("elasticache").describe_replication_groups(ReplicationGroupId="demo-cache")[
        "ReplicationGroups"
    ]
    return group


def moto_group(name: str = "demo-cache") -> Any:
    """What moto keeps of a group but does not describe (AWS: DescribeCacheClusters of its
    node names the subnet group and the security groups)."""
    from moto.elasticache.models import elasticache_backends

    return elasticache_backends["123456789012"]["us-east-1"].replication_groups[name]


def environment(boto, family: str = "demo-taskdef") -> dict[str, str]:
    definition = boto("ecs").describe_task_definition(taskDefinition=family)["taskDefinition"]
    (container,) = definition["containerDefinitions"]
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def security_group(boto, name: str) -> dict[str, Any]:
    (group,) = boto("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [name]}]
    )["SecurityGroups"]
    return group


def test_up_makes_an_encrypted_cache_reachable_from_the_tasks_only(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    result = run("up", "--image", IMAGE, *CACHE)
    assert result.exit_code == 0, result.output

    group = replication_group(boto)
    assert group["Engine"] == "valkey" and group["CacheNodeType"] == "cache.t4g.micro"
    assert group["AtRestEncryptionEnabled"] is True and group["TransitEncryptionEnabled"] is True
    assert len(group["MemberClusters"]) == 1 and group["Status"] == "available"
    tags = boto("elasticache").list_tags_for_resource(ResourceName=group["ARN"])["TagList"]
    assert {"Key": "dashscale:app", "Value": "demo"} in tags

    # its own subnet group, in the service's subnets
    (subnets,) = boto("elasticache").describe_cache_subnet_groups(
        CacheSubnetGroupName="demo-cache-subnets"
    )["CacheSubnetGroups"]
    (service,) = boto("ecs").describe_services(cluster="demo-cluster", services=["demo-service"])[
        "services"
    ]
    vpc = service["networkConfiguration"]["awsvpcConfiguration"]
    assert sorted(s["SubnetIdentifier"] for s in subnets["Subnets"]) == sorted(vpc["subnets"])
    assert moto_group().cache_subnet_group_name == "demo-cache-subnets"

    # its security group admits its port from the tasks' group, and nothing else
    cache_sg, task_sg = (
        security_group(boto, "demo-cache-sg"),
        security_group(boto, "demo-from-alb-sg"),
    )
    assert moto_group().security_group_ids == [cache_sg["GroupId"]]
    assert vpc["securityGroups"] == [task_sg["GroupId"]]
    (rule,) = cache_sg["IpPermissions"]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 6379, 6379)
    assert [p["GroupId"] for p in rule["UserIdGroupPairs"]] == [task_sg["GroupId"]]
    assert rule["IpRanges"] == [] and rule.get("Ipv6Ranges", []) == []

    # the tasks get the primary endpoint, over TLS
    endpoint = group["NodeGroups"][0]["PrimaryEndpoint"]
    assert environment(boto)["REDIS_URL"] == (
        f"rediss://{endpoint['Address']}:{endpoint['Port']}/0?ssl_cert_reqs=required"
    )
    err = said(result.stderr)
    assert (
        "cache demo-cache created valkey, cache.t4g.micro, encrypted at rest and in transit" in err
    )

    with recording(aws) as calls:
        again = run("up", "--image", IMAGE, *CACHE)
    assert again.exit_code == 0, again.output
    assert calls.operations and calls.changing == []

    document = json.loads(run("status", "--json").stdout)
    rows = {(r["kind"], r["name"]): r for r in document["resources"]}
    cache = rows[("cache", "demo-cache")]
    assert cache["state"] == "found" and endpoint["Address"] in cache["detail"]
    assert rows[("cache subnet group", "demo-cache-subnets")]["state"] == "found"
    assert rows[("security group", "demo-cache-sg")]["state"] == "found"
    assert "REDIS_URL" in document["configuration"]["variables"]


def test_dry_run_plans_the_cache_and_teardown_removes_it(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    planned = run("up", "--image", IMAGE, *CACHE, "--dry-run")
    assert planned.exit_code == 0, planned.output
    plan = said(planned.stderr)
    assert "cache demo-cache would create valkey, cache.t4g.micro, encrypted" in plan
    assert "cache subnet group demo-cache-subnets would create" in plan
    assert "security group demo-cache-sg would create TCP 6379 from demo-from-alb-sg" in plan
    assert "elasticache:CreateReplicationGroup" in plan
    assert boto("elasticache").describe_replication_groups()["ReplicationGroups"] == []

    assert run("up", "--image", IMAGE, *CACHE).exit_code == 0
    shown = said(run("teardown", "--dry-run", *CACHE).stderr)
    assert "demo-cache" in shown and "cached data goes with it" in shown
    with recording(aws) as calls:
        result = run("teardown", "--yes", *CACHE)
    assert result.exit_code == 0, result.output
    order = calls.changing
    # the cache before its subnet group and its security group, that before the tasks' group
    assert order.index("DeleteReplicationGroup") < order.index("DeleteCacheSubnetGroup")
    groups = [i for i, call in enumerate(order) if call == "DeleteSecurityGroup"]
    assert order.index("DeleteReplicationGroup") < min(groups)
    assert boto("elasticache").describe_replication_groups()["ReplicationGroups"] == []
    assert boto("elasticache").describe_cache_subnet_groups()["CacheSubnetGroups"] == []
    assert not boto("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["demo-cache-sg"]}]
    )["SecurityGroups"]
    assert "cache demo-cache deleted" in said(result.stderr)


def test_the_wait_for_the_cache_overlaps_the_rest_of_up(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS takes minutes to make the cache: only the task definitions wait for it."""
    from dashscale.steps import cache
    from tests.support import moto_cache

    monkeypatch.setattr(moto_cache, "CREATING_SECONDS", 2.0)
    monkeypatch.setattr(cache, "POLL_SECONDS", 0.2)
    made: list[tuple[float, str]] = []
    hook_every_client(
        monkeypatch,
        "before-call",
        lambda model, **_: made.append((time.monotonic(), model.name)),
    )
    result = run("up", "--image", IMAGE, *CACHE)
    assert result.exit_code == 0, result.output
    first = {name: at for at, name in reversed(made)}
    started = first["CreateReplicationGroup"]
    registered = first["RegisterTaskDefinition"]
    assert registered - started >= 2.0  # the task definition waited for the endpoint
    during = [name for at, name in made if started < at < started + 2.0]
    # meanwhile the load balancer, its target group and listener, the cluster were made
    for name in ("CreateLoadBalancer", "CreateTargetGroup", "CreateListener", "CreateCluster"):
        assert name in during or first[name] < started, name
    assert replication_group(boto)["Status"] == "available"


def test_cache_off_deletes_the_cache_then_its_network(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE, *CACHE).exit_code == 0
    planned = said(run("up", "--image", IMAGE, "--dry-run").stderr)
    assert "cache demo-cache would delete CACHE is off" in planned
    assert "variables: removed REDIS_URL" in planned
    with recording(aws) as calls:
        result = run("up", "--image", IMAGE)
    assert result.exit_code == 0, result.output
    order = calls.changing
    assert order.index("DeleteReplicationGroup") < order.index("DeleteCacheSubnetGroup")
    assert order.index("DeleteReplicationGroup") < order.index("DeleteSecurityGroup")
    assert "REDIS_URL" not in environment(boto)
    assert boto("elasticache").describe_replication_groups()["ReplicationGroups"] == []
    assert boto("elasticache").describe_cache_subnet_groups()["CacheSubnetGroups"] == []
    with recording(aws) as calls:
        assert run("up", "--image", IMAGE).exit_code == 0
    assert calls.changing == []


def test_the_emulator_holds_the_aws_rules_moto_lacks(aws: str, boto) -> None:
    """tests/support/moto_cache.py: what AWS refuses, moto answers the same way here."""
    from botocore.exceptions import ClientError

    elasticache = boto("elasticache")
    subnets = [s["SubnetId"] for s in boto("ec2").describe_subnets()["Subnets"]][:2]
    group = {
        "ReplicationGroupId": "x-cache",
        "ReplicationGroupDescription": "x",
        "CacheNodeType": "cache.t4g.micro",
        "Engine": "valkey",
        "CacheSubnetGroupName": "x-subnets",
    }

    def code(call, **kwargs) -> str:
        with pytest.raises(ClientError) as error:
            call(**kwargs)
        return str(error.value.response["Error"]["Code"])

    assert code(elasticache.create_replication_group, **group) == "CacheSubnetGroupNotFoundFault"
    elasticache.create_cache_subnet_group(
        CacheSubnetGroupName="x-subnets", CacheSubnetGroupDescription="x", SubnetIds=subnets
    )
    elasticache.create_replication_group(**group)
    in_use = code(elasticache.delete_cache_subnet_group, CacheSubnetGroupName="x-subnets")
    assert in_use == "CacheSubnetGroupInUse"
    elasticache.delete_replication_group(ReplicationGroupId="x-cache")
    # gone once AWS has deleted it (here: at once), and then so may its subnet group go
    gone = code(elasticache.describe_replication_groups, ReplicationGroupId="x-cache")
    assert gone == "ReplicationGroupNotFoundFault"
    elasticache.delete_cache_subnet_group(CacheSubnetGroupName="x-subnets")
    assert elasticache.describe_cache_subnet_groups()["CacheSubnetGroups"] == []

"""Everything in the emulated account, kind by kind, read with plain boto3 (never dashscale's
own finders, which a bug in the product would blind the same way).

`inventory(boto)` lists every resource of every kind dashscale can create, tagged or not, plus
what AWS makes on its behalf (alarms of target-tracking policies, tasks) and the kinds next to
them that a new feature would use (customer-managed IAM policies, Secrets Manager secrets,
ElastiCache, SNS). A test takes one inventory before and one after: what is new is what the
commands left. `tagged(boto)` asks the Resource Groups Tagging API for anything still carrying
the `dashscale:app` tag, kinds listed here or not.

`KINDS` names what `inventory` lists; `test_first_runs` checks that every kind of the product's
model and teardown is one of them, so a new kind cannot be forgotten here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

TAG_KEY = "dashscale:app"

Client = Callable[[str], Any]


@dataclass(frozen=True, order=True)
class Found:
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def _pages(client: Any, operation: str, key: str, **request: Any) -> Iterator[Any]:
    for page in client.get_paginator(operation).paginate(**request):
        yield from page.get(key, [])


def _ecr(boto: Client) -> Iterator[Found]:
    ecr = boto("ecr")
    for repository in _pages(ecr, "describe_repositories", "repositories"):
        name = repository["repositoryName"]
        yield Found("ECR repository", name)
        for image in _pages(ecr, "list_images", "imageIds", repositoryName=name):
            yield Found("image", f"{name}@{image.get('imageDigest') or image.get('imageTag')}")


def _ecs(boto: Client) -> Iterator[Found]:
    ecs = boto("ecs")
    arns = list(_pages(ecs, "list_clusters", "clusterArns"))
    clusters = ecs.describe_clusters(clusters=arns)["clusters"] if arns else []
    for cluster in clusters:
        if cluster["status"] == "INACTIVE":  # what AWS keeps of a deleted cluster for a while
            continue
        yield Found("ECS cluster", cluster["clusterName"])
        services = list(_pages(ecs, "list_services", "serviceArns", cluster=cluster["clusterArn"]))
        for start in range(0, len(services), 10):
            described = ecs.describe_services(
                cluster=cluster["clusterArn"], services=services[start : start + 10]
            )["services"]
            for service in described:
                if service["status"] != "INACTIVE":
                    yield Found("ECS service", f"{cluster['clusterName']}/{service['serviceName']}")
        for task in _pages(ecs, "list_tasks", "taskArns", cluster=cluster["clusterArn"]):
            yield Found("ECS task", task)
    # Deregistered revisions stay INACTIVE until deleted; a deleted one is DELETE_IN_PROGRESS
    # (AWS removes it later): that is the only state a teardown may leave.
    for status in ("ACTIVE", "INACTIVE"):
        for arn in _pages(ecs, "list_task_definitions", "taskDefinitionArns", status=status):
            yield Found("task definition", f"{arn.rsplit('/', 1)[-1]} ({status})")


def _iam(boto: Client) -> Iterator[Found]:
    iam = boto("iam")
    for role in _pages(iam, "list_roles", "Roles"):
        name = role["RoleName"]
        yield Found("IAM role", name)
        for policy in _pages(iam, "list_role_policies", "PolicyNames", RoleName=name):
            yield Found("IAM policy", f"{name}/{policy}")
        for attached in _pages(
            iam, "list_attached_role_policies", "AttachedPolicies", RoleName=name
        ):
            yield Found("attached policy", f"{name} {attached['PolicyArn']}")
    for policy in _pages(iam, "list_policies", "Policies", Scope="Local"):
        yield Found("managed policy", policy["Arn"])
    for profile in _pages(iam, "list_instance_profiles", "InstanceProfiles"):
        yield Found("instance profile", profile["InstanceProfileName"])
    for provider in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]:
        yield Found("OIDC provider", provider["Arn"])


def _logs(boto: Client) -> Iterator[Found]:
    for group in _pages(boto("logs"), "describe_log_groups", "logGroups"):
        yield Found("log group", group["logGroupName"])


def _ec2(boto: Client) -> Iterator[Found]:
    ec2 = boto("ec2")
    for group in _pages(ec2, "describe_security_groups", "SecurityGroups"):
        yield Found("security group", f"{group['GroupName']} {group['GroupId']}")


def _elbv2(boto: Client) -> Iterator[Found]:
    elbv2 = boto("elbv2")
    for balancer in _pages(elbv2, "describe_load_balancers", "LoadBalancers"):
        yield Found("load balancer", balancer["LoadBalancerName"])
        arn = balancer["LoadBalancerArn"]
        for listener in _pages(elbv2, "describe_listeners", "Listeners", LoadBalancerArn=arn):
            yield Found("listener", f"{balancer['LoadBalancerName']}:{listener['Port']}")
            rules = elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
            for rule in rules:
                if not rule.get("IsDefault"):
                    yield Found("listener rule", rule["RuleArn"])
    for group in _pages(elbv2, "describe_target_groups", "TargetGroups"):
        yield Found("target group", group["TargetGroupName"])


def _autoscaling(boto: Client) -> Iterator[Found]:
    scaling = boto("application-autoscaling")
    ecs = {"ServiceNamespace": "ecs"}
    for target in _pages(scaling, "describe_scalable_targets", "ScalableTargets", **ecs):
        yield Found("scalable target", target["ResourceId"])
    for policy in _pages(scaling, "describe_scaling_policies", "ScalingPolicies", **ecs):
        yield Found("scaling policy", f"{policy['ResourceId']} {policy['PolicyName']}")
    for action in _pages(scaling, "describe_scheduled_actions", "ScheduledActions", **ecs):
        yield Found("scheduled action", f"{action['ResourceId']} {action['ScheduledActionName']}")
    for alarm in _pages(boto("cloudwatch"), "describe_alarms", "MetricAlarms"):
        yield Found("alarm", alarm["AlarmName"])


def _route53(boto: Client) -> Iterator[Found]:
    route53 = boto("route53")
    for zone in _pages(route53, "list_hosted_zones", "HostedZones"):
        yield Found("hosted zone", zone["Name"])
        records = _pages(
            route53, "list_resource_record_sets", "ResourceRecordSets", HostedZoneId=zone["Id"]
        )
        for record in records:
            if record["Name"] == zone["Name"] and record["Type"] in ("SOA", "NS"):
                continue  # the zone's own: they go with it
            yield Found("record", f"{record['Type']} {record['Name']}")


def _acm(boto: Client) -> Iterator[Found]:
    for certificate in _pages(boto("acm"), "list_certificates", "CertificateSummaryList"):
        yield Found("certificate", f"{certificate['DomainName']} {certificate['CertificateArn']}")


def _cognito(boto: Client) -> Iterator[Found]:
    cognito = boto("cognito-idp")
    pools = cognito.list_user_pools(MaxResults=60)["UserPools"]
    for pool in pools:
        yield Found("user pool", pool["Name"])
        described = cognito.describe_user_pool(UserPoolId=pool["Id"])["UserPool"]
        if described.get("Domain"):
            yield Found("sign-in domain", described["Domain"])
        for client in cognito.list_user_pool_clients(UserPoolId=pool["Id"], MaxResults=60)[
            "UserPoolClients"
        ]:
            yield Found("user pool client", f"{pool['Name']}/{client['ClientName']}")


def _parameters(boto: Client) -> Iterator[Found]:
    for parameter in _pages(boto("ssm"), "describe_parameters", "Parameters"):
        yield Found("SSM parameter", parameter["Name"])
    for secret in _pages(boto("secretsmanager"), "list_secrets", "SecretList"):
        yield Found("Secrets Manager secret", secret["Name"])


def _others(boto: Client) -> Iterator[Found]:
    """Kinds dashscale does not make yet (Redis for Dash at scale, cost alerts): listed so that
    the first feature that makes one is checked by the same test."""
    elasticache = boto("elasticache")
    for group in _pages(elasticache, "describe_replication_groups", "ReplicationGroups"):
        yield Found("replication group", group["ReplicationGroupId"])
    for group in _pages(elasticache, "describe_cache_subnet_groups", "CacheSubnetGroups"):
        yield Found("cache subnet group", group["CacheSubnetGroupName"])
    for topic in _pages(boto("sns"), "list_topics", "Topics"):
        yield Found("SNS topic", topic["TopicArn"])
    for subscription in _pages(boto("sns"), "list_subscriptions", "Subscriptions"):
        yield Found("SNS subscription", f"{subscription['TopicArn']} {subscription['Endpoint']}")


LISTERS: tuple[Callable[[Client], Iterator[Found]], ...] = (
    _ecr,
    _ecs,
    _iam,
    _logs,
    _ec2,
    _elbv2,
    _autoscaling,
    _route53,
    _acm,
    _cognito,
    _parameters,
    _others,
)

# The kinds `inventory` lists (the product's names where it has one; records by type).
KINDS = frozenset(
    {
        "ECR repository",
        "image",
        "ECS cluster",
        "ECS service",
        "ECS task",
        "task definition",
        "IAM role",
        "IAM policy",
        "attached policy",
        "managed policy",
        "instance profile",
        "OIDC provider",
        "log group",
        "security group",
        "load balancer",
        "listener",
        "listener rule",
        "target group",
        "scalable target",
        "scaling policy",
        "scheduled action",
        "alarm",
        "hosted zone",
        "record",
        "certificate",
        "user pool",
        "sign-in domain",
        "user pool client",
        "SSM parameter",
        "Secrets Manager secret",
        "replication group",
        "cache subnet group",
        "SNS topic",
        "SNS subscription",
    }
)
# The product's kinds that `inventory` lists under another name.
SAME_AS = {
    "alias record": "record",
    "validation record": "record",
    "IAM OIDC provider": "OIDC provider",
    "cache": "replication group",  # the model's name for APP-cache
}


def inventory(boto: Client) -> set[Found]:
    """Every resource of the kinds above in the emulated account."""
    found = {item for lister in LISTERS for item in lister(boto)}
    unknown = {item.kind for item in found} - KINDS
    assert not unknown, f"inventory lists kinds it does not declare: {unknown}"
    return found


def tagged(boto: Client, apps: list[str]) -> set[str]:
    """The ARNs of everything still tagged `dashscale:app` with one of `apps`, whatever its
    kind (as far as the emulator's tagging API knows it)."""
    api = boto("resourcegroupstaggingapi")
    filters = [{"Key": TAG_KEY, "Values": apps}]
    arns = {
        item["ResourceARN"]
        for item in _pages(api, "get_resources", "ResourceTagMappingList", TagFilters=filters)
    }
    # moto's tagging API still lists deleted ECS clusters, services and task definitions
    # (INACTIVE, DELETE_IN_PROGRESS), which are gone as far as the app is concerned
    return {arn for arn in arns if not _ecs_gone(boto, arn)}


def _ecs_gone(boto: Client, arn: str) -> bool:
    if not arn.startswith("arn:aws:ecs:"):
        return False
    ecs = boto("ecs")
    resource = arn.split(":", 5)[5]
    if resource.startswith("cluster/"):
        (cluster,) = ecs.describe_clusters(clusters=[arn])["clusters"]
        return cluster["status"] == "INACTIVE"
    if resource.startswith("service/"):
        cluster = resource.split("/")[1]
        try:
            services = ecs.describe_services(cluster=cluster, services=[arn])["services"]
        except botocore.exceptions.ClientError as error:
            if error.response["Error"]["Code"] == "ClusterNotFoundException":
                return True  # its cluster is gone: so is it
            raise
        return all(service["status"] == "INACTIVE" for service in services)
    if resource.startswith("task-definition/"):
        definition = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        return definition["status"] == "DELETE_IN_PROGRESS"
    return False


def describe(items: set[Found]) -> str:
    return json.dumps(sorted(str(item) for item in items), indent=1)

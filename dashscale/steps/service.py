"""The ECS service APP-service: DESIRED_COUNT tasks of the task definition behind the target group.

Created only once a listener forwards to the target group (real AWS refuses a service attached to
a group no listener uses); afterwards only what differs is updated, so a new image is one update.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dashscale.aws import require_owned, translated
from dashscale.context import Context
from dashscale.driver import section
from dashscale.errors import AwsError
from dashscale.inventory import ignoring, unless_gone, wait_for
from dashscale.model import (
    CREATE,
    DELETE,
    FOREIGN,
    NEW,
    UPDATE,
    Change,
    Extra,
    Item,
    Reading,
    Resource,
    Survey,
    compare,
    create,
    is_new,
    not_ours,
)
from dashscale.steps import appconfig, autoscaling, cache, deployment
from dashscale.steps.alb import (
    HTTPS_LISTENER,
    HTTPS_PORT,
    BalancerAndGroup,
    HttpListener,
    Listeners,
    LoadBalancerResource,
    TargetGroup,
    signs_in,
    signs_in_first,
)
from dashscale.steps.cluster import READINGS as CLUSTER_READINGS
from dashscale.steps.cluster import RESOURCES as CLUSTER_RESOURCES
from dashscale.steps.cluster import Cluster, TaskDefinition, retry_role_not_ready
from dashscale.steps.network import Network, TaskSecurityGroup


def describe_service(ctx: Context) -> dict[str, Any] | None:
    """APP-service as DescribeServices gives it (tags included) while it is ACTIVE or still
    DRAINING after a delete; None when it or the cluster is missing. No ownership check."""
    ecs = ctx.client("ecs")
    with translated(f"looking up ECS service {ctx.names.service}"):
        try:
            services = ecs.describe_services(
                cluster=ctx.names.cluster, services=[ctx.names.service], include=["TAGS"]
            )["services"]
        except ecs.exceptions.ClusterNotFoundException:
            return None
    service = next((s for s in services if s.get("status") in ("ACTIVE", "DRAINING")), None)
    return dict(service) if service is not None else None


def describe_services(ctx: Context, names: list[str]) -> dict[str, dict[str, Any]]:
    """The services of `names` that are ACTIVE or DRAINING, by name, in one call (tags
    included); none when the cluster is missing. No ownership check."""
    services: list[dict[str, Any]] = []
    with translated(f"looking up ECS services {', '.join(names)}"):
        ignoring(
            lambda: services.extend(
                ctx.client("ecs").describe_services(
                    cluster=ctx.names.cluster, services=names, include=["TAGS"]
                )["services"]
            ),
            "ClusterNotFoundException",
        )
    return {
        str(s["serviceName"]): dict(s)
        for s in services
        if s.get("status") in ("ACTIVE", "DRAINING")
    }


class ServicesReading(Reading):
    """The app's service and its workers' in one DescribeServices call (`up` reads both)."""

    key = "ECS services"
    find_calls = ("ecs:DescribeServices",)

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        return describe_services(ctx, [ctx.names.service, ctx.names.worker_service])


def find_service(
    ctx: Context, name: str | None = None, found: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The ACTIVE service APP-service (or `name`), checked to be this app's; None when missing.
    From ServicesReading's answer when `found` has it, otherwise read."""
    name = name or ctx.names.service
    read = (found or {}).get(ServicesReading.key)
    if read is not None:
        service = read.get(name)
    elif name == ctx.names.service:
        service = describe_service(ctx)
    else:
        service = describe_services(ctx, [name]).get(name)
    if service is None:
        return None
    if service["status"] == "DRAINING":
        raise AwsError(
            f"ECS service {name} is still being deleted",
            "wait a few minutes until it is gone, then re-run",
        )
    require_owned(ctx.names, "ECS service", name, service.get("tags"))
    return service


# --- desired settings ----------------------------------------------------------------------------


def deployment_configuration() -> dict[str, Any]:
    """Deploys never drop capacity; a deployment whose tasks keep failing is rolled back."""
    return {
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
    }


def service_settings(ctx: Context, refs: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of the service that `up` manages (create and update take them alike)."""
    network: Network = refs["network"]
    return {
        "taskDefinition": refs[TaskDefinition.key],
        "desiredCount": starting_count(ctx),
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(network.subnet_ids),
                "securityGroups": [refs[TaskSecurityGroup.key]],
                "assignPublicIp": "ENABLED",
            }
        },
        "loadBalancers": [
            {
                "targetGroupArn": refs[TargetGroup.key],
                "containerName": ctx.names.container,
                "containerPort": ctx.config.app_port,
            }
        ],
        "healthCheckGracePeriodSeconds": ctx.config.health_check_grace,
        "deploymentConfiguration": deployment_configuration(),
    }


def starting_count(ctx: Context) -> int:
    """The tasks a new service starts with: none outside the office hours (the schedule's wake
    action starts them), else DESIRED_COUNT."""
    return 0 if autoscaling.outside_hours(ctx) else ctx.config.desired_count


def create_service_request(ctx: Context, refs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "cluster": ctx.names.cluster,
        "serviceName": ctx.names.service,
        "launchType": "FARGATE",
        "schedulingStrategy": "REPLICA",
        "deploymentController": {"type": "ECS"},
        "propagateTags": "SERVICE",
        "enableECSManagedTags": True,
        "tags": ctx.names.ecs_tags(),
        # stable within this run: a retried create after a lost answer is not a second service
        "clientToken": ctx.run_id[:36],
        **service_settings(ctx, refs),
    }


def _network_view(configuration: dict[str, Any] | None) -> tuple[Any, ...]:
    vpc = (configuration or {}).get("awsvpcConfiguration") or {}
    return (
        sorted(vpc.get("subnets", [])),
        sorted(vpc.get("securityGroups", [])),
        vpc.get("assignPublicIp", "DISABLED"),
    )


def _load_balancers_view(items: list[dict[str, Any]] | None) -> list[tuple[Any, ...]]:
    return sorted(
        (i.get("targetGroupArn"), i.get("containerName"), int(i.get("containerPort", 0)))
        for i in items or []
    )


def _deployment_view(configuration: dict[str, Any]) -> tuple[Any, ...]:
    breaker = configuration.get("deploymentCircuitBreaker") or {}
    return (
        bool(breaker.get("enable")),
        bool(breaker.get("rollback")),
        configuration.get("maximumPercent"),
        configuration.get("minimumHealthyPercent"),
    )


def service_changes(
    desired: dict[str, Any], current: dict[str, Any], autoscaled: bool = False
) -> dict[str, Any]:
    """The UpdateService fields whose desired value differs from the service's.

    A field the description leaves out entirely (AWS always sends both; an emulator may not)
    cannot be compared and counts as unchanged. With `autoscaled`, the desired count belongs to
    the scaler (DESIRED_COUNT is only the count a new service starts with) and is left alone.
    """
    changes: dict[str, Any] = {}
    for key in ("taskDefinition",) if autoscaled else ("taskDefinition", "desiredCount"):
        if current.get(key) != desired[key]:
            changes[key] = desired[key]
    if _network_view(current.get("networkConfiguration")) != _network_view(
        desired["networkConfiguration"]
    ):
        changes["networkConfiguration"] = desired["networkConfiguration"]
    if _load_balancers_view(current.get("loadBalancers")) != _load_balancers_view(
        desired["loadBalancers"]
    ):
        changes["loadBalancers"] = desired["loadBalancers"]
    grace = "healthCheckGracePeriodSeconds"
    if grace in current and current[grace] != desired[grace]:
        changes[grace] = desired[grace]
    config = "deploymentConfiguration"
    if config in current and _deployment_view(current[config]) != _deployment_view(desired[config]):
        changes[config] = desired[config]
    return changes


def primary_deployment(service: dict[str, Any]) -> dict[str, Any] | None:
    return next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), None)


def unfinished_deployment(service: dict[str, Any] | None) -> str | None:
    """The id of a rollout still going (an interrupted run) or failed: a re-run follows it
    again, so it never reports success over tasks that do not come up."""
    deployment = primary_deployment(service or {})
    if deployment and deployment.get("rolloutState") not in (None, "COMPLETED"):
        return str(deployment["id"])
    return None


def _change_label(key: str) -> str:
    return {
        "taskDefinition": "task definition",
        "desiredCount": "desired count",
        "networkConfiguration": "network",
        "loadBalancers": "target group",
        "healthCheckGracePeriodSeconds": "grace period",
        "deploymentConfiguration": "deployment settings",
    }.get(key, key)


def _shown(key: str, value: Any) -> Any:
    """A service field as the plan shows it."""
    if key == "taskDefinition":
        return str(value).rsplit("/", 1)[-1]
    if key == "networkConfiguration":
        return _network_view(value)
    if key == "loadBalancers":
        return [f"{c} port {p}" for _, c, p in _load_balancers_view(value)]
    if key == "deploymentConfiguration":
        return _deployment_view(value)
    return value


class Service(Resource):
    """APP-service. Its ref is (ARN, id of the deployment to follow, or None).

    A new service joins the target group only once a listener forwards to it (AWS's rule); for
    a private app (AUTH) that is the HTTPS listener that signs users in, since port 80 never
    forwards: `behind_sign_in` makes the service wait for it (after it in a run, and skipped
    while there is none)."""

    find_calls = ("ecs:DescribeServices",)
    survey_calls = find_calls
    delete_calls = ("ecs:DescribeServices", "ecs:UpdateService", "ecs:DeleteService")
    redeploy_calls = ("ecs:UpdateService",)

    calls = {
        CREATE: (
            "ecs:CreateService",
            "ecs:TagResource",
        ),
        UPDATE: ("ecs:UpdateService",),
    }
    key = kind = "ECS service"
    needs = (
        TaskDefinition.key,
        HttpListener.key,  # a listener forwards to the target group before the service joins it
        Cluster.key,
        TaskSecurityGroup.key,
        TargetGroup.key,
    )
    named = "service"
    skipped_with = ()  # decided by `skipped`: an existing service is updated all the same
    reads = (ServicesReading.key,)

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        return find_service(ctx, found=found)

    def __init__(self, behind_sign_in: bool = False) -> None:
        self.behind_sign_in = behind_sign_in
        if behind_sign_in:
            self.needs = (*type(self).needs, HTTPS_LISTENER)

    def skipped(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> str | None:
        # No listener forwards to the group of a private app until HTTPS signs in: AWS refuses
        # a new service there, and an update's new tasks would never be checked healthy.
        if not self.behind_sign_in:
            return None
        made = refs.get(HTTPS_LISTENER)
        if made is not None and not is_new(made):
            return None
        if signs_in_first((refs.get(Listeners.key) or {}).get(HTTPS_PORT)):
            return None
        if current is not None:
            return "deploys once the HTTPS listener signs users in (AUTH)"
        return "starts once the HTTPS listener signs users in (AUTH)"

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        revision = str(refs[TaskDefinition.key]).rsplit("/", 1)[-1]
        if current is None:
            return create(self.kind, self.name(ctx), f"{starting_count(ctx)} x {revision}")
        desired = service_settings(ctx, refs)
        changes = service_changes(desired, current, autoscaling.owns_count(ctx.config))
        differing = {
            _change_label(key): (_shown(key, current.get(key)), _shown(key, value))
            for key, value in changes.items()
        }
        decided = compare(
            self.kind, self.name(ctx), differing, f"{current.get('desiredCount')} x {revision}"
        )
        return dataclasses.replace(decided, fields=frozenset(changes))

    def apply(
        self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change
    ) -> tuple[str, str | None]:
        ecs = ctx.client("ecs")
        with translated(f"setting up ECS service {self.name(ctx)}"):
            if current is None:
                request = create_service_request(ctx, refs)
                service = retry_role_not_ready(
                    ctx, lambda: ecs.create_service(**request)["service"], "creating the service"
                )
            else:
                desired = service_settings(ctx, refs)
                changes = {key: desired[key] for key in change.fields}
                service = retry_role_not_ready(
                    ctx,
                    lambda: ecs.update_service(
                        cluster=ctx.names.cluster, service=self.name(ctx), **changes
                    )["service"],
                    "updating the service",
                )
        deployment = primary_deployment(service)
        return str(service["serviceArn"]), (str(deployment["id"]) if deployment else None)

    missing_shown = True

    def status_state(self, ctx: Context, item: Item) -> str:
        return "found" if item.data["resource"].get("status") == "ACTIVE" else "being deleted"

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        service = item.data["resource"]
        counts = (
            f"{service.get('runningCount', 0)} running, {service.get('pendingCount', 0)} pending, "
            f"{service.get('desiredCount', 0)} desired"
        )
        return item.name, counts if service.get("status") == "ACTIVE" else "being deleted"

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        """The service, also while it drains after an interrupted teardown (its finder refuses
        a draining service; here it is something to wait for)."""
        name = self.name(ctx)
        service = describe_service(ctx)
        if service is None:
            return []
        if not ctx.names.owns(service.get("tags")):
            return [Item(self.kind, name, FOREIGN, not_ours(ctx))]
        if service["status"] == "DRAINING":
            return [Item(self.kind, name, DELETE, "already being deleted", {"resource": service})]
        reason = f"{service.get('desiredCount', 0)} task(s)"
        return [Item(self.kind, name, DELETE, reason, {"resource": service})]

    def delete(self, ctx: Context, item: Item) -> str:
        """Scaled to zero, deleted, then waited for until it is INACTIVE (its tasks stopped)."""
        ecs = ctx.client("ecs")
        name, cluster_name = self.name(ctx), ctx.names.cluster
        gone = ("ServiceNotFoundException", "ServiceNotActiveException", "ClusterNotFoundException")
        service = item.data["resource"]
        if service.get("status") == "ACTIVE":
            if service.get("desiredCount", 0) > 0 and unless_gone(
                lambda: ecs.update_service(cluster=cluster_name, service=name, desiredCount=0),
                *gone,
            ):
                return "already gone"
            if unless_gone(
                lambda: ecs.delete_service(cluster=cluster_name, service=name, force=True), *gone
            ):
                return "already gone"

        def inactive() -> bool | None:
            services: list[dict[str, Any]] = []
            ignoring(
                lambda: services.extend(
                    ecs.describe_services(cluster=cluster_name, services=[name])["services"]
                ),
                "ClusterNotFoundException",
            )
            return True if all(s.get("status") == "INACTIVE" for s in services) else None

        waited = wait_for(ctx, f"service {name}: stopping its tasks", inactive)
        return f"scaled to 0, tasks stopped after {int(waited)} s" if int(waited) else "scaled to 0"

    def ref(self, ctx: Context, current: Any, change: Change) -> tuple[str, str | None]:
        if current is None:
            return NEW, None
        return str(current["serviceArn"]), unfinished_deployment(current)


def follow_deployment(
    ctx: Context, refs: Mapping[str, Any], wait: bool, drained: bool = False
) -> None:
    """Follows the deployment the service's turn started (or an unfinished one) with `wait`:
    until the new tasks serve, or, with `drained` or --wait-drained, until the old ones are
    gone too."""
    if refs.get(Service.key) is None:  # skipped: no service yet
        return
    _, deployment_id = refs[Service.key]
    if deployment_id is not None and sleeping(ctx):
        return
    if deployment_id is not None and wait:
        deployment.wait_for_deployment(
            ctx, deployment_id, refs[TargetGroup.key], drained or ctx.wait_drained
        )
    elif deployment_id is not None:
        ctx.ui.info(f"not waiting for deployment {deployment_id} (--no-wait)")


def sleeping(ctx: Context) -> bool:
    """True (and said) when the office hours keep the service at zero tasks: its deployment
    has no task to wait for, and the new task definition serves from the next start."""
    if ctx.config.schedule is None:
        return False
    with translated(f"looking up ECS service {ctx.names.service}"):
        service = describe_service(ctx)
    if service is None or int(service.get("desiredCount", 0)) > 0:
        return False
    hours = ctx.config.schedule
    wakes = hours.next_start(autoscaling.now(ctx)).strftime("%a %H:%M")
    ctx.ui.resource(
        "ECS service",
        ctx.names.service,
        "asleep",
        f"outside the office hours ({hours}): the new task definition is deployed, its tasks "
        f"start at {wakes} {hours.timezone}, or now with `dashscale wake`; not waiting",
    )
    return True


def prerequisites() -> tuple[list[Reading], list[Resource]]:
    """What a section that starts the service reads besides it, and the resources of `cluster`
    that must exist by then (the app's own settings are optional)."""
    readings = [r for r in CLUSTER_READINGS if r.key != appconfig.SETTINGS_KEY]
    optional = appconfig.OPTIONAL | cache.KEYS
    return readings, [r for r in CLUSTER_RESOURCES if r.key not in optional]


def deployment_waits(ctx: Context, wait: bool) -> list[Extra]:
    """Following the deployment the service's turn starts (an extra of the run)."""
    return [Extra("deployment", lambda r: follow_deployment(ctx, r, wait), (Service.key,))]


def alb_section(ctx: Context, wait: bool = True) -> str | None:
    """The `alb` command: load balancer, target group, port-80 listener, service, then the
    deployment and the load balancer followed until done, and the target health. Needs what
    `cluster` made. With AUTH the service waits for the HTTPS listener (`tls`). Returns the
    address (None for a dry run)."""
    ctx.ui.step(f"Load balancer {ctx.names.alb} and service {ctx.names.service}")
    resources = (LoadBalancerResource(), TargetGroup(), HttpListener(), Service(signs_in(ctx)))
    readings, required = prerequisites()

    def waits(_: object) -> list[Extra]:
        extras = deployment_waits(ctx, wait)
        if wait:
            extras.append(
                Extra(
                    "load balancer provisioning",
                    lambda r: deployment.wait_until_active(ctx, r[LoadBalancerResource.key]),
                    (LoadBalancerResource.key,),
                )
            )
        return extras

    applied = section(
        ctx,
        [*readings, BalancerAndGroup(), Listeners()],
        resources,
        required,
        "`dashscale cluster` (or `dashscale up`)",
        waits,
    )
    if applied is None:
        return None
    deployment.show_target_health(ctx, applied.results[TargetGroup.key])
    return str(applied.results[LoadBalancerResource.key].address)


def restart(ctx: Context, why: str) -> None:
    """A new deployment of the same task definition: new tasks (that read the secrets anew)."""
    service = describe_service(ctx)
    if service is None or service.get("status") != "ACTIVE":
        ctx.ui.info(f"no service {ctx.names.service} yet: `dashscale up` starts tasks with it")
        return
    with translated(f"restarting the tasks of {ctx.names.service}"):
        ctx.client("ecs").update_service(
            cluster=ctx.names.cluster, service=ctx.names.service, forceNewDeployment=True
        )
    ctx.ui.resource("ECS service", ctx.names.service, "restarted", f"a new deployment, {why}")

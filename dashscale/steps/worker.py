"""Background-callback workers (WORKERS=N): the ECS service APP-worker.

Two resources of the model: the task definition `APP-worker-taskdef` (the app's image, variables,
secrets, task role and REDIS_URL, with the worker command, WORKER_CPU/WORKER_MEMORY and logs in the
app's log group under the stream prefix `worker`) and the service `APP-worker` (WORKERS tasks of
it in the app's subnets and tasks' security group, which reaches the cache; no load balancer; the
circuit breaker rolls back a deployment whose tasks keep failing). A deploy of a new image makes
a revision of both task definitions and updates both services; `up` follows both deployments.
With WORKERS=0 an earlier run's service is scaled to zero and deleted.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from dashscale.aws import translated
from dashscale.context import Context
from dashscale.errors import AwsError
from dashscale.inventory import ignoring, unless_gone, wait_for
from dashscale.model import (
    CREATE,
    DELETE,
    FOREIGN,
    NEW,
    NONE,
    UPDATE,
    Change,
    Item,
    Resource,
    Survey,
    absent,
    compare,
    create,
    not_ours,
)
from dashscale.steps.cluster import Cluster, TaskDefinition, retry_role_not_ready
from dashscale.steps.network import Network, TaskSecurityGroup
from dashscale.steps.service import (
    ServicesReading,
    deployment_configuration,
    find_service,
    primary_deployment,
)

LOG_STREAM_PREFIX = "worker"  # streams are worker/APP-worker/TASK-ID
APP_MODULE = "app"  # src/app.py, the module the image serves (build.wsgi_target)
POLL_SECONDS = 5.0
SERVICE_KEY = "worker service"
GONE = ("ServiceNotFoundException", "ServiceNotActiveException", "ClusterNotFoundException")


def worker_command(ctx: Context) -> list[str]:
    """WORKER_COMMAND split as a shell would, or Celery's worker for the app's `celery_app`."""
    if ctx.config.worker_command:
        return shlex.split(ctx.config.worker_command)
    return ["celery", "-A", f"{APP_MODULE}:celery_app", "worker", "--loglevel=INFO"]


class WorkerTaskDefinition(TaskDefinition):
    """APP-worker-taskdef: the app's task definition with the worker's command and size."""

    key = "worker task definition"
    named = "worker_taskdef"

    def configured(self, ctx: Context) -> bool:
        return bool(ctx.config.workers)

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        # unused with WORKERS=0: left revisions cost nothing (teardown's survey finds them)
        return super().find(ctx, found) if ctx.config.workers else None

    def desired(self, ctx: Context, refs: Mapping[str, Any]) -> dict[str, Any]:
        request = super().desired(ctx, refs)
        (container,) = request["containerDefinitions"]
        container.pop("portMappings", None)  # nothing connects to a worker
        container["name"] = ctx.names.worker_container
        container["command"] = worker_command(ctx)
        container["logConfiguration"]["options"]["awslogs-stream-prefix"] = LOG_STREAM_PREFIX
        return {
            **request,
            "family": self.name(ctx),
            "cpu": str(ctx.config.worker_cpu),
            "memory": str(ctx.config.worker_memory),
        }

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        if ctx.config.workers:
            return super().plan(ctx, current, refs)
        if current is None:
            return absent(self.kind, self.name(ctx))
        return Change(self.kind, self.name(ctx), NONE, detail="unused (WORKERS=0)")

    def ref(self, ctx: Context, current: Any, change: Change) -> str | None:
        if not ctx.config.workers:
            return None
        return super().ref(ctx, current, change)

    def when_absent(self, ctx: Context, survey: Survey) -> tuple[str, str, str] | None:
        if survey.of(self.key) or not ctx.config.workers:
            return None
        return self.name(ctx), "missing", ""


# --- the service ---------------------------------------------------------------------------------


def describe_workers(ctx: Context) -> dict[str, Any] | None:
    """APP-worker while ACTIVE or DRAINING, with its tags; None when it or the cluster is gone."""
    services: list[dict[str, Any]] = []
    with translated(f"looking up ECS service {ctx.names.worker_service}"):
        ignoring(
            lambda: services.extend(
                ctx.client("ecs").describe_services(
                    cluster=ctx.names.cluster,
                    services=[ctx.names.worker_service],
                    include=["TAGS"],
                )["services"]
            ),
            "ClusterNotFoundException",
        )
    found = next((s for s in services if s.get("status") in ("ACTIVE", "DRAINING")), None)
    return dict(found) if found is not None else None


def find_workers(ctx: Context, found: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """APP-worker, checked to be this app's (from `up`'s reading of both services when
    `found` has it); None when missing."""
    return find_service(ctx, ctx.names.worker_service, found)


def worker_settings(ctx: Context, refs: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of APP-worker that `up` manages (create and update take them alike)."""
    network: Network = refs["network"]
    return {
        "taskDefinition": refs[WorkerTaskDefinition.key],
        "desiredCount": ctx.config.workers,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(network.subnet_ids),
                "securityGroups": [refs[TaskSecurityGroup.key]],
                "assignPublicIp": "ENABLED",
            }
        },
        "deploymentConfiguration": deployment_configuration(),
    }


def _view(key: str, value: Any) -> Any:
    """A service field as compared (AWS adds defaults to what it was given)."""
    if key == "networkConfiguration":
        vpc = (value or {}).get("awsvpcConfiguration") or {}
        return (sorted(vpc.get("subnets", [])), sorted(vpc.get("securityGroups", [])))
    if key == "deploymentConfiguration":
        breaker = (value or {}).get("deploymentCircuitBreaker") or {}
        return (bool(breaker.get("enable")), bool(breaker.get("rollback")))
    if key == "taskDefinition":
        return str(value).rsplit("/", 1)[-1]
    return value


class WorkerService(Resource):
    """APP-worker: WORKERS tasks of the worker task definition. Its ref is (ARN, id of the
    deployment to follow, or None)."""

    calls = {
        CREATE: ("ecs:CreateService", "ecs:TagResource"),
        UPDATE: ("ecs:UpdateService",),
        DELETE: ("ecs:UpdateService", "ecs:DeleteService"),
    }
    find_calls = ("ecs:DescribeServices",)
    survey_calls = find_calls

    def configured(self, ctx: Context) -> bool:
        return bool(ctx.config.workers)

    delete_calls = ("ecs:DescribeServices", "ecs:UpdateService", "ecs:DeleteService")
    redeploy_calls = ("ecs:UpdateService",)  # a new image: a new revision for the workers too
    key = SERVICE_KEY
    kind = "ECS service"
    needs = (WorkerTaskDefinition.key, Cluster.key, TaskSecurityGroup.key)
    named = "worker_service"
    reads = (ServicesReading.key,)

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        return find_workers(ctx, found)

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        name = self.name(ctx)
        if not ctx.config.workers:
            if current is None:
                return absent(self.kind, name)
            return Change(self.kind, name, DELETE, detail="WORKERS=0: scaled to 0 and deleted")
        revision = _view("taskDefinition", refs[WorkerTaskDefinition.key])
        if current is None:
            return create(self.kind, name, f"{ctx.config.workers} x {revision}, no load balancer")
        desired = worker_settings(ctx, refs)
        # a field the description leaves out (an emulator's) cannot be compared: unchanged
        differing = {
            key: (_view(key, current.get(key)), _view(key, value))
            for key, value in desired.items()
            if key in current and _view(key, current.get(key)) != _view(key, value)
        }
        detail = f"{current.get('desiredCount')} x {revision}"
        return compare(self.kind, name, differing, detail)

    def apply(
        self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change
    ) -> tuple[str, str | None] | None:
        if change.action == DELETE:
            self.delete(ctx, Item(self.kind, self.name(ctx), DELETE, data={"resource": current}))
            return None
        ecs = ctx.client("ecs")
        desired = worker_settings(ctx, refs)
        with translated(f"setting up ECS service {self.name(ctx)}"):
            if current is None:
                request = {
                    "cluster": ctx.names.cluster,
                    "serviceName": self.name(ctx),
                    "launchType": "FARGATE",
                    "schedulingStrategy": "REPLICA",
                    "propagateTags": "SERVICE",
                    "enableECSManagedTags": True,
                    "tags": ctx.names.ecs_tags(),
                    "clientToken": f"w{ctx.run_id}"[:36],
                    **desired,
                }
                call = ecs.create_service
            else:
                request = {
                    "cluster": ctx.names.cluster,
                    "service": self.name(ctx),
                    **{key: desired[key] for key in change.fields},
                }
                call = ecs.update_service
            service = retry_role_not_ready(
                ctx, lambda: call(**request)["service"], "starting the workers"
            )
        deployment = primary_deployment(service)
        return str(service["serviceArn"]), (str(deployment["id"]) if deployment else None)

    def ref(self, ctx: Context, current: Any, change: Change) -> tuple[str, str | None] | None:
        if not ctx.config.workers:
            return None
        if current is None:
            return NEW, None
        deployment = primary_deployment(current) or {}
        unfinished = deployment.get("rolloutState") not in (None, "COMPLETED")
        return str(current["serviceArn"]), (str(deployment["id"]) if unfinished else None)

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        service = describe_workers(ctx)
        if service is None:
            return []
        name = self.name(ctx)
        if not ctx.names.owns(service.get("tags")):
            return [Item(self.kind, name, FOREIGN, not_ours(ctx))]
        reason = f"{service.get('desiredCount', 0)} worker task(s)"
        return [Item(self.kind, name, DELETE, reason, {"resource": service})]

    def when_absent(self, ctx: Context, survey: Survey) -> tuple[str, str, str] | None:
        if survey.of(self.key) or not ctx.config.workers:
            return None
        return self.name(ctx), "missing", ""

    def status_state(self, ctx: Context, item: Item) -> str:
        return "found" if item.data["resource"].get("status") == "ACTIVE" else "being deleted"

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        service = item.data["resource"]
        return item.name, (
            f"workers: {service.get('runningCount', 0)} running, "
            f"{service.get('pendingCount', 0)} pending, {service.get('desiredCount', 0)} desired"
        )

    def delete(self, ctx: Context, item: Item) -> str:
        """Scaled to zero, deleted, then waited for until its tasks have stopped."""
        ecs = ctx.client("ecs")
        name, cluster = self.name(ctx), ctx.names.cluster
        active = (item.data.get("resource") or {}).get("status") == "ACTIVE"
        if active and (
            unless_gone(
                lambda: ecs.update_service(cluster=cluster, service=name, desiredCount=0), *GONE
            )
            or unless_gone(
                lambda: ecs.delete_service(cluster=cluster, service=name, force=True), *GONE
            )
        ):
            return "already gone"

        def inactive() -> bool | None:
            service = describe_workers(ctx)
            return True if service is None else None

        waited = wait_for(ctx, f"service {name}: stopping its tasks", inactive)
        return f"scaled to 0, tasks stopped after {int(waited)} s" if int(waited) else "scaled to 0"


def follow(ctx: Context, refs: Mapping[str, Any], wait: bool) -> None:
    """Follows the deployment the worker service's turn started, until its tasks run (a
    FAILED rollout, the circuit breaker's rollback, is an error)."""
    started = refs.get(SERVICE_KEY)
    if not started or started[1] is None:
        return
    deployment_id = started[1]
    if not wait:
        ctx.ui.info(f"not waiting for deployment {deployment_id} of the workers (--no-wait)")
        return
    name = ctx.names.worker_service
    ended: dict[str, str] = {}

    def check() -> dict[str, Any] | None:
        service = describe_workers(ctx) or {}
        deployment = next(
            (d for d in service.get("deployments", []) if d.get("id") == deployment_id), None
        )
        if deployment is None:
            ended["failure"] = "the deployment is gone: another deployment replaced it"
            return service
        if deployment.get("rolloutState") == "FAILED":
            ended["failure"] = deployment.get("rolloutStateReason") or "rollout FAILED"
            return service
        running = int(deployment.get("runningCount", 0))
        done = deployment.get("rolloutState") == "COMPLETED"
        return service if done and running >= int(deployment.get("desiredCount", 0)) else None

    service = ctx.wait(f"deploying {name}", f"the workers of {name} to run", check, POLL_SECONDS)
    if "failure" in ended:
        raise AwsError(
            f"the deployment of {name} failed: {ended['failure']}",
            "`dashscale logs --worker --since 30m` shows what the workers printed; fix it, re-run",
        )
    ctx.ui.resource("deployment", deployment_id, "passed", f"{service.get('runningCount')} workers")


RESOURCES: tuple[Resource, ...] = (WorkerTaskDefinition(), WorkerService())

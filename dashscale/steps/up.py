"""`dashscale up`: build, push, cluster, alb, and tls when DOMAIN is set; all of it, side by side.

Every resource of every section is read once, side by side, by the driver every command shares
(dashscale/driver.py); the image builds locally as soon as its reading knows the registry lacks
it, while the rest is read and the plan computed; `--dry-run` prints the plan and stops (and
builds nothing); otherwise it is applied as a task graph: everything that does not need the
image (security groups, cluster, role, log group, load balancer, target group, listener, the
certificate and its validation) starts at once, while the image finishes and pushes; the
service starts as soon as its task definition and the listener exist; the HTTPS listener as
soon as the certificate is issued. A second `up` with nothing changed makes no changing AWS
call; a new image makes one task definition revision and one service update.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dashscale import cost, driver, model
from dashscale.context import Context
from dashscale.model import DELETE, Change, Extra, Reading, Resource
from dashscale.steps import (
    alarms,
    appconfig,
    auth,
    autoscaling,
    ci,
    deployment,
    https,
    taskrole,
    tls,
    worker,
)
from dashscale.steps import alb as alb_step
from dashscale.steps import cluster as cluster_step
from dashscale.steps.build import check_shared_cache
from dashscale.steps.cluster import DeployImage
from dashscale.steps.image import Image, Repository
from dashscale.steps.service import Service, ServicesReading, follow_deployment
from dashscale.steps.tls import CERTIFICATE_TIMEOUT


@dataclass(frozen=True)
class UpResult:
    image: DeployImage
    url: str  # https://DOMAIN with DOMAIN set, else the load balancer's http:// address
    changes: tuple[Change, ...]


def resources(ctx: Context, image: Image) -> list[Resource]:
    """Every resource `up` manages, each after what it needs."""
    items: list[Resource] = [image] if image.uri else [Repository(), image]
    service = Service(behind_sign_in=alb_step.signs_in(ctx))
    items += [*cluster_step.RESOURCES, *alb_step.RESOURCES, service, *autoscaling.RESOURCES]
    items += worker.RESOURCES
    items += alarms.RESOURCES
    if ctx.config.domain:
        items += [*tls.RESOURCES, *auth.resources(ctx), *https.RESOURCES, *https.CLEANUP]
    return items


def every_resource() -> list[Resource]:
    """The one inventory: one of each kind the app can own. `status` shows what their surveys
    find and `teardown` deletes it, in the reverse of their `needs` (dashscale/inventory.py)."""
    return [
        Repository(),
        Image(),
        *cluster_step.RESOURCES,
        appconfig.StoredSecrets(),
        *alb_step.RESOURCES,
        Service(),
        *autoscaling.RESOURCES,
        *worker.RESOURCES,
        *alarms.RESOURCES,
        *tls.RESOURCES,
        *auth.RESOURCES,
        *https.RESOURCES,
        *ci.RESOURCES,
    ]


def readings(ctx: Context) -> list[Reading]:
    shared: list[Reading] = [
        *cluster_step.READINGS,
        alb_step.BalancerAndGroup(),
        alb_step.Listeners(),
        ServicesReading(),
        *alarms.READINGS,
    ]
    if ctx.config.domain:
        shared += [tls.ZoneRecords(), tls.Certificates(), *auth.readings(ctx)]
    return shared


def up(
    ctx: Context,
    image: str | None = None,
    wait: bool = True,
    retries: int = 5,
    check: bool = True,
    update_registrar: bool = False,
    certificate_timeout: float = CERTIFICATE_TIMEOUT,
    sandbox: bool = False,
) -> UpResult | None:
    """The whole deployment; with a dry run, its plan printed instead (returns None)."""
    ctx.ui.step(f"Deploying {ctx.names.app} to {ctx.config.aws_region}")
    appconfig.check_app_env(ctx)  # a bad app.env line stops the run before any AWS call
    check_shared_cache(ctx.config)  # a per-task cache on several tasks: before any AWS call
    # the image builds locally while AWS is read, once its reading knows the registry lacks it
    deployed = Image(image, sandbox and not image, retries, check, early=not ctx.dry_run)
    items = resources(ctx, deployed)
    deploy = Deploy(wait, items)
    hooks: list[driver.Hooks] = [deploy]
    if ctx.config.domain:
        hooks.append(https.TlsHooks(update_registrar, certificate_timeout, wait))
    hooks.append(cost.UpEstimate())  # the estimate, after the plan or the summary
    try:
        done = driver.run(ctx, driver.Section(readings(ctx), items, hooks=hooks))
    except BaseException as error:
        deployed.stop_building(ctx, wait=not isinstance(error, KeyboardInterrupt))
        raise
    return None if done is None else deploy.result


class Deploy(driver.Hooks):
    """`up`'s own steps around the driver: the deployment followed (in the service's task, so
    autoscaling follows it, and the removals of taskrole.AfterDeployment after it), the load
    balancer's provisioning waited for, then the target health and the summary."""

    def __init__(self, wait: bool, items: list[Resource]) -> None:
        self.wait = wait
        self.items = items
        self.result: UpResult | None = None

    def extras(self, ctx: Context, planned: model.Plan) -> list[Extra]:
        removing = _removing(self.items, planned)
        extras = [
            Extra(
                taskrole.DEPLOYED,
                lambda r: _follow(ctx, r, self.wait, removing),
                (Service.key,),
            ),
            # the workers' deployment, followed beside the app's
            Extra(
                "worker deployment",
                lambda r: worker.follow(ctx, r, self.wait),
                (worker.SERVICE_KEY,),
            ),
        ]
        if self.wait:  # nothing needs it active: with --no-wait it provisions on its own
            extras.append(
                Extra(
                    "load balancer provisioning",
                    lambda r: deployment.wait_until_active(
                        ctx, r[alb_step.LoadBalancerResource.key]
                    ),
                    (alb_step.LoadBalancerResource.key,),
                )
            )
        return extras

    def after(self, ctx: Context, done: driver.Done) -> None:
        results = done.results
        balancer: alb_step.LoadBalancer = results[alb_step.LoadBalancerResource.key]
        if results.get(Service.key) is not None:
            _, deployment_id = results[Service.key]
            if self.wait or deployment_id is None:
                deployment.show_target_health(ctx, results[alb_step.TargetGroup.key])
        changes = [c for c in done.changes if c.kind != Image.kind]
        model.show_summary(ctx, changes, [("image", results["image"].uri, "deployed")])
        url = done.address or balancer.address
        self.result = UpResult(results["image"], url, tuple(changes))


def _removing(items: list[Resource], planned: model.Plan) -> list[str]:
    """What the plan deletes once the new task definition serves (taskrole.AfterDeployment)."""
    return [
        planned.changes[item.key].name
        for item in items
        if isinstance(item, taskrole.AfterDeployment) and planned.changes[item.key].action == DELETE
    ]


def _follow(ctx: Context, refs: Mapping[str, Any], wait: bool, removing: list[str]) -> bool:
    """The deployment followed (with `wait`, or when the run deletes what the old tasks use:
    never a task without its secrets or role, and so until the old tasks are gone); True once
    the service runs the new task definition alone, so those deletions may go."""
    if removing and not wait:
        ctx.ui.info(
            f"following the deployment despite --no-wait: {', '.join(removing)} "
            "go once the new tasks serve, and the old ones use them until then"
        )
    follow_deployment(ctx, refs, wait or bool(removing), drained=bool(removing))
    return wait or bool(removing)

"""`dashscale up`: build, push, cluster, alb, and tls when DOMAIN is set; all of it, side by side.

The sections run as a task graph (dashscale/graph.py): everything that does not need the image
(security groups, cluster, role, log group, load balancer and its provisioning, target group,
listener, the certificate and its validation) starts at once, while the image builds and pushes;
the service starts as soon as its task definition and the listener exist; the HTTPS listener as
soon as the certificate is issued. Each piece finds what exists first, so a second `up` with
nothing changed makes no changing AWS call, and a new image makes one task definition revision
and one service update.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dashscale import plan
from dashscale.context import Context
from dashscale.errors import DockerError
from dashscale.graph import TaskGraph
from dashscale.steps import alb as alb_step
from dashscale.steps import cluster as cluster_step
from dashscale.steps import network as network_step
from dashscale.steps import tls as tls_step
from dashscale.steps.autoscaling import ensure_autoscaling
from dashscale.steps.cluster import ClusterResult, DeployImage
from dashscale.steps.network import Network, Outcome, find_network


@dataclass(frozen=True)
class UpResult:
    image: DeployImage
    url: str  # https://DOMAIN with DOMAIN set, else the load balancer's http:// address
    outcomes: tuple[Outcome, ...]

    @property
    def address(self) -> str:
        return self.url


def preflight(ctx: Context, network: Network) -> None:
    """Before anything changes: no resource under one of our names belongs to someone else.
    Every finder of every step, side by side (each raises NotOwnedError on a stranger)."""
    finders = {
        "security groups": lambda: cluster_step.find_security_groups(ctx, network),
        "cluster": lambda: cluster_step.find_cluster(ctx),
        "role": lambda: cluster_step.find_execution_role(ctx),
        "log group": lambda: cluster_step.find_log_group(ctx),
        "task definition": lambda: cluster_step.find_task_definition(ctx),
        "load balancer": lambda: alb_step.find_load_balancer(ctx),
        "target group": lambda: alb_step.find_target_group(ctx),
        "service": lambda: alb_step.find_service(ctx),
    }
    checks = TaskGraph(ctx)
    for name, find in finders.items():
        checks.add(name, f"checking {name}", lambda r, find=find: find())
    checks.run()


def image_for_up(
    ctx: Context, uri: str | None, retries: int = 5, check: bool = True
) -> DeployImage:
    """`--image URI` as given (Docker is never touched); otherwise the pushed image for the
    current content, built, smoke-checked and pushed first when it is not in the registry."""
    if uri:
        ctx.ui.resource("image", uri, "found", f"--image, {ctx.config.architecture}")
        return DeployImage(uri, ctx.config.architecture)
    from dashscale.steps import build as build_step
    from dashscale.steps.push import find_pushed, push

    pushed = find_pushed(ctx)
    if pushed is None:
        _, tag = build_step.current_image(ctx)
        local = build_step.find_local_image(ctx, tag)
        if local is None:
            local = build_step.build(ctx, verbose=ctx.ui.verbose)
            if check:
                build_step.smoke_check(ctx, local)
        else:
            ctx.ui.resource("image", local.ref, "found")
        pushed = push(ctx, retries=retries)
    else:
        ctx.ui.resource("image", pushed.uri, "found", "already pushed")
    return DeployImage(pushed.uri, pushed.architecture)


def sandbox_image(ctx: Context, retries: int = 5, check: bool = True) -> DeployImage:
    """`up --sandbox`: the current content's image from the local engine, built when missing
    and smoke-checked (also when it was already built: seeing it serve is the point), then
    pushed to DASHSCALE_REGISTRY when set. Without a registry the push is skipped (the
    emulator's ECR stores no images) and the local reference is deployed. Without a Docker
    engine the whole image step is skipped, said so, and the rest runs: everything else of the
    sandbox needs no engine."""
    from dashscale.steps import build as build_step
    from dashscale.steps.push import ensure_repository, push

    _, tag = build_step.current_image(ctx)
    try:
        ctx.docker  # noqa: B018 (connects: the sandbox goes on without an engine)
    except DockerError as error:
        ensure_repository(ctx)
        ref = f"{ctx.names.local_image}:{tag}"
        ctx.ui.warn(
            f"{error.message}: the image step (build, smoke check, push) is skipped and the "
            f"task definition names {ref}, which was not built. Start Docker and re-run "
            "`dashscale up --sandbox` to include it."
        )
        ctx.ui.resource("image", ref, "skipped", "no Docker engine")
        return DeployImage(ref, ctx.config.architecture)
    local = build_step.find_local_image(ctx, tag)
    if local is None:
        local = build_step.build(ctx, verbose=ctx.ui.verbose)
    else:
        ctx.ui.resource("image", local.ref, "found")
    if check:
        build_step.smoke_check(ctx, local)
    if ctx.config.dashscale_registry:
        pushed = push(ctx, retries=retries)
        return DeployImage(pushed.uri, pushed.architecture)
    ensure_repository(ctx)
    ctx.ui.resource(
        "image",
        local.ref,
        "skipped",
        "push skipped: DASHSCALE_REGISTRY is not set, so the task definition names the local image",
    )
    return DeployImage(local.ref, local.architecture)


def up(
    ctx: Context,
    image: str | None = None,
    wait: bool = True,
    retries: int = 5,
    check: bool = True,
    update_registrar: bool = False,
    certificate_timeout: float = tls_step.CERTIFICATE_TIMEOUT,
    sandbox: bool = False,
) -> UpResult:
    ctx.ui.step(f"Deploying {ctx.names.app} to {ctx.config.aws_region}")
    network = find_network(ctx)
    preflight(ctx, network)
    # The zone may ask a question (the registrar): settle it before steps run side by side.
    zone = tls_step.prepare_zone(ctx, update_registrar) if ctx.config.domain else None
    deployment = Deployment(ctx, network, sandbox=sandbox)
    graph = deployment.graph(image, wait, retries, check, zone, certificate_timeout)
    results = graph.run()
    _, deployment_id = results["service"]
    url = results.get("https") or results["load balancer"].address
    result = UpResult(results["image"], url, deployment.all_outcomes(graph))
    if ctx.dry_run:  # the plan is shown by the caller (dashscale/plan.py)
        return result
    if wait or deployment_id is None:
        alb_step.show_target_health(ctx, results["target group"])
    show_summary(ctx, result)
    if zone is not None and results.get("https") is None:  # --no-wait left it for later
        ctx.ui.info(tls_step.pending_note(ctx, results["certificate"]))
    return result


class Deployment:
    """The pieces of `up` as tasks of a graph; each keeps the outcomes it reports."""

    def __init__(self, ctx: Context, network: Network, sandbox: bool = False) -> None:
        self.ctx = ctx
        self.network = network
        self.sandbox = sandbox
        self.outcomes: dict[str, list[Outcome]] = {}

    def all_outcomes(self, graph: TaskGraph) -> tuple[Outcome, ...]:
        return tuple(o for name in graph.tasks for o in self.outcomes.get(name, []))

    def graph(
        self,
        image: str | None,
        wait: bool,
        retries: int,
        check: bool,
        zone: tuple[tls_step.Zone, bool | None] | None,
        certificate_timeout: float,
    ) -> TaskGraph:
        ctx, network = self.ctx, self.network
        graph = TaskGraph(ctx)

        def add(name: str, run: Any, after: tuple[str, ...] = ()) -> None:
            outcomes = self.outcomes.setdefault(name, [])
            graph.add(name, name, lambda r: run(r, outcomes), after)

        if ctx.dry_run:
            add("image", lambda r, out: plan.plan_image(ctx, image))
        elif self.sandbox and not image:
            add("image", lambda r, out: sandbox_image(ctx, retries=retries, check=check))
        else:
            add("image", lambda r, out: image_for_up(ctx, image, retries=retries, check=check))
        add(
            "security groups", lambda r, out: network_step.ensure_security_groups(ctx, network, out)
        )
        add("cluster", lambda r, out: cluster_step.ensure_cluster_only(ctx, out))
        add("role", lambda r, out: cluster_step.ensure_execution_role(ctx, out))
        add("log group", lambda r, out: cluster_step.ensure_log_group(ctx, out))
        add("target group", lambda r, out: alb_step.ensure_target_group(ctx, network, out))
        add(
            "load balancer",
            lambda r, out: alb_step.ensure_load_balancer(
                ctx, network, r["security groups"], out, wait=False
            ),
            after=("security groups",),
        )
        add(
            "listener",
            lambda r, out: alb_step.ensure_http_listener(
                ctx, r["load balancer"].arn, r["target group"], out
            ),
            after=("load balancer", "target group"),
        )
        add(
            "task definition",
            lambda r, out: cluster_step.ensure_task_definition(ctx, r["image"], r["role"], out),
            after=("image", "role", "log group"),
        )
        add(
            "service",
            lambda r, out: self.service(r, out, wait),
            after=("task definition", "listener", "cluster", "security groups"),
        )
        if wait:  # nothing needs it active: with --no-wait it provisions on its own
            add(
                "load balancer provisioning",
                lambda r, out: self.wait_active(r["load balancer"]),
                after=("load balancer",),
            )
        add("autoscaling", lambda r, out: ensure_autoscaling(ctx, out), after=("service",))
        if zone is not None:
            add("certificate", lambda r, out: tls_step.prepare_certificate(ctx, *zone))
            add(
                "https",
                lambda r, out: tls_step.https_if_issued(
                    ctx,
                    r["certificate"],
                    r["load balancer"],
                    r["target group"],
                    certificate_timeout,
                    wait,
                ),
                after=("certificate", "listener"),
            )
        return graph

    def service(
        self, r: Mapping[str, Any], outcomes: list[Outcome], wait: bool
    ) -> tuple[str, str | None]:
        cluster = ClusterResult(
            network=self.network,
            security_groups=r["security groups"],
            cluster_arn=r["cluster"],
            role_arn=r["role"],
            log_group=r["log group"],
            task_definition_arn=r["task definition"],
            image=r["image"].uri,
        )
        arn, deployment = alb_step.ensure_service(self.ctx, cluster, r["target group"], outcomes)
        if deployment is not None and wait:
            alb_step.wait_for_deployment(self.ctx, deployment, r["target group"])
        elif deployment is not None:
            self.ctx.ui.info(f"not waiting for deployment {deployment} (--no-wait)")
        return arn, deployment

    def wait_active(self, balancer: alb_step.LoadBalancer) -> None:
        if balancer.state != "active" and not self.ctx.dry_run:
            alb_step.wait_for_load_balancer(self.ctx, balancer.arn)


def show_summary(ctx: Context, result: UpResult) -> None:
    rows = [(o.kind, o.name, o.state) for o in result.outcomes]
    changed = sum(1 for o in result.outcomes if o.state in ("created", "updated"))
    ctx.ui.table(
        f"{ctx.names.app}: {changed} resource(s) created or updated",
        ("resource", "name", "state"),
        [("image", result.image.uri, "deployed"), *rows],
    )

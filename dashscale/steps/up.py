"""`dashscale up`: every section in order (build, push, cluster, alb, then tls when DOMAIN is set).

Each step finds what exists first, so a second `up` with nothing changed makes no changing AWS
call, and a new image makes one task definition revision and one service update.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashscale.context import Context
from dashscale.steps import alb as alb_step
from dashscale.steps import cluster as cluster_step
from dashscale.steps import tls as tls_step
from dashscale.steps.alb import AlbResult, ensure_alb
from dashscale.steps.cluster import ClusterResult, DeployImage, ensure_cluster
from dashscale.steps.network import Outcome, find_network


@dataclass(frozen=True)
class UpResult:
    image: DeployImage
    cluster: ClusterResult
    alb: AlbResult
    url: str  # https://DOMAIN with DOMAIN set, else the load balancer's http:// address

    @property
    def address(self) -> str:
        return self.url

    @property
    def outcomes(self) -> tuple[Outcome, ...]:
        return self.cluster.outcomes + self.alb.outcomes


def preflight(ctx: Context) -> None:
    """Before anything changes: the network is usable and no resource under one of our names
    belongs to someone else."""
    network = find_network(ctx)
    cluster_step.check_ownership(ctx, network)
    alb_step.check_ownership(ctx)


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


def up(
    ctx: Context,
    image: str | None = None,
    wait: bool = True,
    retries: int = 5,
    check: bool = True,
    update_registrar: bool = False,
    certificate_timeout: float = tls_step.CERTIFICATE_TIMEOUT,
) -> UpResult:
    preflight(ctx)
    # The certificate is requested first: ACM validates it while the image, the cluster and
    # the load balancer are made, and the HTTPS listener follows as soon as both exist.
    tls_plan = tls_step.prepare(ctx, update_registrar) if ctx.config.domain else None
    deploy_image = image_for_up(ctx, image, retries=retries, check=check)
    cluster = ensure_cluster(ctx, deploy_image)
    alb = ensure_alb(ctx, cluster, wait=wait)
    url = alb.address
    if tls_plan is not None:
        url = tls_step.finish(
            ctx, tls_plan, alb.load_balancer, alb.target_group_arn, certificate_timeout
        )
    result = UpResult(deploy_image, cluster, alb, url)
    show_summary(ctx, result)
    return result


def show_summary(ctx: Context, result: UpResult) -> None:
    rows = [(o.kind, o.name, o.state) for o in result.outcomes]
    changed = sum(1 for o in result.outcomes if o.state in ("created", "updated"))
    ctx.ui.table(
        f"{ctx.names.app}: {changed} resource(s) created or updated",
        ("resource", "name", "state"),
        [("image", result.image.uri, "deployed"), *rows],
    )

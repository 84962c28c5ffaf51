"""The image `up` deploys, as a resource of the model, and the ways `up` gets it.

The Image resource is `--image URI` as given, or else the current content's image
(build.current_image: a tag from the content of src/ and the build settings): "found" when the
registry already holds that tag, otherwise built, smoke-checked and pushed when its turn comes.
Its ref is a cluster.DeployImage. The ECR repository it reads and needs is repository.py's.

How it is got: `local_image` from the local engine (built and smoke-checked when missing),
`image_for_up` that image pushed, `sandbox_image` for `up --sandbox` (pushed only to
DASHSCALE_REGISTRY; without a Docker engine the image step is skipped and the rest runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dashscale import partition
from dashscale.context import Context
from dashscale.errors import DockerError
from dashscale.model import BUILD, NEW, Change, Resource, compare
from dashscale.steps import build as build_step
from dashscale.steps import push as push_step
from dashscale.steps.cluster import DeployImage
from dashscale.steps.repository import Repository, ensure_repository


class Image(Resource):
    """What the task definition runs. Its ref is a DeployImage."""

    calls = {
        BUILD: (
            "ecr:GetAuthorizationToken",
            "ecr:BatchCheckLayerAvailability",
            "ecr:InitiateLayerUpload",
            "ecr:UploadLayerPart",
            "ecr:CompleteLayerUpload",
            "ecr:PutImage",
        ),
    }
    key = kind = "image"
    reads = (Repository.key,)
    needs = (Repository.key,)

    def __init__(
        self, uri: str | None = None, sandbox: bool = False, retries: int = 5, check: bool = True
    ) -> None:
        self.uri = uri
        self.sandbox = sandbox
        self.retries = retries
        self.check = check

    def name(self, ctx: Context) -> str:
        return self.uri or ctx.names.local_image

    def find(self, ctx: Context, found: Mapping[str, Any]) -> Any:
        if self.uri:
            return DeployImage(self.uri, ctx.config.architecture)
        if found.get(Repository.key) is None or self.sandbox:
            return None
        try:
            pushed = push_step.find_pushed(ctx, repository=found[Repository.key])
        except DockerError as error:  # only the engine can ask a DASHSCALE_REGISTRY
            ctx.ui.warn(
                f"cannot tell whether {ctx.config.dashscale_registry} holds the image: {error}"
            )
            return None
        return DeployImage(pushed.uri, pushed.architecture) if pushed else None

    def target(self, ctx: Context, refs: Mapping[str, Any]) -> str:
        _, tag = build_step.current_image(ctx)
        repository = str(refs.get(Repository.key) or NEW)
        registry = ctx.config.dashscale_registry or (
            repository.split("/", 1)[0]
            if not repository.endswith(NEW)
            else partition.for_region(ctx.config.aws_region).ecr_registry(
                ctx.aws.account_id, ctx.config.aws_region
            )
        )
        return f"{registry}/{ctx.names.repository}:{tag}"

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        if self.uri:
            return compare(self.kind, self.uri, {}, f"--image, {ctx.config.architecture}")
        if current is not None:
            return compare(self.kind, current.uri, {}, "already pushed")
        _, tag = build_step.current_image(ctx)
        local = f"{ctx.names.local_image}:{tag}"
        return Change(self.kind, self.target(ctx, refs), BUILD, (f"would build and push {local}",))

    def apply(
        self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change
    ) -> DeployImage:
        if self.sandbox:
            return sandbox_image(ctx, retries=self.retries, check=self.check)
        return image_for_up(ctx, retries=self.retries, check=self.check)

    def ref(self, ctx: Context, current: Any, change: Change) -> DeployImage:
        if current is not None:
            return current
        return DeployImage(change.name, ctx.config.architecture)


def local_image(ctx: Context, check: bool = True) -> Any:
    """The current content's image in the local engine, built and smoke-checked when it is
    missing. Local only: `up` starts it while it reads AWS, once it knows the registry lacks
    the image."""
    _, tag = build_step.current_image(ctx)
    local = build_step.find_local_image(ctx, tag)
    if local is None:
        local = build_step.build(ctx, verbose=ctx.ui.verbose)
        if check:
            build_step.smoke_check(ctx, local)
    else:
        ctx.ui.resource("image", local.ref, "found")
    return local


def image_for_up(ctx: Context, retries: int = 5, check: bool = True) -> DeployImage:
    """Pushes the current content's image (built and smoke-checked first when the local engine
    lacks it)."""
    local_image(ctx, check)
    pushed = push_step.push(ctx, retries=retries)
    return DeployImage(pushed.uri, pushed.architecture)


def sandbox_image(ctx: Context, retries: int = 5, check: bool = True) -> DeployImage:
    """`up --sandbox`: the current content's image from the local engine, built when missing
    and smoke-checked (also when it was already built: seeing it serve is the point), then
    pushed to DASHSCALE_REGISTRY when set. Without a registry the push is skipped (the
    emulator's ECR stores no images) and the local reference is deployed. Without a Docker
    engine the whole image step is skipped, said so, and the rest runs: everything else of the
    sandbox needs no engine."""
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
        pushed = push_step.push(ctx, retries=retries)
        return DeployImage(pushed.uri, pushed.architecture)
    ensure_repository(ctx)
    ctx.ui.resource(
        "image",
        local.ref,
        "skipped",
        "push skipped: DASHSCALE_REGISTRY is not set, so the task definition names the local image",
    )
    return DeployImage(local.ref, local.architecture)

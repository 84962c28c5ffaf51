"""The image `up` deploys, as a resource of the model, and the ways `up` gets it.

The Image resource is `--image URI` as given, or else the current content's image
(build.current_image: a tag from the content of src/ and the build settings): "found" when the
registry already holds that tag, otherwise built, smoke-checked and pushed. A real `up` starts
the local build (and smoke check) as soon as its reading knows the registry lacks the image,
while the rest of AWS is read and the plan made (`LocalBuild`); the push waits for the
repository, and the task definition for the push. A dry run builds nothing. Its ref is a
cluster.DeployImage. The ECR repository it reads and needs is repository.py's.

How it is got otherwise: `local_image` from the local engine (built and smoke-checked when
missing), `image_for_up` that image pushed, `sandbox_image` for `up --sandbox` (pushed only to
DASHSCALE_REGISTRY; without a Docker engine the image step is skipped and the rest runs).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from dashscale import partition
from dashscale.aws import Cancelled
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
    # the registry's answer to "is the current content's image there?"
    find_calls = ("ecr:GetAuthorizationToken", "ecr:DescribeImages")
    redeploy_calls = calls[BUILD]
    key = kind = "image"
    reads = (Repository.key,)
    needs = (Repository.key,)

    def __init__(
        self,
        uri: str | None = None,
        sandbox: bool = False,
        retries: int = 5,
        check: bool = True,
        early: bool = False,
    ) -> None:
        self.uri = uri
        self.sandbox = sandbox
        self.retries = retries
        self.check = check
        self.early = early  # `up`: build locally while AWS is read, once the registry lacks it
        self.building: LocalBuild | None = None

    def name(self, ctx: Context) -> str:
        return self.uri or ctx.names.local_image

    def find(self, ctx: Context, found: Mapping[str, Any]) -> Any:
        if self.uri:
            return DeployImage(self.uri, ctx.config.architecture)
        if self.sandbox:
            return None
        pushed = self._pushed(ctx, found)
        if pushed is None and self.early and not ctx.dry_run:
            self.building = LocalBuild(ctx, self.check)
        return pushed

    def _pushed(self, ctx: Context, found: Mapping[str, Any]) -> DeployImage | None:
        """The current content's image when the repository holds it."""
        if found.get(Repository.key) is None:
            return None
        try:
            pushed = push_step.find_pushed(ctx, repository=found[Repository.key])
        except DockerError as error:  # only the engine can ask a DASHSCALE_REGISTRY
            ctx.ui.warn(
                f"cannot tell whether {ctx.config.dashscale_registry} holds the image: {error}"
            )
            return None
        return DeployImage(pushed.uri, pushed.architecture) if pushed else None

    def stop_building(self, ctx: Context, wait: bool = True) -> None:
        """A run that fails before the image's turn stops the build it started."""
        if self.building is not None:
            self.building.stop(ctx, wait)

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
        return image_for_up(ctx, retries=self.retries, check=self.check, building=self.building)

    def ref(self, ctx: Context, current: Any, change: Change) -> DeployImage:
        if current is not None:
            return current
        return DeployImage(change.name, ctx.config.architecture)


class LocalBuild:
    """`local_image` in a thread of its own, started while `up` reads AWS; the image's turn
    waits for it (`result`). A daemon thread: a stopped command does not wait for it at exit
    (the build stops reading once the run is cancelled, and the smoke check's container is
    cleaned up: build.smoke_check)."""

    STOP_BOUND = 5.0  # seconds a failed run gives the build to stop and clean up

    def __init__(self, ctx: Context, check: bool) -> None:
        self._done = threading.Event()
        self._image: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(ctx, check), name="local image", daemon=True
        )
        self._thread.start()

    def _run(self, ctx: Context, check: bool) -> None:
        try:
            with ctx.ui.lane("image: building locally"):
                self._image = local_image(ctx, check)
        except BaseException as error:  # raised again where the run waits for it
            self._error = error
        finally:
            self._done.set()

    def result(self, ctx: Context) -> Any:
        """The local image once built, or the build's error; Cancelled when the run stops."""
        with ctx.ui.waiting("waiting for the local build"):
            while not self._done.wait(0.1):
                if ctx.clock.cancelled.is_set():
                    raise Cancelled()
        if self._error is not None:
            raise self._error
        return self._image

    def stop(self, ctx: Context, wait: bool = True) -> None:
        """Stops the build; with `wait`, gives it STOP_BOUND seconds to end (an interrupted
        command does not wait: stopping.finish_interrupted cleans up)."""
        if not self._done.is_set():
            ctx.clock.cancelled.set()
            if wait:
                self._thread.join(self.STOP_BOUND)


def local_image(ctx: Context, check: bool = True) -> Any:
    """The current content's image in the local engine, built and smoke-checked when it is
    missing. Local only: `up` starts it while it reads AWS (`LocalBuild`), once it knows the
    registry lacks the image."""
    _, tag = build_step.current_image(ctx)
    local = build_step.find_local_image(ctx, tag)
    if local is None:
        local = build_step.build(ctx, verbose=ctx.ui.verbose)
        if check:
            build_step.smoke_check(ctx, local)
    else:
        ctx.ui.resource("image", local.ref, "found")
    return local


def image_for_up(
    ctx: Context, retries: int = 5, check: bool = True, building: LocalBuild | None = None
) -> DeployImage:
    """Pushes the current content's image (built and smoke-checked first when the local engine
    lacks it; by `building` when the run started that while it read AWS)."""
    if building is None:
        local_image(ctx, check)
    else:
        building.result(ctx)
    return push_image(ctx, retries)


def push_image(ctx: Context, retries: int = 5) -> DeployImage:
    """The current content's image pushed to the app's repository."""
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

"""`--dry-run`: the same steps as a real run, reading AWS and printing what they would do.

Every step already finds what exists and works out what differs before it acts; in a dry run
(`ctx.dry_run`) each changing call site is skipped and the step reports "would create" or
"would update" with the differing fields, "unchanged" otherwise. What a later step needs from
something that would be created (an id, an ARN) is the placeholder NEW, which the finders treat
as "does not exist yet", so what depends on it is planned as "would create" too. Waits are
skipped: nothing was started.

The safety net: the run's AWS clients refuse every operation that is not a read
(`aws.refuse_changes`), so a call site the plan missed stops the run instead of changing AWS.
Docker is never used except, with DASHSCALE_REGISTRY, to ask that registry whether it already
holds the image (and the plan goes on without it when the engine is unreachable).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dashscale.aws import translated
from dashscale.context import Context
from dashscale.errors import DockerError

if TYPE_CHECKING:  # the steps import this module: theirs are imported where used
    from dashscale.steps.cluster import DeployImage

NEW = "(new)"  # the id or ARN of something a dry run would create


def is_new(value: object) -> bool:
    """True for a placeholder of something that does not exist yet."""
    return isinstance(value, str) and value.endswith(NEW)


def change(field: str, old: Any, new: Any) -> str:
    """One differing field as the plan shows it."""
    return f"{field} {_shown(old)} → {_shown(new)}"


def _shown(value: Any) -> str:
    if value is None or value == [] or value == "":
        return "(none)"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(v) for v in value)
    return str(value)


def start(ctx: Context) -> None:
    """Turns the run into a dry run; before the first AWS client exists (they are made
    read-only when created)."""
    ctx.dry_run = True
    ctx.ui.dry_run = True


# --- the image ----------------------------------------------------------------------------------


def plan_image(ctx: Context, uri: str | None) -> DeployImage:
    """The image `up` would deploy, and whether it would build and push it first. Reads the
    repository and its images; never builds, pushes or needs the Docker engine."""
    from dashscale.steps.cluster import DeployImage

    if uri:
        ctx.ui.resource("image", uri, "found", f"--image, {ctx.config.architecture}")
        return DeployImage(uri, ctx.config.architecture)
    from dashscale.names import TAG_KEY
    from dashscale.steps import build
    from dashscale.steps.push import _describe, _differences

    ecr = ctx.client("ecr")
    name = ctx.names.repository
    keep = ctx.config.ecr_keep_images
    _, tag = build.current_image(ctx)
    local = f"{ctx.names.local_image}:{tag}"
    with translated(f"reading the ECR repository {name}"):
        repo = _describe(ecr, name)
        if repo is None:
            ctx.ui.resource(
                "ECR repository",
                name,
                "created",
                f"scan on push, immutable tags, keeps {keep} images",
            )
        else:
            tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", [])
            differences = _differences(ecr, repo, keep)
            if not ctx.names.owns(tags):
                ctx.ui.resource(
                    "ECR repository", name, "found", f"not tagged {TAG_KEY}: used as is"
                )
            elif differences:
                ctx.ui.resource("ECR repository", name, "updated", "; ".join(differences))
            else:
                ctx.ui.resource("ECR repository", name, "found")
    registry = ctx.config.dashscale_registry or (
        str(repo["repositoryUri"]).split("/", 1)[0]
        if repo
        else f"{ctx.aws.account_id}.dkr.ecr.{ctx.config.aws_region}.amazonaws.com"
    )
    target = f"{registry}/{name}:{tag}"
    pushed = _is_pushed(ctx, repo is not None)
    if pushed:
        ctx.ui.resource("image", target, "found", "already pushed")
    else:
        note = "" if pushed is False else " (when the registry does not hold it)"
        ctx.ui.resource(
            "image", target, "would build and push", f"would build and push {local}{note}"
        )
    return DeployImage(target, ctx.config.architecture)


def _is_pushed(ctx: Context, repository_exists: bool) -> bool | None:
    """Whether the registry holds the current content's tag; None when it cannot be told (only
    the Docker engine can ask a DASHSCALE_REGISTRY, and none is running)."""
    if not repository_exists:
        return False
    from dashscale.steps.push import find_pushed

    try:
        return find_pushed(ctx) is not None
    except DockerError as error:
        ctx.ui.warn(f"cannot tell whether {ctx.config.dashscale_registry} holds the image: {error}")
        return None


# --- up -------------------------------------------------------------------------------------------


def plan_up(ctx: Context, image: str | None) -> None:
    """`up --dry-run`: every step of `up` in plan mode, then the plan as a table."""
    from dashscale.steps import up as up_step

    start(ctx)
    up_step.up(ctx, image, wait=False)
    show_plan(ctx)


def show_plan(ctx: Context) -> None:
    rows = []
    for kind, name, state, note in ctx.ui.planned:
        shown = note if state.startswith("would") else ""
        rows.append((kind, name, state, shown))
    counts = {
        label: sum(1 for row in rows if row[2].startswith(prefix))
        for label, prefix in (
            ("to create", "would create"),
            ("to update", "would update"),
            ("to build and push", "would build"),
            ("unchanged", "unchanged"),
        )
    }
    summary = ", ".join(f"{count} {label}" for label, count in counts.items() if count)
    ctx.ui.table(
        f"{ctx.names.app}: plan ({summary or 'nothing to do'})",
        ("resource", "name", "planned", "what differs"),
        rows,
    )
    ctx.ui.info("dry run: nothing was changed; run the same command without --dry-run to apply")

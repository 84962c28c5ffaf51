"""The app's ECR repository APP-repository: scan on push, immutable tags, a lifecycle policy that
keeps ECR_KEEP_IMAGES images. A repository of the same name that is not this app's is used as it
is (never changed), with a warning on what differs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dashscale.aws import require_owned, translated
from dashscale.context import Context
from dashscale.inventory import unless_gone
from dashscale.model import (
    CREATE,
    FOREIGN,
    KEEP,
    NEW,
    UPDATE,
    Change,
    Item,
    Resource,
    Survey,
    compare,
    create,
)
from dashscale.names import TAG_KEY


def lifecycle_policy(keep: int) -> dict[str, Any]:
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"dashscale: keep the {keep} most recent images",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": keep,
                },
                "action": {"type": "expire"},
            }
        ]
    }


def _current_policy(ecr: Any, name: str) -> dict[str, Any] | None:
    try:
        text = ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]
    except ecr.exceptions.LifecyclePolicyNotFoundException:
        return None
    try:
        return dict(json.loads(text))
    except ValueError:
        return None


def repository_differences(ecr: Any, repo: dict[str, Any], keep: int) -> list[str]:
    name = repo["repositoryName"]
    found = []
    if not repo.get("imageScanningConfiguration", {}).get("scanOnPush"):
        found.append("scan on push is off")
    if repo.get("imageTagMutability", "MUTABLE") != "IMMUTABLE":
        found.append("tags are mutable")
    if _current_policy(ecr, name) != lifecycle_policy(keep):
        found.append(f"the lifecycle policy does not keep {keep} images")
    return found


def describe_repository(ecr: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(ecr.describe_repositories(repositoryNames=[name])["repositories"][0])
    except ecr.exceptions.RepositoryNotFoundException:
        return None


def find_repository(ctx: Context) -> dict[str, Any] | None:
    """APP-repository when it exists and is this app's (NotOwnedError when it is not)."""
    ecr = ctx.client("ecr")
    name = ctx.names.repository
    with translated(f"looking up the ECR repository {name}"):
        repo = describe_repository(ecr, name)
        if repo is None:
            return None
        tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", [])
    require_owned(ctx.names, "ECR repository", name, tags)
    return repo


def ensure_repository(ctx: Context, quiet: bool = False) -> dict[str, Any]:
    """APP-repository with scan on push, immutable tags and a bounded lifecycle policy.

    A repository of ours (tagged dashscale:app=APP) is brought to these settings; one of the
    same name that is not ours is used as it is, with a warning on what differs.
    """
    ecr = ctx.client("ecr")
    name = ctx.names.repository
    with translated(f"looking up the ECR repository {name}"):
        repo = describe_repository(ecr, name)
    if repo is None:
        return _create_repository(ctx, quiet)
    with translated(f"reading the settings of the ECR repository {name}"):
        tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", [])
        differences = repository_differences(ecr, repo, ctx.config.ecr_keep_images)
    if not ctx.names.owns(tags):
        _use_as_it_is(ctx, differences, quiet)
    elif differences:
        _fix_settings(ctx, differences, quiet)
    elif not quiet:
        ctx.ui.resource("ECR repository", name, "found")
    return repo


def _policy_text(ctx: Context) -> str:
    return json.dumps(lifecycle_policy(ctx.config.ecr_keep_images))


def _create_repository(ctx: Context, quiet: bool) -> dict[str, Any]:
    ecr = ctx.client("ecr")
    name = ctx.names.repository
    with translated(f"creating the ECR repository {name}"):
        try:
            repo = ecr.create_repository(
                repositoryName=name,
                tags=ctx.names.tags(),
                imageTagMutability="IMMUTABLE",
                imageScanningConfiguration={"scanOnPush": True},
            )["repository"]
        except ecr.exceptions.RepositoryAlreadyExistsException:  # a retried, lost answer
            repo = describe_repository(ecr, name)
        ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=_policy_text(ctx))
    if not quiet:
        keep = ctx.config.ecr_keep_images
        ctx.ui.resource(
            "ECR repository", name, "created", f"scan on push, immutable tags, keeps {keep} images"
        )
    return dict(repo or {})


def _use_as_it_is(ctx: Context, differences: list[str], quiet: bool) -> None:
    """Another's repository of our name: never changed, what differs only said."""
    name = ctx.names.repository
    if not quiet:
        ctx.ui.resource("ECR repository", name, "found", "not created by dashscale: used as it is")
    if differences:
        ctx.ui.warn(
            f"{name} is not tagged {TAG_KEY}={ctx.names.app}, so dashscale leaves it as it "
            f"is although {'; '.join(differences)}. Tag it {TAG_KEY}={ctx.names.app} to let "
            "dashscale manage it."
        )


def _fix_settings(ctx: Context, differences: list[str], quiet: bool) -> None:
    """Our repository, brought back to our settings (each call sets one, idempotently)."""
    ecr = ctx.client("ecr")
    name = ctx.names.repository
    with translated(f"updating the ECR repository {name}"):
        ecr.put_image_scanning_configuration(
            repositoryName=name, imageScanningConfiguration={"scanOnPush": True}
        )
        ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability="IMMUTABLE")
        ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=_policy_text(ctx))
    if not quiet:
        ctx.ui.resource("ECR repository", name, "updated", "; ".join(differences) + " (fixed)")


class Repository(Resource):
    """APP-repository: scan on push, immutable tags, a bounded lifecycle policy. One of the
    same name that is not this app's is used as it is."""

    find_calls = ("ecr:DescribeRepositories", "ecr:ListTagsForResource", "ecr:GetLifecyclePolicy")
    survey_calls = (*find_calls, "ecr:ListImages")  # how many images it holds
    delete_calls = ("ecr:DeleteRepository",)

    calls = {
        CREATE: (
            "ecr:CreateRepository",
            "ecr:TagResource",
            "ecr:PutLifecyclePolicy",
        ),
        UPDATE: (
            "ecr:PutImageScanningConfiguration",
            "ecr:PutImageTagMutability",
            "ecr:PutLifecyclePolicy",
        ),
    }
    key = kind = "ECR repository"
    named = "repository"

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        ecr = ctx.client("ecr")
        with translated(f"reading the ECR repository {self.name(ctx)}"):
            repo = describe_repository(ecr, self.name(ctx))
            if repo is None:
                return None
            tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", [])
            owned = ctx.names.owns(tags)
            differences = (
                repository_differences(ecr, repo, ctx.config.ecr_keep_images) if owned else []
            )
        return {**repo, "owned": owned, "differences": differences}

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        keep = ctx.config.ecr_keep_images
        if current is None:
            return create(
                self.kind, self.name(ctx), f"scan on push, immutable tags, keeps {keep} images"
            )
        if not current["owned"]:
            return Change(
                self.kind, self.name(ctx), KEEP, detail=f"not tagged {TAG_KEY}: used as is"
            )
        differing = {d: ("", "") for d in current["differences"]}
        shown = {d: d for d in current["differences"]}
        return compare(self.kind, self.name(ctx), differing, "", shown)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> str:
        return str(ensure_repository(ctx, quiet=True).get("repositoryUri", ""))

    def ref(self, ctx: Context, current: Any, change: Change) -> str:
        return str(current["repositoryUri"]) if current else NEW

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        """Kept unless --all: it holds the app's images (counted for the report)."""
        keep = "" if survey.everything else "holds your images; --all deletes it"
        items = self.found_item(ctx, lambda: find_repository(ctx), keep=keep)
        for item in (i for i in items if i.action != FOREIGN):
            count = count_images(ctx)
            item.data["images"] = count
            item.reason = (
                f"holds {count} image(s); --all deletes it" if keep else f"{count} image(s)"
            )
        return items

    missing_shown = True

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        return item.name, str(item.data["resource"].get("repositoryUri", ""))

    def delete(self, ctx: Context, item: Item) -> str:
        ecr = ctx.client("ecr")
        name = self.name(ctx)
        gone = unless_gone(
            lambda: ecr.delete_repository(repositoryName=name, force=True),
            "RepositoryNotFoundException",
        )
        return gone or f"with its {item.data.get('images', 0)} image(s)"


def count_images(ctx: Context) -> int:
    """How many images (distinct digests) the app's repository holds."""
    ecr = ctx.client("ecr")
    with translated(f"counting the images of {ctx.names.repository}"):
        pages = ecr.get_paginator("list_images").paginate(repositoryName=ctx.names.repository)
        return len({i.get("imageDigest") for page in pages for i in page.get("imageIds", [])})

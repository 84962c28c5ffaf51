"""The one inventory (dashscale/inventory.py): a new kind of resource is one class, and status,
teardown, its dry run and its order follow from it; the delete order is the reverse of `needs`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dashscale import inventory
from dashscale.context import Context
from dashscale.model import DELETE, Item, Resource, Survey
from dashscale.steps import status as status_step
from dashscale.steps import teardown as teardown_step
from dashscale.steps.up import every_resource
from tests.support.operating import IMAGE, said


def test_every_resource_goes_after_everything_that_needs_it() -> None:
    resources = every_resource()
    order = [r.key for r in inventory.deletion_order(resources)]
    assert sorted(order) == sorted(r.key for r in resources)
    pairs = 0
    for resource in resources:
        for needed in resource.needs:
            if needed in order:
                pairs += 1
                assert order.index(resource.key) < order.index(needed), (resource.key, needed)
        for later in resource.deleted_after:
            assert order.index(later) < order.index(resource.key), (resource.key, later)
    assert pairs > 20  # the model's needs, not an empty graph


class Throwaway(Resource):
    """A kind only this test knows: it lives in the cluster, so it goes before the cluster."""

    key = kind = "throwaway thing"
    needs = ("ECS cluster",)

    def __init__(self, boto: Any, deleted: list[bool]) -> None:
        self.boto = boto
        self.deleted = deleted

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        if self.deleted:
            return []
        return [Item(self.kind, f"{ctx.names.app}-thing", DELETE, "made by a test")]

    def delete(self, ctx: Context, item: Item) -> str:
        clusters = self.boto("ecs").describe_clusters(clusters=["demo-cluster"])["clusters"]
        self.deleted.append(any(c["status"] == "ACTIVE" for c in clusters))
        return "gone"


def test_a_new_kind_is_in_teardown_its_dry_run_and_its_order(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("up", "--image", IMAGE).exit_code == 0
    deleted: list[bool] = []
    with_it = lambda: [*every_resource(), Throwaway(boto, deleted)]  # noqa: E731
    monkeypatch.setattr(teardown_step, "every_resource", with_it)
    monkeypatch.setattr(status_step, "every_resource", with_it)

    shown = json.loads(run("status", "--json").stdout)["resources"]
    assert {
        "kind": "throwaway thing",
        "name": "demo-thing",
        "state": "found",
        "detail": "made by a test",
    } in shown

    listing = run("teardown", "--dry-run")
    assert listing.exit_code == 0, listing.output
    text = said(listing.stderr)
    assert "throwaway thing demo-thing would delete made by a test" in text
    assert text.index("demo-thing") < text.index("demo-cluster")
    assert deleted == []

    result = run("teardown", "--yes")
    assert result.exit_code == 0, result.output
    assert "throwaway thing demo-thing deleted gone" in said(result.stderr)
    assert deleted == [True]  # deleted while the cluster it lives in was still there

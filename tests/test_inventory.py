"""The one inventory (dashscale/inventory.py): a new kind of resource is one class in its
section, and `up`, its dry run, status, teardown, its dry run and its order follow from it; the
delete order is the reverse of `needs`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from dashscale import inventory
from dashscale.context import Context
from dashscale.model import (
    DELETE,
    NEW,
    Change,
    Item,
    Resource,
    Survey,
    compare,
    create,
    is_new,
)
from dashscale.steps import cluster as cluster_step
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
        for later in (*resource.deleted_after, *resource.deleted_later_than):
            assert order.index(later) < order.index(resource.key), (resource.key, later)
    assert pairs > 20  # the model's needs, not an empty graph


class Throwaway(Resource):
    """A kind only this test knows, declared in the cluster section like any other: it lives in
    the cluster, so it is made after it and deleted before it. Its "AWS" is `made`."""

    key = kind = "throwaway thing"
    needs = ("ECS cluster",)
    missing_shown = True

    def __init__(self, boto: Any) -> None:
        self.boto = boto
        self.made: list[str] = []
        self.deleted_while_cluster_active: list[bool] = []

    def name(self, ctx: Context) -> str:
        return f"{ctx.names.app}-thing"

    def find(self, ctx: Context, found: Mapping[str, Any]) -> Any:
        return self.made[-1] if self.made else None

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        if current is None:
            return create(self.kind, self.name(ctx), "made by a test")
        return compare(self.kind, self.name(ctx), {}, "made by a test")

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> str:
        assert not is_new(refs["ECS cluster"])  # made after what it needs
        self.made.append(self.name(ctx))
        return self.name(ctx)

    def ref(self, ctx: Context, current: Any, change: Change) -> str:
        return current or NEW

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        return [Item(self.kind, name, DELETE, "made by a test") for name in self.made]

    def delete(self, ctx: Context, item: Item) -> str:
        clusters = self.boto("ecs").describe_clusters(clusters=["demo-cluster"])["clusters"]
        self.deleted_while_cluster_active.append(any(c["status"] == "ACTIVE" for c in clusters))
        self.made.remove(item.name)
        return "gone"


def test_a_new_kind_is_in_up_its_dry_run_status_teardown_and_their_order(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declared in its section only: no command is told about it."""
    thing = Throwaway(boto)
    monkeypatch.setattr(cluster_step, "RESOURCES", (*cluster_step.RESOURCES, thing))

    plan = run("up", "--image", IMAGE, "--dry-run")
    assert plan.exit_code == 0, plan.output
    assert "throwaway thing demo-thing would create made by a test" in said(plan.stderr)
    assert thing.made == []
    missing = json.loads(run("status", "--json").stdout)["resources"]
    assert {"kind": "throwaway thing", "name": "demo-thing", "state": "missing", "detail": ""} in (
        missing
    )

    assert run("up", "--image", IMAGE).exit_code == 0
    assert thing.made == ["demo-thing"]
    shown = json.loads(run("status", "--json").stdout)["resources"]
    row = {"kind": "throwaway thing", "name": "demo-thing", "state": "found"}
    assert {**row, "detail": "made by a test"} in shown

    listing = run("teardown", "--dry-run")
    assert listing.exit_code == 0, listing.output
    text = said(listing.stderr)
    assert "throwaway thing demo-thing would delete made by a test" in text
    assert text.index("demo-thing") < text.index("demo-cluster")
    assert thing.made == ["demo-thing"]

    result = run("teardown", "--yes")
    assert result.exit_code == 0, result.output
    assert "throwaway thing demo-thing deleted gone" in said(result.stderr)
    assert thing.made == [] and thing.deleted_while_cluster_active == [True]

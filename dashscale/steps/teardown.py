"""`dashscale teardown`: remove what the app costs, in the order real AWS demands.

Three phases, all on the model's Resources (dashscale/inventory.py):
- survey (reads only): every Resource finds what the app owns of its kind, each item marked
  delete, keep (holds data or identity, or is still needed by something else) or not this app's
  (no dashscale:app tag with this APP_NAME: reported, never touched);
- once confirmed, the deletions: each resource once every resource that needs it is gone (the
  reverse of `needs`), independent branches side by side, each waiting or retrying where AWS
  needs time; a deletion that fails skips only what depends on it;
- a second survey that proves nothing meant for deletion is left, or names what is and why.

Something already gone counts as done, so a teardown can be re-run from any state.
"""

from __future__ import annotations

import click

from dashscale import inventory
from dashscale.aws import POLICY_HINT
from dashscale.context import Context
from dashscale.errors import EXIT_USAGE, DashscaleError
from dashscale.inventory import Inventory
from dashscale.model import Item, Resource
from dashscale.steps.up import every_resource
from dashscale.ui import is_interactive


class ConfirmationNeeded(DashscaleError):
    """Deleting needs a yes, and there is no terminal to ask on."""

    exit_code = EXIT_USAGE


# --- the command --------------------------------------------------------------------------------


def in_deletion_order(items: list[Item], resources: list[Resource]) -> list[Item]:
    order = {r.key: index for index, r in enumerate(inventory.deletion_order(resources))}
    return sorted(items, key=lambda item: order.get(item.owner, len(order)))


def show(ctx: Context, plan: Inventory, dry_run: bool) -> None:
    """The listing: what goes (in the order it goes), what stays and why, what is not ours."""
    if plan.to_delete:
        ctx.ui.info("Would delete, in this order:" if dry_run else "To delete, in this order:")
        for item in in_deletion_order(plan.to_delete, every_resource()):
            ctx.ui.resource(
                item.kind, item.name, "would delete" if dry_run else "delete", item.reason
            )
    if plan.kept:
        ctx.ui.info("Kept:")
        for item in plan.kept:
            ctx.ui.resource(item.kind, item.name, "kept", item.reason)
    if plan.foreign:
        ctx.ui.info("Same name, but not this app's (left alone):")
        for item in plan.foreign:
            ctx.ui.resource(item.kind, item.name, "not ours", item.reason)


def confirm(ctx: Context, plan: Inventory, yes: bool) -> None:
    if yes:
        return
    count = len(plan.to_delete)
    if not is_interactive():
        raise ConfirmationNeeded(
            f"teardown would delete {count} resource(s) of {ctx.names.app} and there is no "
            "terminal to confirm on; nothing was deleted",
            "re-run with --yes to delete them, or with --dry-run to only list them",
        )
    question = f"Delete these {count} resource(s) of {ctx.names.app} in {ctx.config.aws_region}?"
    if not click.confirm(question, default=False, err=True):
        raise DashscaleError("teardown cancelled; nothing was deleted")


def teardown(ctx: Context, *, everything: bool, yes: bool, dry_run: bool) -> Inventory:
    """The `teardown` command: survey, show, confirm, delete in order, verify. Returns the
    plan it surveyed first."""
    where = f"{ctx.names.app} in {ctx.config.aws_region}"
    ctx.ui.step(f"Surveying {where}")
    resources = every_resource()
    plan = inventory.survey(ctx, resources, everything)
    if not plan.items:
        ctx.ui.info(f"nothing of {where} exists: nothing to delete")
        return plan
    show(ctx, plan, dry_run)
    if not plan.to_delete:
        ctx.ui.info("nothing to delete")
        return plan
    if dry_run:
        ctx.ui.info(f"dry run: nothing was deleted ({len(plan.to_delete)} resource(s) would be)")
        return plan
    confirm(ctx, plan, yes)
    ctx.ui.step(f"Deleting {len(plan.to_delete)} resource(s) of {where}")
    problems = inventory.delete(ctx, resources, plan)
    verify(ctx, plan, everything, problems)
    return plan


def verify(
    ctx: Context, plan: Inventory, everything: bool, problems: dict[tuple[str, str], str]
) -> None:
    """A second survey: nothing that was to be deleted may be left. Ends with the report."""
    ctx.ui.step("Checking what is left")
    resources = every_resource()
    after = inventory.survey(ctx, resources, everything)
    left = after.to_delete
    planned = {item.key for item in plan.to_delete}
    deleted = [item for item in plan.to_delete if item.key not in {i.key for i in left}]
    for item in in_deletion_order(left, resources):
        if item.key in problems:
            reason = problems[item.key]
        elif item.key in planned:
            reason = "still there after its deletion: AWS may still be removing it"
        else:
            reason = "appeared during the teardown"
        item.reason = reason
        ctx.ui.resource(item.kind, item.name, "left", reason)
    kept = ", ".join(f"{item.kind} {item.name}" for item in after.kept)
    summary = f"{ctx.names.app}: {len(deleted)} resource(s) deleted"
    if kept:
        summary += f"; kept: {kept}"
    if after.foreign:
        summary += f"; {len(after.foreign)} with the same name but not this app's left alone"
    ctx.ui.info(summary)
    if left:
        names = "; ".join(
            f"{item.kind} {item.name} ({item.reason})"
            for item in in_deletion_order(left, resources)
        )
        denied = any("not allowed to" in item.reason for item in left)
        raise DashscaleError(
            f"{len(left)} resource(s) of {ctx.names.app} are still there: {names}",
            (f"{POLICY_HINT}; " if denied else "")
            + "fix what is named, then run `dashscale teardown` again: it deletes only what is "
            "left",
        )
    ctx.ui.info(f"teardown of {ctx.names.app} complete: nothing of it is left to delete")

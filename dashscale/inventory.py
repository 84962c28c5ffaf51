"""What the app owns, from the model's Resources alone: the survey that `teardown` and `status`
read, and the deletions in the order real AWS demands.

Every Resource surveys its own kind (`Resource.survey`) and deletes what it found
(`Resource.delete`), so a new kind is one class that teardown, its dry run and status see at once.
The delete order is the reverse of `needs`: a resource goes once every resource that needs it is
gone (and what it names in `deleted_after`, which AWS releases late), independent branches side by
side on the task graph. A failed deletion does not stop the run: only what depends on it is
skipped, so one slow dependency does not leave everything else running (and costing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import botocore.exceptions

from dashscale.aws import error_code, translated
from dashscale.context import Context
from dashscale.errors import DashscaleError
from dashscale.graph import TaskGraph
from dashscale.model import DELETE, FOREIGN, KEEP, Item, Resource, Survey, in_order

RETRY_INTERVAL = 5.0
MAX_RETRY_INTERVAL = 15.0
TEARDOWN_HINT = "run `dashscale teardown` again later: it continues with what is left"


@dataclass
class Inventory:
    """Every item the survey found, in the order of the resources that found them."""

    items: list[Item] = field(default_factory=list)
    survey: Survey = field(default_factory=lambda: Survey(False))  # the items by resource key
    # resource key -> why its survey could not read it (status only: see `survey`)
    unreadable: dict[str, str] = field(default_factory=dict)

    @property
    def to_delete(self) -> list[Item]:
        return [i for i in self.items if i.action == DELETE]

    @property
    def kept(self) -> list[Item]:
        return [i for i in self.items if i.action == KEEP]

    @property
    def foreign(self) -> list[Item]:
        return [i for i in self.items if i.action == FOREIGN]


def survey(
    ctx: Context, resources: Sequence[Resource], everything: bool, tolerant: bool = False
) -> Inventory:
    """Every resource's survey, each after the surveys it uses. Makes no change. `tolerant`
    (status): a survey that fails (a permission missing for one lookup) is noted as
    unreadable and the others go on."""
    found = Survey(everything)
    unreadable: dict[str, str] = {}
    for resource in in_order(resources, lambda r: r.surveys_after):
        try:
            items = resource.survey(ctx, found)
        except DashscaleError as error:
            if not tolerant:
                raise
            unreadable[resource.key], items = error.message, []
        for item in items:
            item.owner = resource.key
        found.found[resource.key] = items
    return Inventory([item for r in resources for item in found.of(r.key)], found, unreadable)


def gone_first(resources: Sequence[Resource], resource: Resource) -> tuple[str, ...]:
    """The resources that must be gone before `resource` goes: those that need it, and what it
    names in `deleted_after`."""
    users = [r.key for r in resources if resource.key in r.needs and r.key != resource.key]
    return tuple(dict.fromkeys([*users, *resource.deleted_after]))


def deleted_later(resources: Sequence[Resource], resource: Resource) -> tuple[str, ...]:
    """When its deletion may start: after what must be gone first, and after what it is
    deleted later than (order only)."""
    return tuple(dict.fromkeys([*gone_first(resources, resource), *resource.deleted_later_than]))


# When each resource's deletion may start. Only a test sets another order (a wrong one, to show
# that AWS's refusals are met and reported).
run_after = deleted_later


def deletion_order(resources: Sequence[Resource]) -> list[Resource]:
    """The resources in the order teardown deletes them: each after what must be gone first."""
    return in_order(resources, lambda r: run_after(resources, r))


def delete(
    ctx: Context, resources: Sequence[Resource], inventory: Inventory
) -> dict[tuple[str, str], str]:
    """Deletes every item marked delete, each resource once what must be gone first is; returns
    why each item that was not deleted is not."""
    problems: dict[tuple[str, str], str] = {}
    blocked: dict[str, Item] = {}  # resource key -> its first item that is still there
    graph = TaskGraph(ctx)
    ordered = deletion_order(resources)
    keys = {r.key for r in ordered}
    for resource in ordered:
        first = gone_first(resources, resource)  # a failure among them skips this one
        items = [i for i in inventory.to_delete if i.owner == resource.key]
        graph.add(
            resource.key,
            f"deleting {resource.kind}",
            lambda _, resource=resource, items=items, first=first: _delete_items(
                ctx, resource, items, first, blocked, problems
            ),
            tuple(k for k in run_after(resources, resource) if k in keys),
        )
    graph.run()
    return problems


def _delete_items(
    ctx: Context,
    resource: Resource,
    items: list[Item],
    deps: tuple[str, ...],  # what must be gone first
    blocked: dict[str, Item],
    problems: dict[tuple[str, str], str],
) -> None:
    for item in items:
        blocker = _blocker([blocked[key] for key in deps if key in blocked], problems)
        if blocker is not None:
            reason = f"not attempted: {blocker.kind} {blocker.name} is still there"
            problems[item.key] = reason
            blocked.setdefault(resource.key, item)
            ctx.ui.resource(item.kind, item.name, "skipped", reason)
            continue
        try:
            with translated(f"deleting {item.kind} {item.name}"):
                note = resource.delete(ctx, item)
        except DashscaleError as error:
            problems[item.key] = error.message
            blocked.setdefault(resource.key, item)
            ctx.ui.resource(item.kind, item.name, "failed", error.message)
            continue
        ctx.ui.resource(item.kind, item.name, "deleted", note)


def _blocker(still_there: list[Item], problems: dict[tuple[str, str], str]) -> Item | None:
    """What to name as the reason a deletion is not attempted: one that failed (the cause)
    rather than one that was skipped itself."""
    failed = [i for i in still_there if not problems.get(i.key, "").startswith("not attempted")]
    return (failed or still_there or [None])[0]


# --- waiting and retrying, for the deletions --------------------------------------------------


def wait_for(
    ctx: Context, what: str, check: Callable[[], bool | None], interval: float = RETRY_INTERVAL
) -> float:
    """Waits until `check` is true, at most --timeout seconds; returns the seconds waited."""
    start = ctx.clock.now()
    ctx.wait(what, what, check, interval, max_interval=MAX_RETRY_INTERVAL, hint=TEARDOWN_HINT)
    return ctx.clock.now() - start


def retrying(
    ctx: Context, what: str, call: Callable[[], object], codes: tuple[str, ...], gone: str
) -> str:
    """Makes a deleting call, again while AWS answers one of `codes` (a dependency it still
    releases); `gone` (already deleted) counts as done. Returns a note on the retries."""
    attempts = 0
    last: list[str] = []

    def attempt() -> bool | None:
        nonlocal attempts
        attempts += 1
        try:
            ignoring(call, gone)
        except botocore.exceptions.ClientError as error:
            if error_code(error) in codes:
                last[:] = [error_code(error)]
                return None
            raise
        return True

    start = ctx.clock.now()
    ctx.wait(
        what,
        what,
        attempt,
        RETRY_INTERVAL,
        max_interval=MAX_RETRY_INTERVAL,
        hint=f"AWS still answers {' or '.join(codes)}: run `dashscale teardown` again in a few "
        "minutes",
    )
    waited = ctx.clock.now() - start
    if attempts == 1:
        return ""
    return f"after {attempts} attempts, {int(waited)} s ({last[0] if last else 'in use'})"


def unless_gone(call: Callable[[], object], *codes: str) -> str:
    """Makes a deleting call; "already gone" when AWS answers one of `codes` (by error code:
    `client.exceptions` classes are built lazily and differ between threads)."""
    try:
        call()
    except botocore.exceptions.ClientError as error:
        if error_code(error) in codes:
            return "already gone"
        raise
    return ""


def ignoring(call: Callable[[], object], *codes: str) -> None:
    """Makes a call, taking the answers `codes` (it is gone already) as done."""
    unless_gone(call, *codes)

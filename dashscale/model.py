"""One model of the app's AWS resources: each kind described once, read once, planned as data.

Every kind of resource the app owns is a `Resource`, declared in its guide section's step module:
its name, how it is found and proved to be the app's (`find`), how what exists differs from what
the configuration asks (`plan`), how it is created or changed (`apply`), and which other resources
its settings name (`needs`). The same descriptions serve every command:

- `up` (and `cluster`, `alb`, `tls` for their sections, all through one driver:
  dashscale/driver.py) reads every resource once, side by side, computes the plan — one
  `Change` per resource, with the differing fields — and applies it with the task graph. The
  decision is one function: `plan` runs again when a resource's turn comes, with the real ids
  of what was just created where the plan had placeholders, so what a run changes is what its
  plan said.
- `--dry-run` prints that plan and stops: the only place that decides not to change AWS (the
  read-only clients of `aws.refuse_changes` stay as the safety net).
- `status` and `teardown` use the same Resources: each one's `survey` finds what the app owns of
  its kind, wherever it is (any VPC, any domain its certificates name, every revision), marked
  delete, keep or not this app's; `status` shows those items and what is missing, and teardown
  deletes them with each resource's `delete`, every resource after those that need it and
  independent branches side by side on the task graph (dashscale/inventory.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dashscale.context import Context
from dashscale.errors import DashscaleError, NotOwnedError
from dashscale.graph import TaskGraph
from dashscale.names import TAG_KEY

NEW = "(new)"  # the id or ARN of something the plan would create

CREATE, UPDATE, DELETE, NONE, KEEP, BUILD = "create", "update", "delete", "none", "keep", "build"
ABSENT = "absent"  # neither there nor asked for (autoscaling off): not shown
# What a run reports for each action once done, and what a dry run says it would do.
DONE = {
    CREATE: "created",
    UPDATE: "updated",
    DELETE: "deleted",
    NONE: "found",
    KEEP: "kept",
    BUILD: "built",
}
PLANNED = {
    CREATE: "would create",
    UPDATE: "would update",
    DELETE: "would delete",
    NONE: "unchanged",
    KEEP: "kept",
    BUILD: "would build and push",
}
CHANGING = (CREATE, UPDATE, DELETE, BUILD)
FOREIGN = "foreign"  # under one of our names, but without our tag: reported, never touched


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


@dataclass(frozen=True)
class Change:
    """What a run does (or would do) to one resource."""

    kind: str
    name: str
    action: str  # create, update, delete, none, keep, build
    differences: tuple[str, ...] = ()  # "field old → new", for an update
    detail: str = ""  # what the resource is, shown when nothing differs and after a create
    fields: frozenset[str] = frozenset()  # what `apply` must change, in the kind's own terms
    calls: tuple[str, ...] = ()  # the AWS operations (service:Operation) `apply` may make

    @property
    def changes_aws(self) -> bool:
        return self.action in CHANGING

    @property
    def note(self) -> str:
        return "; ".join(self.differences) or self.detail


def absent(kind: str, name: str) -> Change:
    return Change(kind, name, ABSENT)


def create(kind: str, name: str, detail: str = "") -> Change:
    return Change(kind, name, CREATE, detail=detail)


def compare(
    kind: str,
    name: str,
    differing: Mapping[str, tuple[Any, Any]],
    detail: str = "",
    shown: Mapping[str, str] | None = None,
) -> Change:
    """An update of the fields in `differing` (field -> (current, desired)), or no change.
    `shown` overrides how a field's difference reads."""
    shown = shown or {}
    differences = tuple(
        shown.get(key) or change(key, old, new) for key, (old, new) in differing.items()
    )
    action = UPDATE if differing else NONE
    return Change(kind, name, action, differences, detail, frozenset(differing))


@dataclass(frozen=True)
class Permissions:
    """The IAM actions one kind uses: to find it (every `up`), to apply its change (`up`), to
    survey it (`status`, `teardown`), to delete it (`teardown`), and for a new image alone."""

    find: tuple[str, ...] = ()
    apply: tuple[str, ...] = ()
    survey: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    redeploy: tuple[str, ...] = ()


class Reading:
    """Something read before planning: a resource, or what several share (one call that
    answers for both listeners, for every record of a zone)."""

    key: str = ""
    reads: tuple[str, ...] = ()  # readings whose results `find` uses
    # the IAM actions `find` makes (`dashscale policy`, dashscale/policy.py, is built from these
    # declarations; a test holds every AWS call of the package to them)
    find_calls: tuple[str, ...] = ()

    def find_permissions(self, ctx: Context) -> tuple[str, ...]:
        """The IAM actions `find` makes with this configuration."""
        return self.find_calls

    finder: Callable[[Context], Any] | None = None  # the finder, when it needs no other reading

    def find(self, ctx: Context, found: Mapping[str, Any]) -> Any:
        """What exists, or None; raises NotOwnedError for a stranger under our name."""
        assert self.finder is not None, f"{type(self).__name__} has neither finder nor find"
        return self.finder(ctx)


@dataclass
class Item:
    """One thing of the app's a survey found (for teardown and status): to delete, to keep
    (holds data or identity, or is still needed by something else) or foreign."""

    kind: str
    name: str  # unique within its kind: the survey after the deletions matches on (kind, name)
    action: str  # delete, keep or foreign
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    owner: str = ""  # the key of the Resource whose survey found it (and whose delete removes it)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)


class Survey:
    """What a survey has found so far, by resource key, and readings several kinds share."""

    def __init__(self, everything: bool) -> None:
        self.everything = everything  # teardown --all: data and identity go too
        self.found: dict[str, list[Item]] = {}
        self._shared: dict[str, Any] = {}

    def of(self, key: str) -> list[Item]:
        return self.found.get(key, [])

    def shared(self, key: str, read: Callable[[], Any]) -> Any:
        """`read()`'s answer, read once per survey (one zone walk for every record kind)."""
        if key not in self._shared:
            self._shared[key] = read()
        return self._shared[key]


class Resource(Reading):
    """One kind of resource the app owns."""

    kind: str = ""  # how output names the kind
    needs: tuple[str, ...] = ()  # resources whose ids its settings name: made first, deleted after
    named: str = ""  # the attribute of ctx.names that is its name, for most kinds
    # the needs whose turn, skipped, skips this one too (None: all of them)
    skipped_with: tuple[str, ...] | None = None
    # action -> the AWS operations (IAM's service:Operation) its `apply` may make for it: the
    # dry run prints them, and a test holds what a real run calls to them
    calls: Mapping[str, tuple[str, ...]] = {}
    # the IAM actions its `survey` (status, teardown) and its `delete` (teardown) make
    survey_calls: tuple[str, ...] = ()
    delete_calls: tuple[str, ...] = ()
    # of `calls`, those a new image alone makes (the `deploy` policy of a pipeline)
    redeploy_calls: tuple[str, ...] = ()

    def configured(self, ctx: Context) -> bool:
        """False when the configuration asks for none of this kind (CACHE, WORKERS, SCHEDULE,
        ALERT_EMAIL unset): `up` then only deletes one an earlier configuration made."""
        return True

    def permissions(self, ctx: Context) -> Permissions:
        """The IAM actions this kind uses with this configuration, by what uses them. A kind
        whose calls depend on the configuration narrows this."""
        calls = self.calls if self.configured(ctx) else {DELETE: self.calls.get(DELETE, ())}
        return Permissions(
            find=self.find_calls,
            apply=tuple(dict.fromkeys(a for acts in calls.values() for a in acts)),
            survey=self.survey_calls,
            delete=self.delete_calls,
            redeploy=self.redeploy_calls,
        )

    def name(self, ctx: Context) -> str:
        return str(getattr(ctx.names, self.named))

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        """What differs between `current` and what the configuration asks. Makes no call."""
        raise NotImplementedError

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> Any:
        """Makes the change; returns what dependent resources need (see `ref`)."""
        raise NotImplementedError

    def ref(self, ctx: Context, current: Any, change: Change) -> Any:
        """What dependent resources need of it (an id, an ARN): from `current` when the change
        keeps it, a placeholder when the plan would create it."""
        raise NotImplementedError

    def skipped(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> str | None:
        """Why its turn is skipped in this run (None: it is not). A resource that needs a
        skipped one is skipped too (`apply`)."""
        return None

    # --- teardown and status (dashscale/inventory.py) ---
    surveys_after: tuple[str, ...] = ()  # resources whose survey items its own survey uses
    # besides every resource that needs it: what must be gone first because AWS releases it late
    deleted_after: tuple[str, ...] = ()

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        """Everything of this kind the app owns, wherever it is; reads only. None by default: a
        kind that is part of another (a policy of a role, the port-80 redirect)."""
        return []

    def delete(self, ctx: Context, item: Item) -> str:
        """Deletes one item its survey found; returns a note for the report. Something already
        gone counts as deleted."""
        raise NotImplementedError(f"{type(self).__name__} surveys items it cannot delete")

    # `status` shows it as missing when its survey finds nothing (see `when_absent`)
    missing_shown: bool = False
    # the order of deletion only: gone after these when they are there, but a failure there
    # does not hold this one back
    deleted_later_than: tuple[str, ...] = ()

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        """How `status` shows an item its survey found: (name, detail)."""
        return item.name, item.reason

    def status_state(self, ctx: Context, item: Item) -> str:
        """The state `status` gives an item of the app's its survey found."""
        return "found"

    def when_absent(self, ctx: Context, survey: Survey) -> tuple[str, str, str] | None:
        """What `status` shows as missing of this kind, given what the survey found: (name,
        state, detail), or None (found, not asked for, or shown with another kind)."""
        if survey.of(self.key) or not self.missing_shown:
            return None
        return self.name(ctx), "missing", ""

    def found_item(
        self,
        ctx: Context,
        find: Callable[[], Any],
        keep: str = "",
        reason: str = "",
        name: str = "",
    ) -> list[Item]:
        """The survey of a kind with one item under its exact name, found by a finder: delete
        (or keep, with why), foreign for a stranger under the name, nothing when absent."""
        name = name or self.name(ctx)
        try:
            found = find()
        except NotOwnedError:
            return [Item(self.kind, name, FOREIGN, not_ours(ctx))]
        if found is None:
            return []
        action = KEEP if keep else DELETE
        return [Item(self.kind, name, action, keep or reason, {"resource": found})]


def not_ours(ctx: Context) -> str:
    return f"not tagged {TAG_KEY}={ctx.names.app}: not this app's, left alone"


@dataclass
class Plan:
    """Everything read, and the change for each resource."""

    found: dict[str, Any]
    changes: dict[str, Change] = field(default_factory=dict)
    refs: dict[str, Any] = field(default_factory=dict)


def read(
    ctx: Context,
    readings: Sequence[Reading],
    given: Mapping[str, Any] | None = None,
) -> dict:
    """Every reading side by side, each once its own readings are in. A stranger under one of
    our names stops the run here, before anything changes."""
    graph = TaskGraph(ctx)
    known = dict(given or {})
    keys = {reading.key for reading in readings}
    for reading in in_order(readings, lambda reading: reading.reads):
        graph.add(
            reading.key,
            f"checking {reading.key}",
            lambda found, reading=reading: reading.find(
                ctx, {**dict.fromkeys(keys), **known, **found}
            ),
            tuple(k for k in reading.reads if k in keys and k not in known),
        )
    return {**known, **graph.run()}


def decide(ctx: Context, resource: Resource, current: Any, refs: Mapping[str, Any]) -> Change:
    """The resource's change, with the AWS operations its apply may make for it."""
    decided = resource.plan(ctx, current, refs)
    if not decided.changes_aws:
        return decided
    return dataclasses.replace(decided, calls=tuple(resource.calls.get(decided.action, ())))


def plan(ctx: Context, resources: Sequence[Resource], found: Mapping[str, Any]) -> Plan:
    """The change for each resource, in declaration order (which lists what a resource needs
    before it). Makes no call."""
    result = Plan(dict(found))
    result.refs.update(found)
    for resource in resources:
        current = found.get(resource.key)
        decided = decide(ctx, resource, current, result.refs)
        result.changes[resource.key] = decided
        result.refs[resource.key] = resource.ref(ctx, current, decided)
    return result


def require(
    ctx: Context, resources: Iterable[Resource], found: Mapping[str, Any], run: str
) -> dict:
    """The refs of resources another section made, which must exist; says what to run when not."""
    refs: dict[str, Any] = {}
    missing = []
    for resource in resources:
        current = found.get(resource.key)
        if current is None:
            missing.append(resource.name(ctx))
        else:
            refs[resource.key] = resource.ref(ctx, current, Change(resource.kind, "", NONE))
    if missing:
        raise DashscaleError(f"not set up yet: {', '.join(missing)} missing", f"run {run} first")
    return refs


@dataclass(frozen=True)
class Extra:
    """A task of a run that is not a resource: a wait, the image."""

    key: str
    run: Callable[[Mapping[str, Any]], Any]
    after: tuple[str, ...] = ()


@dataclass
class Applied:
    """What a run did: the change of each resource as applied."""

    results: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, Change] = field(default_factory=dict)  # by resource key
    skipped: dict[str, str] = field(default_factory=dict)  # resource key -> why it waits

    def in_order(self, resources: Sequence[Resource]) -> list[Change]:
        """The changes as applied, in the order of `resources` (not the order they finished)."""
        return [self.changes[r.key] for r in resources if r.key in self.changes]


def apply(
    ctx: Context,
    resources: Sequence[Resource],
    planned: Plan,
    extras: Sequence[Extra] = (),
    given: Mapping[str, Any] | None = None,
) -> Applied:
    """Applies the plan with the task graph: each resource as soon as what it needs is done,
    the extras (waits) alongside."""
    done = Applied()
    graph = TaskGraph(ctx)
    known = dict(given or {})
    keys = {r.key for r in resources} | {e.key for e in extras}
    for item in in_order([*resources, *extras], _after):
        deps = tuple(dep for dep in _after(item) if dep in keys)
        if isinstance(item, Resource):
            graph.add(item.key, item.key, _resource_task(ctx, item, planned, known, done), deps)
        else:
            graph.add(item.key, item.key, lambda r, item=item: item.run({**known, **r}), deps)
    done.results.update(graph.run())
    return done


def _after(item: Resource | Extra) -> tuple[str, ...]:
    return item.needs if isinstance(item, Resource) else item.after


def in_order(items: Sequence[Any], deps: Callable[[Any], tuple[str, ...]]) -> list[Any]:
    """`items` with each after those of its dependencies that are among them."""
    keys = {item.key for item in items}
    placed: set[str] = set()
    ordered: list[Any] = []
    pending = list(items)
    while pending:
        ready = [i for i in pending if all(d in placed or d not in keys for d in deps(i))]
        if not ready:
            raise ValueError(f"circular needs among {[item.key for item in pending]}")
        for item in ready:
            pending.remove(item)
            placed.add(item.key)
            ordered.append(item)
    return ordered


def _resource_task(
    ctx: Context, resource: Resource, planned: Plan, known: Mapping[str, Any], done: Applied
) -> Callable[[Mapping[str, Any]], Any]:
    def run(results: Mapping[str, Any]) -> Any:
        refs = {**planned.refs, **known, **results}
        current = planned.found.get(resource.key)
        with_them = resource.needs if resource.skipped_with is None else resource.skipped_with
        waits_for = [dep for dep in with_them if dep in done.skipped]
        why = done.skipped[waits_for[0]] if waits_for else resource.skipped(ctx, current, refs)
        if why is not None:
            done.skipped[resource.key] = why
            ctx.ui.resource(resource.kind, resource.name(ctx), "pending", why)
            return None
        # planned again, with the real ids of what was just made where the plan had placeholders
        decided, ref = turn(ctx, resource, current, refs)
        done.changes[resource.key] = decided
        return ref

    return run


def turn(
    ctx: Context, resource: Resource, current: Any, refs: Mapping[str, Any]
) -> tuple[Change, Any]:
    """A resource's turn: its change decided, made when it changes AWS, reported; returns the
    change and the resource's ref."""
    decided = decide(ctx, resource, current, refs)
    if decided.changes_aws:
        ref = resource.apply(ctx, current, refs, decided)
    else:
        ref = resource.ref(ctx, current, decided)
    report(ctx, decided)
    return decided, ref


def ensure(ctx: Context, resource: Resource, refs: Mapping[str, Any]) -> Any:
    """One resource on its own: found, then its turn; returns its ref."""
    return turn(ctx, resource, resource.find(ctx, refs), refs)[1]


def report(ctx: Context, applied: Change) -> None:
    if applied.action == ABSENT:
        return
    ctx.ui.resource(applied.kind, applied.name, DONE[applied.action], applied.note)


# --- showing a plan -------------------------------------------------------------------------------

COUNTED = (
    ("to create", (CREATE,)),
    ("to update", (UPDATE,)),
    ("to delete", (DELETE,)),
    ("to build and push", (BUILD,)),
    ("unchanged", (NONE, KEEP)),
)


def show_plan(ctx: Context, changes: Iterable[Change]) -> None:
    """The dry run's output: a line per resource, then the plan as a table."""
    rows = []
    for item in changes:
        if item.action == ABSENT:
            continue
        state = PLANNED[item.action]
        ctx.ui.resource(item.kind, item.name, state, item.note, planned=True)
        if item.calls:
            ctx.ui.resource(item.kind, item.name, "calls", ", ".join(item.calls), planned=True)
        rows.append((item.kind, item.name, state, item.note if item.changes_aws else ""))
    counts = {
        label: sum(1 for row in rows if row[2] in {PLANNED[a] for a in actions})
        for label, actions in COUNTED
    }
    summary = ", ".join(f"{count} {label}" for label, count in counts.items() if count)
    ctx.ui.table(
        f"{ctx.names.app}: plan ({summary or 'nothing to do'})",
        ("resource", "name", "planned", "what differs"),
        rows,
    )
    ctx.ui.info("dry run: nothing was changed; run the same command without --dry-run to apply")


def show_summary(
    ctx: Context, changes: Sequence[Change], first: Sequence[tuple[str, str, str]]
) -> None:
    """A run's result: every resource and what the run did to it."""
    changed = sum(1 for c in changes if c.changes_aws)
    ctx.ui.table(
        f"{ctx.names.app}: {changed} resource(s) created or updated",
        ("resource", "name", "state"),
        [*first, *((c.kind, c.name, DONE[c.action]) for c in changes if c.action != ABSENT)],
    )

"""One driver for `up` and for every section's command: read → check → plan → apply.

A command is a `Section`: what it reads, the resources it manages, the resources of earlier
sections it needs (which must exist: the check), and its `Hooks`. The driver reads everything
once, side by side (dashscale/model.py `read`), checks what must exist, plans, and then either
prints the plan (`--dry-run`) or applies it with the task graph. What is particular to a section
stays in its module and reaches the driver through the hooks (each does nothing by default):

- `joining`: resources that join the plan only given what was read (a private app's service,
  started by `tls` when `alb` left it for the signing-in listener);
- `shown`: lines of its own after a dry run's plan (the registrar's);
- `before_apply`: what is settled before the rest runs side by side (the hosted zone, which may
  ask a question), as (change, ref) by resource key;
- `extras`: tasks of the run that are not resources (waits: the certificate, the deployment);
- `address`: where the app answers once the run is done, when the section gives one;
- `after`: what the section says once the run is done (a summary, what finishes HTTPS later).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dashscale import model
from dashscale.context import Context
from dashscale.model import Applied, Change, Extra, Plan, Reading, Resource


@dataclass
class Done:
    """What a run did: the applied plan, and the changes settled before it."""

    applied: Applied
    resources: list[Resource]  # those the task graph applied (the settled ones are not)
    settled: list[Change] = field(default_factory=list)
    address: str | None = None  # from the first hook that gives one

    @property
    def results(self) -> dict[str, Any]:
        return self.applied.results

    @property
    def changes(self) -> list[Change]:
        """Every change of the run: the settled ones first, then the rest in declaration order."""
        return [*self.settled, *self.applied.in_order(self.resources)]


class Hooks:
    """A section's own steps around the driver; each does nothing by default."""

    def joining(
        self, ctx: Context, found: Mapping[str, Any]
    ) -> tuple[Sequence[Resource], Mapping[str, Any]]:
        """Resources that join the plan given what was read, and the refs of the resources of
        earlier sections they require (`model.require`)."""
        return (), {}

    def shown(self, ctx: Context, planned: Plan) -> None:
        """After a dry run's plan: lines of its own."""

    def before_apply(self, ctx: Context, planned: Plan) -> Mapping[str, tuple[Change, Any]]:
        """Settled before the rest runs side by side: (change, ref) by resource key."""
        return {}

    def extras(self, ctx: Context, planned: Plan) -> Sequence[Extra]:
        """Tasks of the run that are not resources."""
        return ()

    def address(self, ctx: Context, results: Mapping[str, Any]) -> str | None:
        """Where the app answers once the run is done, when this section says."""
        return None

    def after(self, ctx: Context, done: Done) -> None:
        """Once the run is done (in the order of the hooks)."""


@dataclass
class Section:
    """One command's share of the app: what it reads and manages, what must exist already."""

    readings: Sequence[Reading]
    resources: Sequence[Resource]
    required: Sequence[Resource] = ()
    run_first: str = ""  # the command that makes `required`, for the message when missing
    given: Mapping[str, Any] = field(default_factory=dict)  # known refs (the image for `cluster`)
    hooks: Sequence[Hooks] = ()


def run(ctx: Context, section: Section) -> Done | None:
    """Reads, checks, plans, and applies the section; a dry run prints the plan instead (None)."""
    hooks = section.hooks
    everything = [*section.readings, *section.required, *section.resources]
    found = model.read(ctx, everything, section.given)
    refs = model.require(ctx, section.required, found, section.run_first)
    resources = list(section.resources)
    for hook in hooks:
        joined, required = hook.joining(ctx, found)
        resources += joined
        refs |= required
    planned = model.plan(ctx, resources, {**found, **refs})
    if ctx.dry_run:
        model.show_plan(ctx, planned.changes.values())
        for hook in hooks:
            hook.shown(ctx, planned)
        return None
    settled: dict[str, tuple[Change, Any]] = {}
    for hook in hooks:
        settled |= hook.before_apply(ctx, planned)
    extras = [extra for hook in hooks for extra in hook.extras(ctx, planned)]
    given = {**section.given, **refs, **{key: ref for key, (_, ref) in settled.items()}}
    rest = [resource for resource in resources if resource.key not in settled]
    applied = model.apply(ctx, rest, planned, extras, given)
    done = Done(applied, rest, [change for change, _ in settled.values()])
    done.address = next(
        (found for hook in hooks if (found := hook.address(ctx, done.results))), None
    )
    for hook in hooks:
        hook.after(ctx, done)
    return done


class _Extras(Hooks):
    def __init__(self, extras: Callable[[Plan], Sequence[Extra]]) -> None:
        self._extras = extras

    def extras(self, ctx: Context, planned: Plan) -> Sequence[Extra]:
        return self._extras(planned)


def section(
    ctx: Context,
    readings: Sequence[Reading],
    resources: Sequence[Resource],
    required: Sequence[Resource] = (),
    run_first: str = "",
    extras: Callable[[Plan], Sequence[Extra]] = lambda _: (),
    given: Mapping[str, Any] | None = None,
) -> Applied | None:
    """A section whose only hook is its extras (`cluster`, `alb`): `run`'s applied plan, or
    None for a dry run."""
    done = run(
        ctx, Section(readings, resources, required, run_first, given or {}, [_Extras(extras)])
    )
    return None if done is None else done.applied

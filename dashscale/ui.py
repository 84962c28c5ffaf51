"""Terminal output: progress to stderr, results to stdout, one live display at a time.

Steps never print: they report through a UI, so the same logic serves the terminal and tests.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

STATE_STYLES = {
    "found": "dim",
    "unchanged": "dim",
    "created": "green",
    "updated": "yellow",
    "deleted": "red",
    "gone": "dim",
    "kept": "cyan",
    "calls": "dim",
    "missing": "magenta",
    "would create": "green",
    "would update": "yellow",
    "would delete": "red",
    "would build and push": "green",
    "skipped": "dim",
    "passed": "green",
}


CHANGED_STATES = ("created", "updated", "deleted", "issued")


class UI:
    def __init__(
        self, verbose: bool = False, err: Console | None = None, out: Console | None = None
    ) -> None:
        # emoji off: a user's "a:b:c" (a secret reference, an ARN) must not print as "a🅱c"
        self.err = err or Console(stderr=True, highlight=False, emoji=False)
        self.out = out or Console(highlight=False, emoji=False)
        self.verbose = verbose
        self._live: Progress | None = None
        # Every change reported so far: what an interrupted or failed run tells the user it did.
        self.changes: list[tuple[str, str, str]] = []
        self._board: Progress | None = None
        self._lanes: dict[int, tuple[Progress, Any, str]] = {}
        # A dry run: resource lines say what would be done, and are kept for the plan's table.

    # --- lines ---------------------------------------------------------------------------
    def info(self, message: str) -> None:
        self.err.print(escape(message))

    def detail(self, message: str) -> None:
        """Shown only with --verbose."""
        if self.verbose:
            self.err.print(f"[dim]{escape(message)}[/dim]")

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/yellow] {escape(message)}")

    def step(self, title: str) -> None:
        self.err.print(f"[bold]==> {escape(title)}[/bold]")

    def resource(
        self, kind: str, name: str, state: str, note: str = "", planned: bool = False
    ) -> None:
        """A resource line; `planned`: what a dry run would do, not something done."""
        if state in CHANGED_STATES and not planned:
            self.changes.append((kind, name, state))
        style = STATE_STYLES.get(state, "bold")
        extra = f"  [dim]{escape(note)}[/dim]" if note else ""
        self.err.print(
            f"  {escape(kind):<18} {escape(name):<32} [{style}]{escape(state)}[/{style}]{extra}",
            soft_wrap=True,
        )

    def error(self, message: str, hint: str | None = None) -> None:
        self.err.print(f"[bold red]error:[/bold red] {escape(message)}")
        if hint:
            self.err.print(f"[dim]hint:[/dim] {escape(hint)}")

    def result(self, message: str) -> None:
        """A result line on stdout (an address, an image URI): what scripts read."""
        self.out.print(escape(message), soft_wrap=True)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, overflow="fold")  # long names and URIs stay whole
        for row in rows:
            table.add_row(*(escape(str(cell)) for cell in row))
        self.err.print(table)

    # --- live displays ---------------------------------------------------------------------
    def _spinners(self) -> Progress:
        return Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.err,
            transient=True,
        )

    @contextlib.contextmanager
    def board(self) -> Iterator[None]:
        """One live view for steps running side by side: a row per running step (see `lane`)."""
        progress = self._spinners()
        with self._exclusive(progress):
            self._board = progress
            try:
                yield
            finally:
                self._board = None

    @contextlib.contextmanager
    def lane(self, title: str) -> Iterator[None]:
        """This thread's row on the board while it runs; its waits update the row's text."""
        board = self._board
        if board is None:
            yield
            return
        row = board.add_task(escape(title), total=None)
        self._lanes[threading.get_ident()] = (board, row, title)
        try:
            yield
        finally:
            self._lanes.pop(threading.get_ident(), None)
            board.remove_task(row)

    @contextlib.contextmanager
    def waiting(self, description: str) -> Iterator[WaitDisplay]:
        """A spinner with elapsed time while something runs; `update` changes its text.

        Inside a lane of the board, the lane's row shows it instead of a display of its own.
        """
        lane = self._lanes.get(threading.get_ident())
        if lane is not None:
            board, row, title = lane
            board.update(row, description=escape(f"{title}: {description}"))
            try:
                yield WaitDisplay(board, row, prefix=f"{title}: ")
            finally:
                board.update(row, description=escape(title))
            return
        progress = self._spinners()
        with self._exclusive(progress):
            task = progress.add_task(escape(description), total=None)
            yield WaitDisplay(progress, task)

    @contextlib.contextmanager
    def transfers(self, description: str) -> Iterator[Progress]:
        """Per-item byte counters (image layers while pushing)."""
        progress = Progress(
            TextColumn("  {task.description}"),
            BarColumn(bar_width=24),
            DownloadColumn(),
            console=self.err,
            transient=True,
        )
        with self._exclusive(progress):
            self.info(description)
            yield progress

    @contextlib.contextmanager
    def _exclusive(self, progress: Progress) -> Iterator[None]:
        if self._live is not None or not self.err.is_terminal:
            # nested (keep the outer display) or not a terminal (no animation in logs)
            progress.disable = True
        else:
            self._live = progress
        try:
            with progress:
                yield
        finally:
            if self._live is progress:
                self._live = None


class WaitDisplay:
    def __init__(self, progress: Progress, task: Any, prefix: str = "") -> None:
        self._progress = progress
        self._task = task
        self._prefix = prefix

    def update(self, description: str) -> None:
        self._progress.update(self._task, description=escape(self._prefix + description))


def is_interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()

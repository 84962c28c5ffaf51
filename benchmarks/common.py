"""The small interface every benchmark module follows, and what the runner needs to use it.

A benchmark is a module `benchmarks/<name>.py` with a function `run() -> Table`. The runner
(`benchmarks/run`, or `python -m benchmarks`) finds every such module, runs it and prints its
table; `python -m benchmarks.<name>` runs one alone through `main`.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType, ModuleType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

PACKAGE = "benchmarks"
NOT_BENCHMARKS = {"common", "__main__"}
BASE_IMAGE = os.environ.get("DASHSCALE_TEST_BASE_IMAGE", "dashscale-test-base:bookworm")
# Labels every container and image a benchmark creates, so it removes exactly those.
LABEL = "dashscale.benchmark"
RUN_ID = uuid.uuid4().hex[:8]

progress_console = Console(stderr=True, highlight=False)


@dataclass(frozen=True)
class Table:
    """What a benchmark returns: a title, column names, rows of cells, and notes (ratios,
    what the figures mean) printed under the table."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"row {row!r} does not have {len(self.columns)} cells")


Benchmark = Callable[[], Table]


# --- numbers ---------------------------------------------------------------------------------


def seconds(value: float) -> str:
    return f"{value:.1f} s"


def megabytes(size_bytes: float) -> str:
    return f"{size_bytes / 1e6:.1f} MB"


def ratio(numerator: float, denominator: float) -> str:
    """`a / b` as a factor: `0.42x`."""
    return f"{numerator / denominator:.2f}x" if denominator else "n/a"


def percent(numerator: float, denominator: float) -> str:
    """`a / b` as a percentage: `42%`."""
    return f"{numerator / denominator:.0%}" if denominator else "n/a"


# --- output ----------------------------------------------------------------------------------


def progress(message: str) -> None:
    """A progress line on stderr while a benchmark runs (the tables go to stdout)."""
    progress_console.print(f"[dim]{escape(message)}[/dim]")


def render(table: Table, console: Console) -> None:
    rich_table = RichTable(title=table.title, title_justify="left")
    for index, column in enumerate(table.columns):
        cells = [row[index] for row in table.rows if row[index]]
        numeric = bool(cells) and all(cell[0].isdigit() for cell in cells)
        rich_table.add_column(column, justify="right" if numeric else "left")
    for row in table.rows:
        rich_table.add_row(*(escape(cell) for cell in row))
    console.print(rich_table)
    for note in table.notes:
        console.print(escape(note), soft_wrap=True)
    console.print()


def markdown(table: Table) -> str:
    """The table as Markdown, for the README."""
    lines = [f"**{table.title}**", "", "| " + " | ".join(table.columns) + " |"]
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines.extend("| " + " | ".join(row) + " |" for row in table.rows)
    if table.notes:
        lines.append("")
        lines.extend(f"- {note}" for note in table.notes)
    return "\n".join(lines) + "\n"


# --- discovery and running -------------------------------------------------------------------


def discover() -> list[str]:
    """Names of the modules in benchmarks/ (besides this one) that define `run`, sorted."""
    package = importlib.import_module(PACKAGE)
    names = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in NOT_BENCHMARKS or info.name.startswith("_"):
            continue
        if callable(getattr(load(info.name), "run", None)):
            names.append(info.name)
    return sorted(names)


def load(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, so a killed run still removes its containers."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_all(names: Sequence[str], console: Console | None = None) -> int:
    """Runs the named benchmarks in order and prints a table each; 1 when any failed."""
    # Wide enough for the tables when the output goes to a file or a pipe.
    console = console or Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    failed = []
    with interrupt_on_sigterm():
        for name in names:
            progress(f"== benchmark {name}")
            started = time.monotonic()
            try:
                table = load(name).run()
            except KeyboardInterrupt:
                progress("interrupted")
                return 130
            except Exception as error:  # one broken benchmark must not hide the others
                console.print(f"[bold red]benchmark {name} failed:[/bold red] {escape(str(error))}")
                failed.append(name)
                continue
            progress(f"   {name} took {time.monotonic() - started:.0f} s")
            render(table, console)
    return 1 if failed else 0


def main(names: Sequence[str] | None = None) -> None:
    """Entry point of `python -m benchmarks [NAME...]` and of each module run alone."""
    arguments = sys.argv[1:] if names is None else list(names)
    available = discover()
    unknown = [name for name in arguments if name not in available]
    if unknown:
        sys.exit(f"unknown benchmark {', '.join(unknown)}; available: {', '.join(available)}")
    sys.exit(run_all(arguments or available))


# --- Docker ----------------------------------------------------------------------------------


def docker_client() -> Any:
    """The local engine, through dashscale's own connection (a clear error when it is down)."""
    from dashscale.context import connect_docker

    return connect_docker()


def require_base_image(client: Any) -> str:
    import docker

    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        raise RuntimeError(
            f"base image {BASE_IMAGE} not found: run benchmarks/run, or scripts/base-image.sh"
        ) from None
    return BASE_IMAGE

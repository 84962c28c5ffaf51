"""Ctrl-C ends every command within seconds, from the first moment to the last.

Until a command's error handler takes over (`cli.handle_errors`), the entry point's guard
(`dashscale/start.py`) prints the usual one-line message and exits 130 at once. After the
handler has reported an interruption, the process ends without waiting for pieces still
blocked in an AWS or Docker call (Python would otherwise wait for those threads at exit, for as
long as the call takes); what those pieces started and must not leave behind, such as the smoke
check's container, is cleaned up first, within a bound.

Only the standard library here: the entry point imports this module early.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import NoReturn

from dashscale.errors import EXIT_INTERRUPTED

CLEANUP_BOUND = 1.0  # seconds all cleanups get together after a stop

_cleanups: dict[int, Callable[[], None]] = {}
_lock = threading.Lock()


def take_over() -> None:
    """The command's error handler is in place: Ctrl-C raises KeyboardInterrupt again, so the
    handler can report what was done before stopping."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def cleanup_on_stop(cleanup: Callable[[], None]) -> Iterator[None]:
    """Registers `cleanup` while the block runs: if the command is stopped while the block is
    still running (in another thread), `finish_interrupted` calls it."""
    with _lock:
        key = id(cleanup)
        _cleanups[key] = cleanup
    try:
        yield
    finally:
        with _lock:
            _cleanups.pop(key, None)


def finish_interrupted() -> NoReturn:
    """Ends an interrupted command now: pending cleanups (bounded), flushed output, exit 130,
    without waiting for threads still blocked in a call."""
    signal.signal(signal.SIGINT, lambda *_: os._exit(EXIT_INTERRUPTED))  # a second Ctrl-C
    with _lock:
        pending = list(_cleanups.values())
    if pending:
        worker = threading.Thread(target=_run_all, args=(pending,), daemon=True)
        worker.start()
        worker.join(CLEANUP_BOUND)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(EXIT_INTERRUPTED)


def _run_all(cleanups: list[Callable[[], None]]) -> None:
    for cleanup in cleanups:
        with contextlib.suppress(Exception):
            cleanup()

"""Ctrl-C right after AWS acted on a chosen operation, before its answer goes back: the worst
moment for a deploy tool. Used as the flaky-AWS proxy's `after_forward` hook."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class CtrlCAfter:
    """Sends SIGINT once to the command `run` started, when the proxy has forwarded
    `operation`; `then` holds the answer back meanwhile (by default half a second: the signal
    lands while the client still waits for the answer). `sent` is when it was sent."""

    def __init__(
        self, operation: str, then: Callable[[], object] = lambda: time.sleep(0.5)
    ) -> None:
        self.operation = operation
        self.then = then
        self.process: subprocess.Popen[str] | None = None
        self.sent: float | None = None

    def __call__(self, seen: str) -> None:
        if seen == self.operation and self.sent is None and self.process is not None:
            self.sent = time.monotonic()
            self.process.send_signal(signal.SIGINT)
            self.then()

    def run(
        self, command: list[str], cwd: Path, env: dict[str, str], timeout: float
    ) -> tuple[int, str, float]:
        """Runs the command to its end: its exit code, its stderr and when it ended."""
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        _, stderr = self.process.communicate(timeout=timeout)
        return self.process.returncode, stderr, time.monotonic()

"""A clock for tests: time moves only when the code sleeps, so waits never take real time."""

from __future__ import annotations

from collections.abc import Callable

from dashscale.aws import Clock


class FakeClock(Clock):
    """`time` advances by each sleep; `sleeps` records them; `on_sleep(n)` runs at the n-th sleep
    (to change the world between two polls, or to press Ctrl-C)."""

    def __init__(self, on_sleep: Callable[[int], None] | None = None) -> None:
        self.time = 0.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep
        super().__init__(now=lambda: self.time, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))

"""Run the pieces of a deployment side by side, each as soon as what it needs is done.

Most of a first deployment is waiting on AWS: the load balancer provisioning, the certificate
validating, the service's tasks becoming healthy. Run one after another, the waits add up; run
as a graph, the slowest chain sets the pace. Each task is a plain function of the results of the
tasks it depends on.

Stopping is shared: the first failure, or Ctrl-C in the main thread, sets the clock's
`cancelled` event; every wait of every step sleeps on that clock, so the other tasks stop within
a second, and the run reports the first real error (or the interruption).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dashscale.aws import Cancelled
from dashscale.context import Context

# Seconds to let running tasks see the stop (every wait wakes at once) and finish cleanly after
# Ctrl-C; a task still blocked in an AWS or Docker call after that is not waited for: the command
# ends without it (dashscale/stopping.py), within 3 s of the signal.
STOP_GRACE = 1.0


@dataclass(frozen=True)
class Task:
    name: str
    title: str  # what the live view shows while it runs
    run: Callable[[Mapping[str, Any]], Any]
    after: tuple[str, ...] = ()


class TaskGraph:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.tasks: dict[str, Task] = {}

    def add(
        self,
        name: str,
        title: str,
        run: Callable[[Mapping[str, Any]], Any],
        after: tuple[str, ...] = (),
    ) -> None:
        unknown = [dep for dep in after if dep not in self.tasks]
        if unknown:  # dependencies are added first, which also rules out cycles
            raise ValueError(f"task {name} depends on unknown {unknown}")
        self.tasks[name] = Task(name, title, run, after)

    def run(self) -> dict[str, Any]:
        """Runs every task; returns results by name, or raises the first failure."""
        results: dict[str, Any] = {}
        pending = dict(self.tasks)
        running: dict[concurrent.futures.Future[Any], Task] = {}
        failure: BaseException | None = None
        # PARALLEL_STEPS=1: one at a time, in the order the tasks were added (deterministic);
        # a task starts only when a worker is free, so none starts after a failure
        limit = max(1, min(self.ctx.config.parallel_steps or len(self.tasks), len(self.tasks)))
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=limit)
        try:
            with self.ctx.ui.board():
                while pending or running:
                    if failure is None:
                        ready = [t for t in pending.values() if all(d in results for d in t.after)]
                        for task in ready[: limit - len(running)]:
                            del pending[task.name]
                            running[pool.submit(self._run_one, task, dict(results))] = task
                    if not running:
                        break
                    done, _ = concurrent.futures.wait(
                        running, timeout=0.2, return_when=concurrent.futures.FIRST_COMPLETED
                    )
                    for future in done:
                        task = running.pop(future)
                        error = future.exception()
                        if error is None:
                            results[task.name] = future.result()
                        elif failure is None or isinstance(failure, Cancelled):
                            failure = error
                            self.ctx.clock.cancelled.set()
        except KeyboardInterrupt:
            self.ctx.clock.cancelled.set()
            concurrent.futures.wait(running, timeout=STOP_GRACE)
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        if failure is not None:
            raise failure
        return results

    def _run_one(self, task: Task, results: Mapping[str, Any]) -> Any:
        with self.ctx.ui.lane(task.title):
            return task.run(results)

"""The task graph: order by dependencies, real overlap, first failure wins, everyone stops."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dashscale.aws import Cancelled, Clock
from dashscale.config import load_config
from dashscale.context import Context
from dashscale.errors import AwsError
from dashscale.graph import TaskGraph
from dashscale.ui import UI


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    config = load_config(
        environ={"APP_NAME": "demo", "AWS_REGION": "eu-west-1"}, project_dir=tmp_path
    )
    return Context(config=config, ui=UI(), clock=Clock())


def test_dependencies_run_first_and_independent_tasks_overlap(ctx: Context) -> None:
    log: list[str] = []
    both_running = threading.Barrier(2, timeout=5)

    def slow(name: str):
        def run(results):
            log.append(f"start {name}")
            both_running.wait()  # deadlocks unless a and b really run at the same time
            log.append(f"end {name}")
            return name.upper()

        return run

    graph = TaskGraph(ctx)
    graph.add("a", "A", slow("a"))
    graph.add("b", "B", slow("b"))
    graph.add("c", "C", lambda results: results["a"] + results["b"], after=("a", "b"))
    assert graph.run() == {"a": "A", "b": "B", "c": "AB"}
    assert log.index("end a") > log.index("start b")


def test_first_failure_cancels_the_waiting_tasks(ctx: Context) -> None:
    def waits_long(results):
        ctx.clock.sleep(60)  # a wait on AWS: ended by the cancellation, not by the timer

    def fails(results):
        time.sleep(0.2)
        raise AwsError("AWS refused creating the load balancer")

    graph = TaskGraph(ctx)
    graph.add("wait", "waiting", waits_long)
    graph.add("fail", "failing", fails)
    graph.add("never", "never", lambda results: pytest.fail("ran after a failure"), after=("fail",))
    started = time.monotonic()
    with pytest.raises(AwsError, match="load balancer"):
        graph.run()
    assert time.monotonic() - started < 5
    with pytest.raises(Cancelled):
        ctx.clock.sleep(1)


def test_unknown_dependency_is_refused(ctx: Context) -> None:
    with pytest.raises(ValueError, match="unknown"):
        TaskGraph(ctx).add("x", "X", lambda r: None, after=("y",))


def test_a_poll_lost_to_the_network_is_not_the_end_of_a_wait(ctx: Context) -> None:
    import botocore.exceptions

    from dashscale.aws import translated, wait_until
    from tests.support.clock import FakeClock

    answers = iter([None, "lost", None, "done"])

    def check() -> str | None:
        answer = next(answers)
        if answer == "lost":
            with translated("polling"):  # as the steps' checks do
                raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://x")
        return answer

    assert wait_until(check, what="x", timeout=60, clock=FakeClock(), interval=1) == "done"

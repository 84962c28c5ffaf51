"""Background callbacks and a shared cache for real: Debian's redis-server, two app containers
("tasks") and one worker container of the image `dashscale build` makes from
`dashscale init --template background`, all on loopback. A job started through one task is
polled through the other, as the load balancer does it; the same with DiskcacheManager (no
REDIS_URL) shows what dashscale refuses to deploy on several tasks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks import bgstack

pytestmark = pytest.mark.docker

STEPS = "4"
FAST = {"STEPS": STEPS, "STEP_SECONDS": "0.4"}


@pytest.fixture(scope="module")
def image(docker_client, base_image: str) -> Iterator[str]:
    ref = bgstack.build_template_image(base_image, "bgtest")
    yield ref
    docker_client.images.remove(ref.split(":")[0] + ":latest", force=True)
    docker_client.images.remove(ref, force=True)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with bgstack.redis_server() as url:
        yield url


@pytest.fixture(scope="module")
def shared(docker_client, image: str, redis_url: str) -> Iterator[tuple[str, str, bgstack.Stack]]:
    """Two tasks and a worker on one Redis: what CACHE=redis and WORKERS=1 deploy."""
    stack = bgstack.Stack(docker_client, image, {"REDIS_URL": redis_url, **FAST})
    try:
        first, second = stack.app(), stack.app()
        stack.worker()
        yield first, second, stack
    finally:
        stack.stop()


def test_a_job_started_on_one_task_finishes_polled_on_another(shared) -> None:
    first, second, stack = shared
    polled = bgstack.start_and_poll(first, second)
    assert polled.result == f"run 1: the sum of 1..{STEPS} is 10", polled
    # the progress came through the other task too, step by step
    assert len(polled.progress) >= 2, polled
    assert all(
        text.startswith("step ") and text.endswith(f"of {STEPS}") for text in polled.progress
    )
    # the job ran on the worker, not on either task
    app_first, app_second, worker = stack.containers
    assert b"succeeded" in worker.logs()
    # every container runs as the image's non-root user
    for container in (app_first, app_second, worker):
        assert container.exec_run("id -u").output.strip() == b"10001"


def test_a_memoized_result_is_shared_by_the_tasks(shared) -> None:
    first, second, _ = shared
    cold, answer = bgstack.timed_square(first, 12)
    warm, again = bgstack.timed_square(second, 12)
    print(
        f"memoized callback: {cold:.3f} s computed on one task, "
        f"{warm:.3f} s from the cache on another"
    )
    assert answer == again == "12 squared is 144"
    assert cold >= 1.0  # SLOW_SECONDS: the computation itself
    assert warm <= cold / 10


@pytest.fixture(scope="module")
def local(docker_client, image: str) -> Iterator[tuple[str, str, bgstack.Stack]]:
    """Two tasks without REDIS_URL: DiskcacheManager, each with its own cache folder."""
    stack = bgstack.Stack(docker_client, image, FAST)
    try:
        yield stack.app(), stack.app(), stack
    finally:
        stack.stop()


def test_without_redis_the_image_runs_as_its_user_with_a_cache_folder(local) -> None:
    _, _, stack = local
    container = stack.containers[0]
    assert container.exec_run("id -u").output.strip() == b"10001"
    # Dash's examples keep DiskcacheManager's cache in ./cache: the image's user may write it
    wrote = container.exec_run(
        [
            "python",
            "-c",
            "import diskcache; c = diskcache.Cache('./cache'); c['k'] = 1; print(c['k'])",
        ]
    )
    assert (wrote.exit_code, wrote.output.strip()) == (0, b"1"), wrote.output


def test_with_diskcache_a_poll_on_another_task_never_finishes(local) -> None:
    first, second, _ = local
    same = bgstack.start_and_poll(first, first)  # one task: it works
    assert same.result == f"run 1: the sum of 1..{STEPS} is 10", same
    other = bgstack.start_and_poll(first, second, timeout=10)
    assert other.result is None and other.progress == [], other
    assert other.statuses[-1] == 204  # the other task knows no such job

"""Cache benchmark: what CACHE=redis buys and what it costs in time.

1. A memoized callback on two tasks of the background template's image (Docker, a real Redis
   on loopback, benchmarks/bgstack.py): the first call computes it (SLOW_SECONDS, 1 s) on one
   task, the same call on the other task answers from the shared cache. Best of ROUNDS numbers.
2. The first `up` with DOMAIN on the deploy benchmark's modelled AWS (benchmarks/deploy.py),
   without and with CACHE=redis, the cache taking CACHE_CREATION seconds to be made: the time
   `up` adds for it is the difference of the two wall times, not the cache's whole creation,
   since only the task definition waits for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

from benchmarks import bgstack, deploy
from benchmarks.common import (
    RUN_ID,
    Table,
    docker_client,
    progress,
    ratio,
    require_base_image,
    seconds,
)

ROUNDS = 3
GOAL_HIT_OVER_COMPUTED = 0.1
# Minutes for a one-node Valkey replication group with encryption, as AWS's console shows it
# for small nodes (roughly 5 to 8): no AWS account here to measure it, so a model like the
# deploy benchmark's others.
CACHE_CREATION = 360.0


def cache_hit() -> tuple[float, float]:
    """(seconds computed on one task, seconds answered from the cache on the other), best of
    ROUNDS new numbers each."""
    client = docker_client()
    base = require_base_image(client)
    progress("   building the background template's image")
    image = bgstack.build_template_image(base, f"bench-bg-{RUN_ID}")
    computed, hit = [], []
    try:
        with bgstack.redis_server() as url:
            stack = bgstack.Stack(client, image, {"REDIS_URL": url})
            try:
                first, second = stack.app(), stack.app()
                for number in range(ROUNDS):
                    computed.append(bgstack.timed_square(first, 100 + number)[0])
                    hit.append(bgstack.timed_square(second, 100 + number)[0])
            finally:
                stack.stop()
    finally:
        for ref in (image, image.split(":")[0] + ":latest"):
            with contextlib.suppress(Exception):
                client.images.remove(ref, force=True)
    return min(computed), min(hit)


def first_up(with_cache: bool) -> float:
    """Wall seconds (model) of a first `up` with DOMAIN on the modelled AWS."""
    from moto.server import ThreadedMotoServer

    from dashscale.steps.build import free_port
    from tests.support import moto_cache

    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        MOTO_ECS_SERVICE_RUNNING="3",
        MOTO_IAM_LOAD_MANAGED_POLICIES="true",
    )
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto_cache.apply()
    model = deploy.ModelledAws(deploy.MODEL, deploy.SCALE)
    moto_cache.CREATING_SECONDS = model.real(CACHE_CREATION)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    previous, saved = os.getcwd(), dict(os.environ)
    try:
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        if with_cache:
            os.environ["CACHE"] = "redis"
        with tempfile.TemporaryDirectory(prefix="dashscale-cache-") as folder, model.installed():
            deploy._project(Path(folder))
            os.chdir(folder)
            deploy.warm_up()
            return deploy._deploy(model, (deploy.MODEL.build_first, deploy.MODEL.push_first), "v1")
    finally:
        os.chdir(previous)
        os.environ.clear()
        os.environ.update(saved)
        server.stop()


def run() -> Table:
    progress("   memoized callback across two tasks (Docker, redis-server)")
    computed, hit = cache_hit()
    progress("   first up with DOMAIN, without and with CACHE=redis (modelled AWS)")
    without, with_cache = first_up(False), first_up(True)
    met = "met" if hit <= computed * GOAL_HIT_OVER_COMPUTED else "MISSED"
    return Table(
        "Shared cache (CACHE=redis)",
        ("measure", "seconds", "ratio", "goal"),
        (
            ("memoized callback computed on task A", f"{computed:.3f} s", "", ""),
            ("same call on task B (cache hit)", f"{hit:.3f} s", ratio(hit, computed), met),
            ("first up with DOMAIN", seconds(without), "", ""),
            ("first up with DOMAIN and CACHE=redis", seconds(with_cache), "", ""),
            ("time up adds for the cache", seconds(with_cache - without), "", ""),
        ),
        (
            f"Cache hit: best of {ROUNDS} numbers each; the goal is at most "
            f"{GOAL_HIT_OVER_COMPUTED:.0%} of the computed time.",
            f"Deploy: the deploy benchmark's model, the cache made in {CACHE_CREATION:.0f} s "
            "(modelled). Only the task definitions wait for its address, so the load balancer, "
            "certificate and image are made meanwhile; what it adds is the part of its "
            "creation longer than the rest's path to the task definition, plus nothing else.",
        ),
    )

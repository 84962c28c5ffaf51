"""The client factory shares one set of exception classes per client across threads.

botocore builds `client.exceptions` on first use without a lock; steps running side by side
that touched it first could each get their own classes, and an `except` written with one set
then missed an error raised with the other (a first `up` failed by chance on "target group not
found"). Many threads released at once on a fresh factory must all see the same classes, and
an error raised in one thread must match the class another thread names.
"""

from __future__ import annotations

import threading

import pytest

from dashscale.aws import Aws

THREADS = 6
TRIALS = 30


def test_threads_touching_a_new_client_share_its_exception_classes() -> None:
    for _ in range(TRIALS):
        aws = Aws("us-east-1")
        start = threading.Barrier(THREADS)
        seen: list[type] = []

        def touch(
            aws: Aws = aws, start: threading.Barrier = start, seen: list[type] = seen
        ) -> None:
            start.wait()
            seen.append(aws.client("elbv2").exceptions.TargetGroupNotFoundException)

        threads = [threading.Thread(target=touch) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(seen) == THREADS and len(set(seen)) == 1


def test_a_not_found_answer_matches_the_class_every_thread_names(aws: str) -> None:
    client = Aws("us-east-1").client("elbv2")
    named = client.exceptions.TargetGroupNotFoundException
    with pytest.raises(named):
        client.describe_target_groups(Names=["nothing-here"])

"""The client factory shares one set of exception classes per client across threads.

botocore builds `client.exceptions` on first use without a lock; steps running side by side
that touched it first could each get their own classes, and an `except` written with one set
then missed an error raised with the other (a first `up` failed by chance on "target group not
found"). Many threads released at once on a fresh factory must all see the same classes, and
an error raised in one thread must match the class another thread names.
"""

from __future__ import annotations

import threading
import time

import pytest

from dashscale.aws import Aws

THREADS = 6
TRIALS = 5


@pytest.fixture(autouse=True)
def slow_exception_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the classes takes a few milliseconds, longer on a busy machine: here 50 ms, so
    that threads that would race do so every time instead of now and then."""
    from botocore.errorfactory import ClientExceptionsFactory

    build = ClientExceptionsFactory._create_client_exceptions

    def slowly(self: ClientExceptionsFactory, service_model: object) -> object:
        time.sleep(0.05)
        return build(self, service_model)

    monkeypatch.setattr(ClientExceptionsFactory, "_create_client_exceptions", slowly)


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


def named_and_raised() -> tuple[type, BaseException]:
    """One thread names `exceptions.X` (as an `except` does) while another makes the call that
    raises X, both on a client neither has used yet."""
    client_of = Aws("us-east-1").client
    start = threading.Barrier(2)
    named: list[type] = []
    raised: list[BaseException] = []

    def name_it() -> None:
        start.wait()
        named.append(client_of("elbv2").exceptions.TargetGroupNotFoundException)

    def call_it() -> None:
        start.wait()
        try:
            client_of("elbv2").describe_target_groups(Names=["nothing-here"])
        except Exception as error:
            raised.append(error)

    threads = [threading.Thread(target=name_it), threading.Thread(target=call_it)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return named[0], raised[0]


def test_a_not_found_raised_in_one_thread_is_caught_by_the_class_another_names(aws: str) -> None:
    """What the read phase of `up` does: several finders at once on a shared client."""
    for _ in range(TRIALS):
        named, raised = named_and_raised()
        assert isinstance(raised, named)

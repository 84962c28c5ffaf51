"""A private app (AUTH) is private at every moment: after each AWS-changing call of `up`, of
partial runs in any order, of `--no-wait` with a certificate that stays pending, of Ctrl-C, and
of switching AUTH on for an app already deployed without it.

Each command runs behind the flaky-AWS proxy with no faults and one change at a time: after
every changing call, before its answer goes back, the test looks at the load balancer the way an
outsider would (tests/support/outsider.py). No moment may forward an outsider to the app.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ctrl_c import CtrlCAfter
from tests.support.flaky_aws import Faults, FlakyAws
from tests.support.operating import said
from tests.support.outsider import APP, Timeline, view
from tests.test_up import IMAGE

PRIVATE = ("--set", "DOMAIN=example.com", "--set", "AUTH=cognito")
SERVICE_OPS = {"CreateService", "UpdateService"}


@pytest.fixture
def watched(aws: str, boto, monkeypatch: pytest.MonkeyPatch) -> Iterator[Timeline]:
    """AWS_ENDPOINT_URL through a proxy that pauses after every change for the outsider."""
    timeline = Timeline(boto)
    proxy = FlakyAws(aws, Faults(), after_forward=timeline, one_change_at_a_time=True)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    yield timeline
    proxy.stop()


def operations(timeline: Timeline) -> list[str]:
    return [operation for operation, _ in timeline.moments]


def test_every_moment_of_a_first_up_with_sign_in_is_private(
    watched: Timeline, boto, project: Path, run, no_docker: None
) -> None:
    result = run("up", "--image", IMAGE, *PRIVATE)
    assert result.exit_code == 0, result.output
    assert len(watched.moments) >= 20, operations(watched)  # the pauses really happened
    assert watched.reached_the_app() == []
    ops = operations(watched)
    # port 80 answered the fixed 503 before HTTPS existed; the service came after sign-in did
    first_listener = ops.index("CreateListener")
    assert watched.moments[first_listener][1] == {80: "fixed", 443: "refused"}
    signed_in = next(i for i, (_, seen) in enumerate(watched.moments) if seen[443] == "sign-in")
    assert ops.index("CreateService") > signed_in
    assert view(boto) == {80: "redirect", 443: "sign-in"}


def test_no_wait_with_a_pending_certificate_leaves_the_app_unreachable(
    watched: Timeline, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import moto.settings

    monkeypatch.setattr(moto.settings, "ACM_VALIDATION_WAIT", 10**6)  # stays pending
    result = run("up", "--image", IMAGE, *PRIVATE, "--no-wait")
    assert result.exit_code == 0, result.output
    assert watched.reached_the_app() == []
    assert view(boto) == {80: "fixed", 443: "refused"}
    assert not SERVICE_OPS & set(operations(watched))  # no tasks before sign-in exists
    err = said(result.stderr)
    assert "starts once the HTTPS listener signs users in" in err, result.stderr
    assert "not reachable" in err

    status = run("status", *PRIVATE)
    assert status.exit_code == 1, status.output  # not serving
    assert "private app not reachable yet (port 80 answers 503)" in said(status.stderr)
    assert "the certificate is PENDING_VALIDATION" in said(status.stderr)

    # a second --no-wait run while still pending changes nothing and opens nothing
    again = run("up", "--image", IMAGE, *PRIVATE, "--no-wait")
    assert again.exit_code == 0, again.output
    assert watched.reached_the_app() == []

    monkeypatch.setattr(moto.settings, "ACM_VALIDATION_WAIT", 0)  # ACM issues it
    finished = run("tls", *PRIVATE)
    assert finished.exit_code == 0, finished.output
    assert watched.reached_the_app() == []
    assert view(boto) == {80: "redirect", 443: "sign-in"}
    (service,) = boto("ecs").describe_services(cluster="demo-cluster", services=["demo-service"])[
        "services"
    ]
    assert service["status"] == "ACTIVE"  # `tls` started the tasks behind the sign-in


@pytest.mark.parametrize(
    "order",
    [
        ("cluster", "alb", "tls"),
        ("alb", "cluster", "tls", "alb"),  # alb and tls first fail: an earlier one is missing
        ("cluster", "tls", "alb", "tls"),
    ],
    ids=["cluster-alb-tls", "alb-first", "tls-before-alb"],
)
def test_partial_runs_in_any_order_never_open_the_app(
    watched: Timeline, boto, project: Path, run, no_docker: None, order: tuple[str, ...]
) -> None:
    for command in order:
        args = (command, "--image", IMAGE) if command == "cluster" else (command,)
        run(*args, *PRIVATE)  # some fail (an earlier section is missing): that is fine here
        assert watched.reached_the_app() == [], command
    finished = run("tls", *PRIVATE)  # whatever the order left, `tls` finishes the job
    assert finished.exit_code == 0, finished.output
    assert view(boto) == {80: "redirect", 443: "sign-in"}
    assert watched.reached_the_app() == []


def test_alb_alone_keeps_port_80_closed_and_says_why(
    watched: Timeline, boto, project: Path, run, no_docker: None
) -> None:
    assert run("cluster", "--image", IMAGE, *PRIVATE).exit_code == 0
    result = run("alb", *PRIVATE)
    assert result.exit_code == 0, result.output
    assert view(boto) == {80: "fixed", 443: "refused"}
    assert "starts once the HTTPS listener signs users in" in said(result.stderr)
    assert watched.reached_the_app() == []


def test_switching_auth_on_signs_in_on_443_before_anything_else_changes(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    public = run("up", "--image", IMAGE, "--set", "DOMAIN=example.com")
    assert public.exit_code == 0, public.output
    assert view(boto) == {80: "redirect", 443: APP}

    timeline = Timeline(boto)
    proxy = FlakyAws(aws, Faults(), after_forward=timeline, one_change_at_a_time=True)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    try:
        private = run("up", "--image", IMAGE, *PRIVATE)
    finally:
        proxy.stop()
    assert private.exit_code == 0, private.output
    ops = operations(timeline)
    switched = next(i for i, (_, seen) in enumerate(timeline.moments) if seen[443] == "sign-in")
    # before 443 signs in, only what sign-in itself needs: the user pool, its client and
    # domain, and the load balancer's way out to them
    before = set(ops[:switched])
    assert ops[switched] == "ModifyListener"
    assert before <= {
        "CreateUserPool",
        "CreateUserPoolClient",
        "CreateUserPoolDomain",
        "UpdateUserPool",
        "UpdateUserPoolClient",
        "AuthorizeSecurityGroupEgress",
        "TagResource",
    }, ops[:switched]
    assert all(APP not in seen.values() for _, seen in timeline.moments[switched:]), ops
    assert view(boto) == {80: "redirect", 443: "sign-in"}


@pytest.mark.parametrize(
    "operation", ["CreateListener", "CreateUserPoolDomain", "ModifyListener", "CreateService"]
)
def test_ctrl_c_at_any_point_leaves_the_app_private(
    aws: str, boto, project: Path, operation: str
) -> None:
    """`up` as users run it, interrupted right after AWS acted on `operation`: the state it
    leaves is private, and so is every moment of the `up` that finishes the job."""
    ctrl_c = CtrlCAfter(operation)
    timeline = Timeline(boto)

    def both(seen: str) -> None:
        timeline(seen)
        ctrl_c(seen)

    proxy = FlakyAws(aws, Faults(), after_forward=both, one_change_at_a_time=True)
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url}
    command = [sys.executable, "-m", "dashscale", "up", "--image", IMAGE, *PRIVATE]
    try:
        code, stderr, _ = ctrl_c.run(command, project, env, timeout=180)
        assert ctrl_c.sent is not None, f"{operation} never happened:\n{stderr}"
        assert code == 130, stderr
        assert timeline.reached_the_app() == []
        assert APP not in view(boto).values()

        finished = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
        assert finished.returncode == 0, finished.stderr
    finally:
        proxy.stop()
    assert timeline.reached_the_app() == []
    assert view(boto) == {80: "redirect", 443: "sign-in"}


def test_a_port_80_listener_that_appeared_meanwhile_is_given_our_settings(
    aws: str, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone made a forwarding port-80 listener between our read and our create: AWS answers
    DuplicateListener (other settings), and dashscale compares and writes its own over it
    rather than taking it as found."""
    from tests.support.operating import on_answer

    public = run("up", "--image", IMAGE)
    assert public.exit_code == 0, public.output
    assert view(boto)[80] == APP
    reads: list[int] = []

    def first_read_sees_none(parsed: dict) -> None:
        reads.append(1)
        if len(reads) == 1:
            parsed["Listeners"] = []  # the read happened before the listener was made

    on_answer(
        monkeypatch, "after-call.elastic-load-balancing-v2.DescribeListeners", first_read_sees_none
    )
    result = run("alb", *PRIVATE)
    assert result.exit_code == 0, result.output
    assert len(reads) >= 2  # the plan's read, and the look after DuplicateListener
    assert view(boto)[80] == "fixed"


def test_auth_switched_on_while_a_new_certificate_is_pending_signs_in_at_once(
    watched: Timeline, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AUTH on in the same run as WWW=false (a new certificate, still pending, --no-wait):
    443 signs in with the certificate it has rather than waiting public for the new one."""
    import moto.settings

    public = run("up", "--image", IMAGE, "--set", "DOMAIN=example.com")
    assert public.exit_code == 0, public.output
    assert view(boto) == {80: "redirect", 443: APP}
    watched.moments.clear()
    monkeypatch.setattr(moto.settings, "ACM_VALIDATION_WAIT", 10**6)  # the new one stays pending
    private = run("up", "--image", IMAGE, *PRIVATE, "--set", "WWW=false", "--no-wait")
    assert private.exit_code == 0, private.output
    assert view(boto) == {80: "redirect", 443: "sign-in"}
    switched = next(i for i, (_, seen) in enumerate(watched.moments) if seen[443] == "sign-in")
    assert watched.reached_the_app()[-1:] == watched.moments[switched - 1 : switched]
    status = run("status", *PRIVATE, "--set", "WWW=false", "--json")
    assert '"reachable": true' in status.stdout


def test_a_private_app_deploys_no_new_tasks_while_nothing_signs_in(
    watched: Timeline, boto, project: Path, run, no_docker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS still pending (port 80 forwarded, the app public), then AUTH on with a new image:
    port 80 closes, and the service waits, since no listener would check the new tasks."""
    import moto.settings

    from tests.test_up import IMAGE_2

    monkeypatch.setattr(moto.settings, "ACM_VALIDATION_WAIT", 10**6)
    public = run("up", "--image", IMAGE, "--set", "DOMAIN=example.com", "--no-wait")
    assert public.exit_code == 0, public.output
    assert view(boto) == {80: APP, 443: "refused"}
    watched.moments.clear()
    private = run("up", "--image", IMAGE_2, *PRIVATE, "--no-wait")
    assert private.exit_code == 0, private.output
    assert view(boto) == {80: "fixed", 443: "refused"}
    assert "UpdateService" not in operations(watched)
    assert "deploys once the HTTPS listener signs users in" in said(private.stderr)

"""Ctrl-C at several points of `up`: exit 130 within seconds, no traceback, and one more `up`
converges on exactly one of each resource.

`up` runs as a real process; the flaky-AWS proxy sends it SIGINT right after AWS acted on the
chosen request and before the answer goes back: the worst moment for a deploy tool.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.ctrl_c import CtrlCAfter
from tests.support.flaky_aws import Faults, FlakyAws
from tests.support.operating import installed_command
from tests.test_flaky_aws import EXACTLY_ONE_OF_EACH, IMAGE, count_resources

UP = [sys.executable, "-m", "dashscale", "up", "--image", IMAGE, "--set", "DOMAIN=example.com"]


@pytest.mark.parametrize(
    "operation",
    [
        "CreateSecurityGroup",
        "CreateRole",
        "RegisterTaskDefinition",
        "CreateLoadBalancer",
        "CreateService",
        "RequestCertificate",
    ],
)
def test_ctrl_c_then_up_converges(aws: str, boto, project: Path, run, operation: str) -> None:
    ctrl_c = CtrlCAfter(operation)
    proxy = FlakyAws(aws, Faults(), after_forward=ctrl_c)
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url}
    try:
        code, stderr, ended = ctrl_c.run(UP, project, env, timeout=120)
    finally:
        proxy.stop()
    assert ctrl_c.sent is not None, f"{operation} never happened:\n{stderr}"
    assert code == 130, stderr
    assert ended - ctrl_c.sent < 5
    assert "Traceback" not in stderr
    assert "interrupted" in stderr and "run `dashscale up` again" in stderr
    assert "done before stopping" in stderr or "nothing was changed" in stderr

    result = run("up", "--image", IMAGE, "--set", "DOMAIN=example.com")
    assert result.exit_code == 0, result.output
    assert count_resources(boto) == EXACTLY_ONE_OF_EACH


# Python's own start-up (its site module and .pth files) runs before any code of a program, and a
# signal then is Python's to handle. This sitecustomize, which site imports last, marks the moment
# start-up is over; the tests send Ctrl-C at the chosen time, or at that moment if it is later
# (on a loaded machine, Python alone can take longer than 0.1 s to start).
STARTED_MARKER = "import os\nopen(os.environ['DASHSCALE_TEST_STARTED'], 'w').close()\n"


def interrupted(
    command: list[str], cwd: Path, env: dict[str, str], after: float
) -> tuple[int, str, float]:
    """Runs the installed command, sends SIGINT `after` seconds in (and never before Python's
    own start-up is over); exit code, stderr and how long the process took to end after it."""
    marker_dir = cwd / ".started"
    marker_dir.mkdir(exist_ok=True)
    (marker_dir / "sitecustomize.py").write_text(STARTED_MARKER)
    started = marker_dir / "started"
    started.unlink(missing_ok=True)
    env = {**env, "PYTHONPATH": str(marker_dir), "DASHSCALE_TEST_STARTED": str(started)}
    launched = time.monotonic()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    while not started.exists() and process.poll() is None:
        time.sleep(0.002)
    time.sleep(max(0.0, launched + after - time.monotonic()))
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr, time.monotonic() - sent


@pytest.mark.parametrize("after", [0.1, 0.3, 0.6, 1.0])
@pytest.mark.parametrize("command", ["up", "teardown", "status"])
def test_ctrl_c_at_any_moment_of_start_up_is_a_clean_exit(
    aws: str, project: Path, command: str, after: float
) -> None:
    """While Python imports click, rich and boto3, while the configuration loads, while the
    first AWS calls go out: exit 130, the one-line message, no traceback, gone within 3 s."""
    args = {"up": ["up", "--image", IMAGE], "teardown": ["teardown", "--yes"]}.get(
        command, [command]
    )
    # On an empty account, teardown and status can finish within a second, and a run that ends
    # before the signal tests nothing: every answer held back 2 s keeps them running.
    proxy = FlakyAws(aws, Faults())
    if command != "up":
        proxy.after_forward = lambda _operation: time.sleep(2)
    try:
        env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url}
        code, stderr, took = interrupted(installed_command() + args, project, env, after)
    finally:
        proxy.stop()
    assert code == 130, f"not interrupted (exit {code}): the signal came too late\n{stderr}"
    assert "Traceback" not in stderr
    assert f"error: interrupted: `dashscale {command}` stopped before it" in stderr
    assert took < 3


def test_ctrl_c_during_a_blocked_aws_call_ends_within_3_s(aws: str, project: Path) -> None:
    """AWS holds CreateLoadBalancer for 45 s (the answer comes late): the command does not wait
    for it, prints nothing after its message, and a later `up` finds what the call made."""
    release = threading.Event()
    ctrl_c = CtrlCAfter("CreateLoadBalancer", then=lambda: release.wait(45))
    proxy = FlakyAws(aws, Faults(), after_forward=ctrl_c)
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url}
    try:
        code, stderr, ended = ctrl_c.run(
            [*installed_command(), "up", "--image", IMAGE], project, env, timeout=120
        )
    finally:
        release.set()
        proxy.stop()
    assert ctrl_c.sent is not None, stderr
    assert code == 130, stderr
    assert ended - ctrl_c.sent < 3, stderr
    assert "Traceback" not in stderr
    # the message is the last thing said: nothing a held piece finished is printed after it
    tail = " ".join(stderr[stderr.index("error: interrupted") :].split())
    assert tail.startswith("error: interrupted: `dashscale up` stopped before it finished hint:")
    assert "created" not in tail and tail.endswith("makes only what is missing")

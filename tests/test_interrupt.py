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
import time
from pathlib import Path

import pytest

from tests.support.flaky_aws import Faults, FlakyAws
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
    state: dict[str, float] = {}
    process: subprocess.Popen[str] | None = None

    def interrupt(seen: str) -> None:
        if seen == operation and "sent" not in state and process is not None:
            state["sent"] = time.monotonic()
            process.send_signal(signal.SIGINT)
            time.sleep(0.5)  # let the signal land while the client still waits for the answer

    proxy = FlakyAws(aws, Faults())
    proxy.after_forward = interrupt
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url}
    try:
        process = subprocess.Popen(
            UP, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        _, stderr = process.communicate(timeout=120)
        ended = time.monotonic()
    finally:
        proxy.stop()
    assert "sent" in state, f"{operation} never happened:\n{stderr}"
    assert process.returncode == 130, stderr
    assert ended - state["sent"] < 5
    assert "Traceback" not in stderr
    assert "interrupted" in stderr and "run `dashscale up` again" in stderr
    assert "done before stopping" in stderr or "nothing was changed" in stderr

    result = run("up", "--image", IMAGE, "--set", "DOMAIN=example.com")
    assert result.exit_code == 0, result.output
    assert count_resources(boto) == EXACTLY_ONE_OF_EACH

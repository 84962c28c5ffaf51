"""The installed `dashscale` command, run as a new user runs it, many times in a row.

Every run is a first `up` for a new APP_NAME on one emulator that started empty, followed by its
teardown; two apps deploy at once, as two people of one team would. The steps of one run go side
by side in threads, so a race between them (such as botocore's lazily built exception classes)
shows up only over many real processes, the more so on a busy machine: every one must exit 0.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
from pathlib import Path

from tests.support.operating import installed_command

RUNS = 20
AT_ONCE = 2


def deploy_and_remove(
    command: list[str], project: Path, env: dict[str, str], app: str
) -> list[str]:
    """One new user's first `up` and its teardown; what failed, with its output."""
    image = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{app}-repository:v1"
    settings = ["--set", f"APP_NAME={app}"]
    failures = []
    for args in (
        ["up", "--image", image, "--no-wait", *settings],
        ["teardown", "--yes", *settings],
    ):
        done = subprocess.run(
            command + args, cwd=project, env=env, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            failures.append(f"{app} {args[0]}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return failures


def test_twenty_first_ups_and_teardowns_all_succeed(aws: str, boto, project: Path) -> None:
    command = installed_command()
    env = {**os.environ, "AWS_ENDPOINT_URL": aws}
    with concurrent.futures.ThreadPoolExecutor(AT_ONCE) as pool:
        runs = pool.map(
            lambda n: deploy_and_remove(command, project, env, f"first{n}"), range(RUNS)
        )
        failures = [failure for run in runs for failure in run]
    assert not failures, f"{len(failures)} of {2 * RUNS} runs failed:\n" + "\n".join(failures)
    # Every teardown left nothing behind: not one load balancer or group of any app.
    assert boto("elbv2").describe_load_balancers()["LoadBalancers"] == []
    groups = boto("ec2").describe_security_groups()["SecurityGroups"]
    assert [g["GroupName"] for g in groups if g["GroupName"].startswith("first")] == []

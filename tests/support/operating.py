"""Helpers for the tests of status, logs, scale and autoscaling: a deployed app on moto, what
moto's ECS does not do (register the tasks in the target group), a clock, a captured UI."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from dashscale.aws import Clock
from dashscale.config import load_config
from dashscale.context import Context
from dashscale.ui import UI
from tests.support.clock import FakeClock

__all__ = ["FakeClock"]  # re-exported: the operating tests take it from here

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-repository:v1"


def said(output: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(output.split())


class Captured:
    """A UI whose stdout and stderr are kept as text."""

    def __init__(self) -> None:
        self._out, self._err = io.StringIO(), io.StringIO()
        self.ui = UI(
            out=Console(file=self._out, width=200, highlight=False),
            err=Console(file=self._err, width=200, highlight=False),
        )

    @property
    def out(self) -> str:
        return self._out.getvalue()

    @property
    def err(self) -> str:
        return self._err.getvalue()


def context(captured: Captured, clock: Clock | None = None, timeout: float = 900.0, **env: str):
    """A Context for the project in the current folder, with `env` as --set overrides."""
    config = load_config(overrides=env)
    return Context(config=config, ui=captured.ui, clock=clock or FakeClock(), timeout=timeout)


def register_tasks(boto, count: int = 3) -> list[str]:
    """What ECS does in AWS and moto's ECS does not: the service's tasks registered in its
    target group (moto reports registered ip targets healthy). Returns the target ids."""
    ecs, elb = boto("ecs"), boto("elbv2")
    (service,) = ecs.describe_services(cluster="demo-cluster", services=["demo-service"])[
        "services"
    ]
    (balancer,) = service["loadBalancers"]
    ips = [f"172.31.0.{10 + i}" for i in range(count)]
    elb.register_targets(
        TargetGroupArn=balancer["targetGroupArn"],
        Targets=[{"Id": ip, "Port": balancer["containerPort"]} for ip in ips],
    )
    return ips


def hook_every_client(monkeypatch: pytest.MonkeyPatch, event: str, handler: Any) -> None:
    """Registers `handler` for `event` on every client dashscale makes, once per client."""
    from dashscale import aws

    original = aws.Aws.client
    key = f"_hooked_{event}_{id(handler)}"

    def client(self: aws.Aws, service: str, region: str | None = None) -> Any:
        made = original(self, service, region)
        if not getattr(made, key, False):
            made.meta.events.register(event, handler)
            setattr(made, key, True)
        return made

    monkeypatch.setattr(aws.Aws, "client", client)


def on_answer(
    monkeypatch: pytest.MonkeyPatch, event: str, change: Callable[[dict[str, Any]], None]
) -> None:
    """Every client dashscale makes calls `change(parsed)` on the answers of `event`
    (e.g. "after-call.ecs.DescribeServices"): for states moto never reports."""
    hook_every_client(monkeypatch, event, lambda parsed, **_: change(parsed))


def installed_command() -> list[str]:
    """The `dashscale` command pip installed next to this Python: what users run (not a shell
    shim in front of it, such as pyenv's, whose own start-up would be measured too)."""
    script = Path(sys.executable).parent / "dashscale"
    if not script.exists():
        pytest.fail(f"no dashscale command at {script}: run the tests with scripts/test")
    return [str(script)]


def refuse(monkeypatch: pytest.MonkeyPatch, event: str, code: str, status: int = 400) -> None:
    """Every client dashscale makes answers the call of `event` (e.g.
    "before-call.ecs.DescribeTaskDefinition") with the error `code`, without sending it: for
    the answers real AWS gives and moto never does."""
    from botocore.awsrequest import AWSResponse

    def refuser(**_: Any) -> Any:
        parsed = {
            "Error": {"Code": code, "Message": f"refused (injected): {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return AWSResponse("https://refused.invalid/", status, {}, None), parsed

    hook_every_client(monkeypatch, event, refuser)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as wide as their content, so that a row or a title reads as one line (autouse in
    the modules that import it)."""
    monkeypatch.setenv("COLUMNS", "250")


def make_ctx(project: Path, **overrides: str) -> tuple[Context, io.StringIO]:
    """A context for the project with a fake clock; its output is kept in the returned stream."""
    stream = io.StringIO()
    console = Console(file=stream, width=200, highlight=False)
    config = load_config(overrides=overrides, environ={}, project_dir=project)
    return Context(config=config, ui=UI(err=console, out=console), clock=FakeClock()), stream

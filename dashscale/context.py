"""What a step needs: configuration, names, output, AWS and Docker clients, clock and timeout."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dashscale.aws import Aws, Clock, wait_until
from dashscale.config import Config
from dashscale.errors import DockerError
from dashscale.names import Names
from dashscale.ui import UI

T = TypeVar("T")


@dataclass
class Context:
    config: Config
    ui: UI
    clock: Clock = field(default_factory=Clock)
    timeout: float = 900.0
    # A dry run only reads: it prints the plan instead of applying it (dashscale/model.py) and,
    # as a safety net, its AWS clients refuse every changing call.
    dry_run: bool = False
    # --wait-drained: a deployment is followed until the old tasks are gone, not only until
    # the new ones serve (dashscale/steps/deployment.py)
    wait_drained: bool = False
    # Stable within one run, new for each: idempotency tokens make retries of one request safe
    # without making a later run reuse a token whose resource is gone.
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _aws: Aws | None = None
    _docker: Any = None
    _account_checked: bool = False
    # the steps of a run start side by side: one of them makes the session, the others wait
    # for it (each making its own would build every client again, and check the account again)
    _aws_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def names(self) -> Names:
        return Names(self.config.app_name, self.config.aws_region)

    @property
    def aws(self) -> Aws:
        """The run's AWS session; the first use checks AWS_ACCOUNT_ID before anything changes."""
        with self._aws_lock:
            if self._aws is None:
                self._aws = Aws(
                    self.config.aws_region, self.config.aws_profile, read_only=self.dry_run
                )
            if not self._account_checked:
                self._aws.check_account(self.config.aws_account_id)
                self._account_checked = True
            return self._aws

    def client(self, service: str, region: str | None = None) -> Any:
        return self.aws.client(service, region)

    def wait(
        self,
        title: str,
        what: str,
        check: Callable[[], T | None],
        interval: float,
        progress: Callable[[], str] | None = None,
        **options: Any,
    ) -> T:
        """`check` polled until it answers (at most --timeout seconds unless `timeout` is given),
        with a live line: `title`, or what `progress` says, and the seconds so far."""
        options.setdefault("timeout", self.timeout)
        with self.ui.waiting(title) as display:
            return wait_until(
                check,
                what=what,
                clock=self.clock,
                interval=interval,
                on_poll=lambda elapsed: display.update(
                    f"{progress() if progress else title} ({int(elapsed)} s)"
                ),
                **options,
            )

    @property
    def docker(self) -> Any:
        if self._docker is None:
            self._docker = connect_docker()
        return self._docker


def connect_docker() -> Any:
    import docker  # imported lazily: commands that never touch Docker start faster

    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except docker.errors.DockerException as error:
        raise DockerError(
            f"cannot reach the Docker engine: {error}",
            "start Docker (Docker Desktop, or `sudo systemctl start docker`) or set DOCKER_HOST",
        ) from None
    return client

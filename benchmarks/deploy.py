"""Deploy timeline under a modelled AWS: how long a first `up` with DOMAIN and a redeploy take.

moto's server runs in this process, taught to take time where real AWS does (see MODEL and
benchmarks/README.md for the figures and where they come from): a load balancer stays
`provisioning`, a certificate `PENDING_VALIDATION`, a deployment `IN_PROGRESS` (task start, then
the target group's health checks, then, on a redeploy, the old tasks' deregistration delay) for
the modelled time. Building and pushing the image is modelled as well (a first cold build and
push, a warm one for a source-only change).

Everything runs `SCALE` times faster than real: moto's delays are divided by it, and dashscale
runs on a clock that is too, so its polls and timeouts keep their real proportions. The wall
time is scaled back to real seconds. The sum of the individual waits is what the same run would
take one after another; the ratio shows how much of it overlaps.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.common import Table, progress, ratio, seconds

SCALE = 10.0  # model seconds per real second


@dataclass(frozen=True)
class Model:
    """Typical real-AWS durations, in seconds (sources in benchmarks/README.md)."""

    load_balancer_provisioning: float = 180.0
    certificate_validation: float = 120.0
    task_start: float = 40.0  # Fargate: ENI, image pull of a ~130 MB image, container start
    build_first: float = 15.0  # cold build (the build benchmark)
    push_first: float = 45.0  # push of ~130 MB
    build_redeploy: float = 1.0  # warm build
    push_redeploy: float = 7.0  # push of the changed source layer

    @property
    def image_first(self) -> float:
        return self.build_first + self.push_first

    @property
    def image_redeploy(self) -> float:
        return self.build_redeploy + self.push_redeploy


MODEL = Model()
GOAL_FIRST = 240.0
GOAL_REDEPLOY = 80.0  # until the new version serves
READ_PREFIXES = ("Describe", "List", "Get", "BatchGet")


# --- the modelled AWS ---------------------------------------------------------------------------


class ModelledAws:
    """Patches the in-process moto so that AWS's slow states last their modelled time."""

    def __init__(self, model: Model, scale: float) -> None:
        self.model = model
        self.scale = scale
        self.lb_created: dict[str, float] = {}
        self.deployments: dict[str, tuple[float, bool]] = {}  # id -> (start, is a redeploy)
        self.waits: list[tuple[str, float]] = []  # what AWS made us wait for, model seconds
        self.latest: Rollout | None = None  # the newest deployment: its tasks and targets
        self._lock = threading.Lock()

    def real(self, model_seconds: float) -> float:
        return model_seconds / self.scale

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        import moto.settings
        from moto.ecs.models import EC2ContainerServiceBackend
        from moto.elbv2.models import FakeLoadBalancer

        saved = (
            FakeLoadBalancer.activate,
            EC2ContainerServiceBackend.describe_services,
            EC2ContainerServiceBackend.create_service,
            EC2ContainerServiceBackend.update_service,
            moto.settings.ACM_VALIDATION_WAIT,
        )
        model = self
        tasks_and_targets = self.tasks_and_targets()

        def activate(balancer: Any) -> None:
            created = model.lb_created.setdefault(balancer.arn, time.monotonic())
            if time.monotonic() - created >= model.real(model.model.load_balancer_provisioning):
                saved[0](balancer)

        def create_service(backend: Any, *args: Any, **kwargs: Any) -> Any:
            service = saved[2](backend, *args, **kwargs)
            model.start_deployment(service, redeploy=False)
            return service

        def update_service(backend: Any, properties: dict[str, Any]) -> Any:
            name = properties.get("service", "").split("/")[-1]
            cluster = properties.get("cluster", "default").split("/")[-1]
            before = backend.services.get(f"{cluster}:{name}")
            old_definition = before.task_definition if before else None
            service = saved[3](backend, properties)
            if service.task_definition != old_definition:
                model.start_deployment(service, redeploy=True)
            return service

        def describe_services(backend: Any, *args: Any, **kwargs: Any) -> Any:
            services, failures = saved[1](backend, *args, **kwargs)
            for service in services:
                model.advance(service)
            return services, failures

        FakeLoadBalancer.activate = activate  # type: ignore[method-assign]
        EC2ContainerServiceBackend.create_service = create_service  # type: ignore[method-assign]
        EC2ContainerServiceBackend.update_service = update_service  # type: ignore[method-assign]
        EC2ContainerServiceBackend.describe_services = describe_services  # type: ignore
        moto.settings.ACM_VALIDATION_WAIT = int(self.real(self.model.certificate_validation))
        try:
            with tasks_and_targets:
                yield
        finally:
            (
                FakeLoadBalancer.activate,
                EC2ContainerServiceBackend.describe_services,
                EC2ContainerServiceBackend.create_service,
                EC2ContainerServiceBackend.update_service,
                moto.settings.ACM_VALIDATION_WAIT,
            ) = saved  # type: ignore[method-assign]

    # --- deployments ---------------------------------------------------------------------------

    def start_deployment(self, service: Any, redeploy: bool) -> None:
        import uuid

        now = time.monotonic()
        old = [dict(d, status="ACTIVE") for d in service.deployments[:1]] if redeploy else []
        new = dict(service.deployments[0]) if service.deployments else {}
        new.update(
            id=f"ecs-svc/{uuid.uuid4().int % 10**18}",
            status="PRIMARY",
            taskDefinition=service.task_definition,
            rolloutState="IN_PROGRESS",
            runningCount=0,
        )
        service.deployments = [new, *old]
        with self._lock:
            self.deployments[new["id"]] = (now, redeploy)
            previous = self.latest
            self.latest = Rollout(
                new["id"],
                now,
                redeploy,
                tuple(f"10.0.{len(self.deployments)}.{i}" for i in range(service.desired_count)),
                previous.addresses if previous and redeploy else (),
            )

    def deployment_seconds(self, redeploy: bool) -> float:
        """Task start, then the health checks, then (redeploy) draining the old tasks."""
        interval, threshold, drain = self.target_group_settings()
        return self.model.task_start + interval * threshold + (drain if redeploy else 0.0)

    def serving_seconds(self) -> float:
        """Task start, then the health checks: the new tasks serve, the old ones drain."""
        interval, threshold, _ = self.target_group_settings()
        return self.model.task_start + interval * threshold

    def target_group_settings(self) -> tuple[float, float, float]:
        from moto.elbv2.models import elbv2_backends

        for account in elbv2_backends.values():
            for backend in account.values():
                for group in backend.target_groups.values():
                    return (
                        float(group.health_check_interval_seconds),
                        float(group.healthy_threshold_count),
                        float(group.attributes["deregistration_delay.timeout_seconds"]),
                    )
        return 30.0, 5.0, 300.0  # AWS's defaults

    def moments(self, started: float, redeploy: bool) -> tuple[float, float, float]:
        """When (monotonic) a deployment's tasks run, pass their health checks (the old ones
        start draining then) and when the old ones are gone (the rollout COMPLETED)."""
        interval, threshold, drain = self.target_group_settings()
        running = started + self.real(self.model.task_start)
        healthy = running + self.real(interval * threshold)
        # Targets pass health checks only once the load balancer is active.
        lb_active = [
            created + self.real(self.model.load_balancer_provisioning)
            for created in self.lb_created.values()
        ]
        if lb_active and not redeploy:
            healthy = max(healthy, max(lb_active) + self.real(interval * threshold))
        return running, healthy, healthy + (self.real(drain) if redeploy else 0.0)

    def advance(self, service: Any) -> None:
        primary = service.deployments[0] if service.deployments else None
        if primary is None or primary["id"] not in self.deployments:
            return
        running, _, completed = self.moments(*self.deployments[primary["id"]])
        now = time.monotonic()
        if now >= running:
            primary.update(runningCount=service.desired_count)
        if now >= completed:
            primary.update(rolloutState="COMPLETED", runningCount=service.desired_count)
            service.deployments = [primary]
            service.running_count = service.desired_count

    @contextlib.contextmanager
    def tasks_and_targets(self) -> Iterator[None]:
        """ECS's view of the newest deployment's tasks (ListTasks by startedBy, DescribeTasks)
        and the target group's health: new targets `initial`, then `healthy`; the old ones
        `healthy`, then `draining` for the deregistration delay, then gone."""
        from types import SimpleNamespace

        from moto.ecs.models import EC2ContainerServiceBackend
        from moto.elbv2.models import ELBv2Backend, FakeHealthStatus

        saved = (
            EC2ContainerServiceBackend.list_tasks,
            EC2ContainerServiceBackend.describe_tasks,
            ELBv2Backend.describe_target_health,
        )
        model = self

        def list_tasks(backend: Any, *args: Any, **kwargs: Any) -> Any:
            rollout = model.latest
            started_by = args[3] if len(args) > 3 else kwargs.get("started_by")
            if rollout is None or started_by != rollout.id:
                return saved[0](backend, *args, **kwargs)
            running = time.monotonic() >= model.moments(rollout.started, rollout.redeploy)[0]
            return [SimpleNamespace(task_arn=arn) for arn in rollout.arns()] if running else []

        def describe_tasks(backend: Any, cluster: Any, tasks: Any, *args: Any) -> Any:
            rollout = model.latest
            if rollout is None or not set(tasks) <= set(rollout.arns()):
                return saved[1](backend, cluster, tasks, *args)
            return [rollout.task(arn) for arn in tasks]

        def describe_target_health(backend: Any, arn: str, targets: Any) -> Any:
            rollout = model.latest
            if rollout is None:
                return saved[2](backend, arn, targets)
            running, healthy, gone = model.moments(rollout.started, rollout.redeploy)
            now = time.monotonic()
            rows = []
            if now < gone:
                old = "healthy" if now < healthy else "draining"
                rows += [FakeHealthStatus(ip, "8050", None, old) for ip in rollout.old]
            if now >= running:
                new = "healthy" if now >= healthy else "initial"
                rows += [FakeHealthStatus(ip, "8050", None, new) for ip in rollout.addresses]
            return rows

        EC2ContainerServiceBackend.list_tasks = list_tasks  # type: ignore[method-assign]
        EC2ContainerServiceBackend.describe_tasks = describe_tasks  # type: ignore
        ELBv2Backend.describe_target_health = describe_target_health  # type: ignore
        try:
            yield
        finally:
            (
                EC2ContainerServiceBackend.list_tasks,
                EC2ContainerServiceBackend.describe_tasks,
                ELBv2Backend.describe_target_health,
            ) = saved  # type: ignore[method-assign]


@dataclass(frozen=True)
class Rollout:
    """A modelled deployment: its id, start, whether it replaces tasks, its tasks' addresses
    and those of the tasks it replaces."""

    id: str
    started: float
    redeploy: bool
    addresses: tuple[str, ...]
    old: tuple[str, ...]

    def arns(self) -> list[str]:
        prefix = "arn:aws:ecs:us-east-1:123456789012:task/bench-cluster"
        return [f"{prefix}/{ip}" for ip in self.addresses]

    def task(self, arn: str) -> dict[str, Any]:
        ip = arn.rsplit("/", 1)[-1]
        detail = {"name": "privateIPv4Address", "value": ip}
        return {
            "taskArn": arn,
            "lastStatus": "RUNNING",
            "desiredStatus": "RUNNING",
            "startedBy": self.id,
            "attachments": [{"type": "ElasticNetworkInterface", "details": [detail]}],
        }


# --- scenarios ----------------------------------------------------------------------------------


def scaled_clock(scale: float) -> Any:
    """dashscale's clock, `scale` times faster than real time."""
    from dashscale.aws import Clock

    start = time.monotonic()
    return Clock(
        now=lambda: (time.monotonic() - start) * scale, sleep=lambda s: time.sleep(s / scale)
    )


@dataclass(frozen=True)
class Timeline:
    wall: float  # model seconds
    waits: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.waits.values())


def _project(folder: Path) -> None:
    (folder / "src").mkdir()
    (folder / "src" / "app.py").write_text("app = None\nserver = app\n")
    (folder / "src" / "requirements.txt").write_text("dash\n")
    (folder / ".env").write_text(
        "APP_NAME=bench\nAWS_REGION=us-east-1\nDOMAIN=bench.example\nDNS_RESOLVER=none\n"
    )


def _deploy(
    model: ModelledAws,
    image_seconds: tuple[float, float],
    tag: str,
    calls: list[str] | None = None,
    given: bool = False,
    drained: bool = False,
) -> float:
    """One `up` with a modelled image step; returns its wall time in model seconds. The names of
    the AWS operations it called are appended to `calls` when given. `given`: deploy the image
    as `--image URI` does (no image step)."""
    from dashscale.config import load_config
    from dashscale.context import Context
    from dashscale.steps import image as image_step
    from dashscale.steps import up as up_step
    from dashscale.steps.cluster import DeployImage
    from dashscale.ui import UI

    uri = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/bench-repository:{tag}"

    build_seconds, push_seconds = image_seconds

    def modelled_build(ctx: Any, *args: Any, **kwargs: Any) -> None:
        time.sleep(model.real(build_seconds))  # the local build, while `up` reads AWS

    def modelled_push(ctx: Any, *args: Any, **kwargs: Any) -> DeployImage:
        time.sleep(model.real(push_seconds))  # once the build is done and the repository exists
        return DeployImage(uri, "X86_64")

    original = image_step.local_image, image_step.push_image
    image_step.local_image = modelled_build  # type: ignore[assignment]
    image_step.push_image = modelled_push  # type: ignore[assignment]
    try:
        quiet = Console(file=io.StringIO())  # the table is the output, not dashscale's lines
        ctx = Context(
            config=load_config(),
            ui=UI(err=quiet, out=quiet),
            clock=scaled_clock(model.scale),
            wait_drained=drained,
        )
        if calls is not None:  # every client is made after this, so each one reports
            ctx.aws.session.events.register(
                "before-call", lambda model, **kwargs: calls.append(model.name)
            )
        started = time.monotonic()
        up_step.up(ctx, uri if given else None)
        return (time.monotonic() - started) * model.scale
    finally:
        image_step.local_image, image_step.push_image = original  # type: ignore[assignment]


# One read per service `up` uses. moto loads a service's backend on its first request, which
# takes longer than any AWS answer; real AWS has no such cost, so the timed runs start warm.
WARM_UP = (
    ("ec2", "describe_vpcs", {}),
    ("ecs", "list_clusters", {}),
    ("iam", "list_roles", {}),
    ("logs", "describe_log_groups", {}),
    ("elbv2", "describe_load_balancers", {}),
    ("application-autoscaling", "describe_scalable_targets", {"ServiceNamespace": "ecs"}),
    ("route53", "list_hosted_zones", {}),
    ("route53domains", "list_domains", {}),
    ("acm", "list_certificates", {}),
    ("ecr", "describe_repositories", {}),
    ("ssm", "describe_parameters", {}),
    ("secretsmanager", "list_secrets", {}),
    ("sts", "get_caller_identity", {}),
    ("cognito-idp", "list_user_pools", {"MaxResults": 1}),
)


def warm_up() -> None:
    import boto3

    session = boto3.session.Session(region_name="us-east-1")
    for service, operation, arguments in WARM_UP:
        with contextlib.suppress(Exception):  # a read the emulator lacks warms nothing
            getattr(session.client(service), operation)(**arguments)


def _redeploy_drained(model: ModelledAws) -> Timeline:
    progress("   redeploy with --wait-drained (the old tasks gone)")
    wall = _deploy(model, (MODEL.build_redeploy, MODEL.push_redeploy), "v3", drained=True)
    return Timeline(
        wall,
        {
            "image build and push": MODEL.image_redeploy,
            "service deployment": model.deployment_seconds(redeploy=True),
        },
    )


def measure() -> Measured:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        MOTO_ECS_SERVICE_RUNNING="3",
        MOTO_IAM_LOAD_MANAGED_POLICIES="true",
    )
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines

    from dashscale.steps.build import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    previous = os.getcwd()
    model = ModelledAws(MODEL, SCALE)
    try:
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory(prefix="dashscale-deploy-") as folder, model.installed():
            _project(Path(folder))
            os.chdir(folder)
            warm_up()
            progress("   first up with DOMAIN (modelled AWS)")
            first_wall = _deploy(model, (MODEL.build_first, MODEL.push_first), "v1")
            first = Timeline(
                first_wall,
                {
                    "image build and push": MODEL.image_first,
                    "load balancer provisioning": MODEL.load_balancer_provisioning,
                    "certificate validation": MODEL.certificate_validation,
                    "service deployment": model.deployment_seconds(redeploy=False),
                },
            )
            progress("   redeploy after a source-only change, until the new version serves")
            redeploy_wall = _deploy(model, (MODEL.build_redeploy, MODEL.push_redeploy), "v2")
            redeploy = Timeline(
                redeploy_wall,
                {
                    "image build and push": MODEL.image_redeploy,
                    "service deployment until serving": model.serving_seconds(),
                },
            )
            drained = _redeploy_drained(model)
            settings = model.target_group_settings()
            progress("   no-op up (nothing changed)")
            noop_calls: list[str] = []
            _deploy(model, (0.0, 0.0), "v3", noop_calls, given=True)
    finally:
        os.chdir(previous)
        server.stop()
    return Measured(first, redeploy, drained, settings, noop_calls)


@dataclass(frozen=True)
class Measured:
    first: Timeline
    redeploy: Timeline  # until the new version serves
    drained: Timeline  # with --wait-drained
    settings: tuple[float, float, float]  # health check interval, threshold, deregistration delay
    noop_calls: list[str]


def _row(label: str, timeline: Timeline, goal: float | None) -> tuple[str, ...]:
    met = "" if goal is None else ("met" if timeline.wall <= goal else "MISSED")
    return (
        label,
        seconds(timeline.wall),
        seconds(timeline.total),
        ratio(timeline.wall, timeline.total),
        "" if goal is None else seconds(goal),
        met,
    )


def run() -> Table:
    measured = measure()
    first, redeploy, noop = measured.first, measured.redeploy, measured.noop_calls
    interval, threshold, drain = measured.settings
    changes = [op for op in noop if not op.startswith(READ_PREFIXES)]
    defaults = MODEL.task_start + 30 * 5 + 300  # the same redeploy with AWS's defaults
    rows = (
        _row("first up with DOMAIN", first, GOAL_FIRST),
        _row("redeploy until serving (source change)", redeploy, GOAL_REDEPLOY),
        _row("redeploy --wait-drained (old tasks gone)", measured.drained, None),
    )
    notes = (
        f"Modelled AWS, run {SCALE:.0f}x faster and scaled back to real seconds. Waits of the "
        "first up: " + ", ".join(f"{k} {v:.0f} s" for k, v in first.waits.items()) + ".",
        f"Deployment = task start {MODEL.task_start:.0f} s + health checks "
        f"{interval:.0f} s x {threshold:.0f} + (redeploy) deregistration delay {drain:.0f} s, "
        "read from the target group dashscale made; with AWS's defaults (30 s x 5, 300 s) a "
        f"redeploy's deployment alone would take {defaults:.0f} s. `up` returns once the new "
        "tasks serve (healthy, the old ones draining); --wait-drained also waits out the delay.",
        "ratio = wall / sum of waits: below 1, waits overlap.",
        f"No-op up: {len(noop)} AWS calls, {len(changes)} changing"
        + (f" ({', '.join(changes)})" if changes else "")
        + " (the image given as with --image): each resource read once, before the plan.",
    )
    return Table(
        "Deploy timeline under a modelled AWS (real seconds)",
        ("scenario", "wall time", "sum of waits", "ratio", "goal", "goal met"),
        rows,
        notes,
    )


if __name__ == "__main__":
    from benchmarks.common import main

    main(["deploy"])

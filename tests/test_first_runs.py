"""The installed `dashscale` command, run as a new user runs it, many times in a row.

Every run is a first `up` for a new APP_NAME on one emulator that started empty, followed by its
teardown; two apps deploy at once, as two people of one team would. The steps of one run go side
by side in threads, so a race between them (such as botocore's lazily built exception classes)
shows up only over many real processes, the more so on a busy machine: every one must exit 0.

The runs differ so that together they make every kind of resource dashscale can own (a domain,
sign-in, autoscaling, office hours, alarms, a task role, stored secrets, a repository, a CI
role with GitHub's OIDC provider), and half tear down with --all.
Afterwards the whole account is listed kind by kind (tests/support/inventory.py) and compared
with the listing taken before: an --all teardown leaves nothing; a plain one leaves only what it
says it keeps (repository, logs, secrets, user pool, zone).
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dashscale.steps.up import every_resource
from tests.support import inventory
from tests.support.inventory import Found
from tests.support.operating import Captured, context, installed_command

RUNS = 20
AT_ONCE = 2
# What a teardown without --all keeps (data or identity), by the inventory's kinds.
KEPT_WITHOUT_ALL = {
    "ECR repository",
    "image",
    "log group",
    "SSM parameter",
    "user pool",
    "sign-in domain",
    "hosted zone",
}


@dataclass(frozen=True)
class Run:
    number: int

    @property
    def app(self) -> str:
        return f"first{self.number:02d}"  # two digits: no app's name is part of another's

    @property
    def shape(self) -> int:
        return self.number % 4

    @property
    def everything(self) -> bool:
        """--all for runs 0-3, 8-11 and 16-19: each shape is torn down both ways."""
        return (self.number // 4) % 2 == 0

    def settings(self) -> list[str]:
        settings = ["--set", f"APP_NAME={self.app}"]
        if self.shape in (1, 2):
            settings += ["--set", f"DOMAIN={self.app}.example.com"]
        if self.shape == 2:
            settings += ["--set", "AUTH=cognito"]
        if self.shape == 3:
            settings += ["--set", "MIN_COUNT=2", "--set", "MAX_COUNT=6"]
            settings += ["--set", "REQUESTS_PER_TARGET=500"]
            settings += ["--set", "TASK_ROLE_POLICIES=AmazonS3ReadOnlyAccess"]
            settings += ["--set", "CACHE=redis", "--set", "WORKERS=1"]
            settings += ["--set", "SCHEDULE=Mon-Fri 08:00-19:00 Europe/Berlin"]
            settings += ["--set", "ALERT_EMAIL=ops@example.com"]
        return settings

    def commands(self) -> list[tuple[list[str], str | None]]:
        """(arguments, stdin) of each command of this run, in order."""
        image = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{self.app}-repository:v1"
        up = ["up", "--image", image, *self.settings()]
        if self.shape == 0:
            up.append("--no-wait")
        down = ["teardown", "--yes", *self.settings(), *(["--all"] if self.everything else [])]
        steps: list[tuple[list[str], str | None]] = []
        if self.shape == 3:
            steps.append((["secret", "set", "TOKEN", *self.settings()], "first-run-value"))
        if self.shape == 1 and self.everything:  # the role and the shared provider: --all only
            steps.append((["ci", "role", "--repo", f"octo/{self.app}", *self.settings()], None))
        return [*steps, (up, None), (down, None)]

    def owns(self, item: Found) -> bool:
        return re.search(rf"(?<![a-z0-9]){self.app}(?![0-9])", item.name) is not None


def run_commands(
    command: list[str], project: Path, env: dict[str, str], run: Run, phase: str
) -> list[str]:
    """The commands of one run's phase ("up": what deploys, "down": the teardown); what
    failed, with its output."""
    failures = []
    *ups, down = run.commands()
    for args, stdin in ups if phase == "up" else [down]:
        done = subprocess.run(
            command + args,
            cwd=project,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            failures.append(f"{run.app} {args[0]}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return failures


def make_repository(app: str) -> None:
    """The repository as `dashscale push` makes it (the engine-free runs cannot push), so that
    teardown has one to delete or keep."""
    from dashscale.steps.repository import ensure_repository

    ensure_repository(context(Captured(), APP_NAME=app), quiet=True)


def test_the_inventory_knows_every_kind_dashscale_makes() -> None:
    """A kind added to the model or to teardown without the inventory knowing it would be a
    kind the leftover check cannot see."""
    product = {r.kind for r in every_resource()}  # the one inventory: teardown deletes these
    product.discard("scalable target")
    listed = {inventory.SAME_AS.get(kind, kind) for kind in product}
    assert listed - inventory.KINDS == set(), "add a lister to tests/support/inventory.py"
    assert KEPT_WITHOUT_ALL <= inventory.KINDS


def test_twenty_first_ups_and_teardowns_all_succeed(aws: str, boto, project: Path) -> None:
    command = installed_command()
    env = {**os.environ, "AWS_ENDPOINT_URL": aws}
    runs = [Run(n) for n in range(RUNS)]
    before = inventory.inventory(boto)
    for run in runs:
        if run.shape == 3:
            make_repository(run.app)

    def phase(name: str) -> None:
        with concurrent.futures.ThreadPoolExecutor(AT_ONCE) as pool:
            done = pool.map(lambda run: run_commands(command, project, env, run, name), runs)
            failures = [failure for result in done for failure in result]
        assert not failures, f"{len(failures)} {name} commands failed:\n" + "\n".join(failures)

    phase("up")
    # The runs made every kind of the product's model (else the check below proves less).
    made = inventory.inventory(boto) - before
    made_kinds = {item.kind for item in made}
    wanted = {inventory.SAME_AS.get(r.kind, r.kind) for r in every_resource()} - {"image"}
    assert wanted - made_kinds == set(), f"no run made: {wanted - made_kinds}"
    assert {"SSM parameter", "attached policy"} <= made_kinds

    phase("down")
    left = inventory.inventory(boto) - before
    not_kept = {
        item
        for item in left
        if not any(
            run.owns(item) and not run.everything and item.kind in KEPT_WITHOUT_ALL for run in runs
        )
    }
    assert not_kept == set(), "teardown left behind:\n" + inventory.describe(not_kept)
    # the plain teardowns kept what they say they keep
    assert {item.kind for item in left} == KEPT_WITHOUT_ALL - {"image"}, inventory.describe(left)
    # and nothing of the --all apps carries the tag any more, whatever its kind
    gone = [run.app for run in runs if run.everything]
    assert inventory.tagged(boto, gone) == set()

"""Fixtures: moto's server for AWS, the Docker engine, a real registry, a project folder.

Everything runs on loopback and is started here, by the tests; the README's test command only
makes sure the Docker engine and the test base image exist.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

# moto reads these when imported: certificates issue after 1 s, AWS managed policies exist,
# and services report running tasks.
os.environ.setdefault("MOTO_ACM_VALIDATION_WAIT", "1")
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
os.environ.setdefault("MOTO_ECS_SERVICE_RUNNING", "3")
os.environ.setdefault("MOTO_ENABLE_RECORDING", "true")
os.environ.setdefault(
    "MOTO_RECORDER_FILEPATH", os.path.join(tempfile.gettempdir(), f"moto-recording-{os.getpid()}")
)

from click.testing import CliRunner, Result
from moto.server import ThreadedMotoServer

from dashscale.cli import cli
from tests.support import moto_fixes
from tests.support.servers import Registry, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = os.environ.get("DASHSCALE_TEST_BASE_IMAGE", "dashscale-test-base:bookworm")
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real AWS, no user configuration: dummy credentials and none of dashscale's variables."""
    from dashscale.config import VARIABLES

    for var in VARIABLES:
        monkeypatch.delenv(var.name, raising=False)
    for name in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    # Never ask the machine's resolver (it may sit on a private address): tests that check the
    # delegation start their own DNS server on loopback and pass --set DNS_RESOLVER=...
    monkeypatch.setenv("DNS_RESOLVER", "none")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    moto_fixes.apply()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh emulated AWS account for one test; returns the endpoint."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    # a reset reloads AWS's managed policies: seconds on a loaded 2-core machine
    urllib.request.urlopen(request, timeout=120).close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return moto_server


@pytest.fixture
def flaky(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Starts a flaky-AWS proxy in front of the emulator with the given faults and points
    AWS_ENDPOINT_URL at it; every proxy started is stopped after the test."""
    from tests.support.flaky_aws import Faults, FlakyAws

    proxies: list[FlakyAws] = []

    def start(faults: Faults) -> FlakyAws:
        proxy = FlakyAws(aws, faults)
        proxies.append(proxy)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def boto(aws: str):
    """A boto3 client factory for asserting on AWS's side."""
    import boto3

    def client(service: str):
        return boto3.client(service, region_name=REGION, endpoint_url=aws)

    return client


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder as `dashscale init` leaves it, with the test base image."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copytree(REPO_ROOT / "src", folder / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / ".env").write_text(
        f"APP_NAME=demo\nAWS_REGION={REGION}\nBASE_IMAGE={BASE_IMAGE}\nAPP_PORT={free_port()}\n"
    )
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def run() -> callable:
    """Runs the CLI in-process like a user would; returns click's Result."""

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def oidc_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict]]:
    """A discovery server on 127.0.0.1: yields its issuer and the document it serves (a test
    may change it); the CLI trusts its certificate."""
    from tests.support.oidc import discovery_server

    document: dict[str, str] = {}
    with discovery_server(tmp_path, document) as (issuer, ca_file):
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.setenv(name, "127.0.0.1,localhost")
        yield issuer, document


@pytest.fixture(scope="session")
def docker_client():
    """The real Docker engine; the test command starts one when none runs."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        pytest.fail(f"no Docker engine ({error}): run the tests with scripts/test")
    return client


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    try:
        docker_client.images.get(BASE_IMAGE)
    except Exception:
        subprocess.run([str(REPO_ROOT / "scripts" / "base-image.sh"), BASE_IMAGE], check=True)
    return BASE_IMAGE


@pytest.fixture(scope="session")
def registry() -> Iterator[Registry]:
    server = Registry()
    yield server
    server.stop()


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands that must never touch Docker (`up --image`, teardown, status, ...)."""

    def refuse() -> None:
        raise AssertionError("Docker was used")

    monkeypatch.setattr("dashscale.context.connect_docker", refuse)


# --- skipped tests fail the run ------------------------------------------------------------------
# A skipped test checked nothing, and a green run with skips in it reads like a green run: CI
# (scripts/test) would not notice a test that stopped running. So any skip (a test's, a module's
# importorskip, an xfail) fails the session, unless DASHSCALE_ALLOW_SKIPS=1 says it is wanted.
ALLOW_SKIPS = "DASHSCALE_ALLOW_SKIPS"
_skipped: list[str] = []


def _note_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid or "(collection)")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _note_skip(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _note_skip(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _skipped or os.environ.get(ALLOW_SKIPS) == "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"{len(_skipped)} test(s) skipped, which fails the run (set {ALLOW_SKIPS}=1 to "
            f"allow): {', '.join(sorted(set(_skipped))[:10])}",
            red=True,
        )
    if exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

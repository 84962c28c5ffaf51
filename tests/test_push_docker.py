"""Push for real: the Docker engine pushes to Debian's registry on loopback (DASHSCALE_REGISTRY),
moto's server answers ECR, and a TCP proxy breaks connections where the test wants failures."""

from __future__ import annotations

import contextlib
import io
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import pytest
from rich.console import Console

from dashscale.aws import Clock
from dashscale.config import load_config
from dashscale.context import Context
from dashscale.errors import PushError
from dashscale.steps.push import find_pushed, push
from dashscale.steps.repository import lifecycle_policy
from dashscale.ui import UI
from tests.support.operating import said
from tests.support.recording import recording
from tests.support.servers import FlakyTcpProxy, Registry, free_port
from tests.test_push_unit import MOTO_PASSWORD, repository_settings

pytestmark = pytest.mark.docker

REPOSITORY = "demo-repository"
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
)


@pytest.fixture
def registry_now() -> Iterator[Registry]:
    """A registry of its own for one test: nothing pushed by another test is in it."""
    server = Registry()
    yield server
    server.stop()


@pytest.fixture
def engine_refs(docker_client) -> Iterator[list[str]]:
    """Registry addresses a test pushes to; their tags and digests leave the engine afterwards
    (the images keep their demo:TAG names)."""
    addresses: list[str] = []
    yield addresses
    for image in docker_client.images.list():
        for ref in (image.attrs.get("RepoTags") or []) + (image.attrs.get("RepoDigests") or []):
            if any(ref.startswith(f"{address}/") for address in addresses):
                with contextlib.suppress(Exception):
                    docker_client.api.remove_image(ref, noprune=True)


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Docker client configuration: a push must write nothing into it."""
    folder = tmp_path / "docker-config"
    folder.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    return folder


def use_registry(monkeypatch: pytest.MonkeyPatch, engine_refs: list[str], address: str) -> None:
    monkeypatch.setenv("DASHSCALE_REGISTRY", address)
    engine_refs.append(address)


@pytest.fixture
def proxied_registry(
    registry_now: Registry, engine_refs: list[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., FlakyTcpProxy]]:
    """Starts a FlakyTcpProxy in front of registry_now with the given faults and makes it
    DASHSCALE_REGISTRY; every proxy started is stopped after the test."""
    proxies: list[FlakyTcpProxy] = []

    def start(fail_first: int = 0, fail_when: Callable[[str], bool] | None = None) -> FlakyTcpProxy:
        proxy = FlakyTcpProxy(registry_now.port, fail_first=fail_first, fail_when=fail_when)
        proxies.append(proxy)
        use_registry(monkeypatch, engine_refs, proxy.address)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


PING = "GET /v2/ HTTP/1.1"  # what the engine asks a registry first, for each push


def is_ping(request_line: str) -> bool:
    return request_line == PING


def registry_digest(registry: Registry, tag: str) -> str:
    """The manifest digest the registry itself reports for a tag (asked over its own API)."""
    request = urllib.request.Request(
        f"http://{registry.address}/v2/{REPOSITORY}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": MANIFEST_TYPES},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.headers["Docker-Content-Digest"])


def shows_no_token(*results) -> bool:
    """True when moto's ECR password appears nowhere, not even split by line wrapping."""
    return all(MOTO_PASSWORD not in "".join(r.output.split()) for r in results)


def result_lines(result) -> tuple[str, str]:
    uri, digest = result.stdout.strip().splitlines()[-2:]
    return uri, digest


def test_push_after_build_as_a_new_user(
    project: Path,
    run,
    aws: str,
    boto,
    base_image: str,
    registry_now: Registry,
    proxied_registry: Callable[..., FlakyTcpProxy],
    docker_config: Path,
) -> None:
    # a proxy that breaks nothing, to count the bytes that reach the registry
    proxy = proxied_registry(fail_first=0)
    built = run("build", "--no-check")
    assert built.exit_code == 0, built.output
    tag = built.stdout.strip().split(":")[-1]

    first = run("push")
    assert first.exit_code == 0, first.output
    uri, digest = result_lines(first)
    assert uri == f"{proxy.address}/{REPOSITORY}:{tag}"
    assert registry_now.tags(REPOSITORY) == [tag]
    assert digest == registry_digest(registry_now, tag)
    assert proxy.bytes_up > 50_000_000  # the layers went up
    assert "layers uploaded" in said(first.output)

    settings = repository_settings(boto)
    assert settings["scan"] is True and settings["mutability"] == "IMMUTABLE"
    assert {"Key": "dashscale:app", "Value": "demo"} in settings["tags"]
    assert settings["policy"] == lifecycle_policy(30)

    # the same content again: exit 0, nothing uploaded, nothing changed in AWS
    sent = proxy.bytes_up
    with recording(aws) as calls:
        second = run("push", "--verbose")
    assert second.exit_code == 0, second.output
    assert result_lines(second) == (uri, digest)
    assert "already in the registry; nothing uploaded" in said(second.output)
    assert proxy.bytes_up - sent < 100_000
    assert calls.changing == []

    # a source change: a new tag, and only the changed layer goes up
    app = project / "src" / "app.py"
    app.write_text(app.read_text().replace("Hello from dashscale", "Hello again"))
    sent = proxy.bytes_up
    third = run("push", "--no-check")
    assert third.exit_code == 0, third.output
    new_uri, new_digest = result_lines(third)
    assert new_uri != uri and new_digest != digest
    assert sorted(registry_now.tags(REPOSITORY)) == sorted([tag, new_uri.split(":")[-1]])
    assert proxy.bytes_up - sent < 5_000_000
    assert "already there" in said(third.output) and "0 already there" not in said(third.output)

    assert shows_no_token(first, second, third)
    assert list(docker_config.iterdir()) == []  # no login stored anywhere


def test_push_goes_through_connections_broken_at_first(
    project: Path,
    run,
    aws: str,
    base_image: str,
    registry_now: Registry,
    proxied_registry: Callable[..., FlakyTcpProxy],
) -> None:
    # the engine's first request to the registry, which it does not retry by itself
    proxy = proxied_registry(fail_first=1, fail_when=is_ping)
    result = run("push", "--no-check")
    assert result.exit_code == 0, result.output
    assert proxy.broken == [PING]
    assert "attempt 1 of 6 failed" in said(result.output)
    assert "attempt 2 of 6 failed" not in said(result.output)
    assert "connection reset by peer" in said(result.output)
    uri, digest = result_lines(result)
    tag = uri.split(":")[-1]
    assert registry_now.tags(REPOSITORY) == [tag]
    assert digest == registry_digest(registry_now, tag)
    assert shows_no_token(result)


class ArmingUI(UI):
    """Breaks the proxy's next connections the moment the engine's push begins, so the push
    stream itself (not the registry check before it) fails. Only the push's first request
    (`GET /v2/`) breaks: a broken layer upload the engine retries by itself, 5 to 25 s apart."""

    def __init__(self, proxy: FlakyTcpProxy, failures: int, buffer: io.StringIO) -> None:
        console = Console(file=buffer, width=300, highlight=False)
        super().__init__(err=console, out=console)
        self.proxy = proxy
        self.failures = failures
        self.pushes = 0

    @contextlib.contextmanager
    def transfers(self, description: str) -> Iterator:
        self.pushes += 1
        if self.pushes == 1:
            self.proxy.fail_when = is_ping
            self.proxy.remaining_failures = self.failures
        with super().transfers(description) as progress:
            yield progress


def test_failures_inside_the_push_stream_are_retried(
    project: Path,
    aws: str,
    base_image: str,
    registry_now: Registry,
    proxied_registry: Callable[..., FlakyTcpProxy],
) -> None:
    proxy = proxied_registry(fail_first=0)
    buffer = io.StringIO()
    ui = ArmingUI(proxy, failures=1, buffer=buffer)
    sleeps: list[float] = []
    ctx = Context(config=load_config(), ui=ui, clock=Clock(sleep=sleeps.append))
    pushed = push(ctx)
    text = buffer.getvalue()
    assert ui.pushes == 2 and len(sleeps) == 1  # the stream failed, the push ran again
    assert proxy.broken == [PING]
    assert f"failed (pushing {pushed.uri})" in text
    assert "connection reset by peer" in text
    tag = pushed.uri.split(":")[-1]
    assert registry_now.tags(REPOSITORY) == [tag]
    assert pushed.digest == registry_digest(registry_now, tag)
    assert pushed.architecture == "X86_64"
    # what `up` asks: the registry holds the current content's image
    assert find_pushed(ctx) == pushed


def test_retries_run_out_when_the_registry_never_answers(
    project: Path,
    aws: str,
    base_image: str,
    registry_now: Registry,
    proxied_registry: Callable[..., FlakyTcpProxy],
) -> None:
    proxied_registry(fail_first=10_000)  # every connection is reset
    sleeps: list[float] = []
    buffer = io.StringIO()
    console = Console(file=buffer, width=300)
    ctx = Context(
        config=load_config(), ui=UI(err=console, out=console), clock=Clock(sleep=sleeps.append)
    )
    with pytest.raises(PushError) as raised:
        push(ctx, retries=2)
    assert len(sleeps) == 2 and 1.0 <= sleeps[0] <= 2.0 and 2.0 <= sleeps[1] <= 4.0
    assert "failed 3 times" in raised.value.message
    assert registry_now.tags(REPOSITORY) == []


def test_a_refused_login_stops_at_once_without_showing_the_token(
    project: Path,
    run,
    aws: str,
    base_image: str,
    tmp_path: Path,
    engine_refs: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    htpasswd = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"not-the-ecr-token", bcrypt.gensalt(rounds=4)).decode()
    htpasswd.write_text(f"AWS:{hashed}\n")
    guarded = Registry(htpasswd=htpasswd)
    try:
        use_registry(monkeypatch, engine_refs, guarded.address)
        started = time.monotonic()
        with recording(aws) as calls:
            result = run("push", "--no-check", "--verbose")
        assert result.exit_code == 1
        assert time.monotonic() - started < 20
        assert f"the registry {guarded.address} refused the login" in said(result.output)
        assert "unauthorized: authentication required" in said(result.output)
        assert "hint:" in said(result.output)
        assert "retrying in" not in said(result.output)
        assert "Traceback" not in said(result.output)
        assert calls.operations.count("GetAuthorizationToken") == 2  # one fresh token, no more
        assert shows_no_token(result)
    finally:
        guarded.stop()


def test_an_unreachable_registry_is_fatal(
    project: Path, run, aws: str, engine_refs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_registry(monkeypatch, engine_refs, f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    result = run("push", "--no-check")
    assert result.exit_code == 1
    assert time.monotonic() - started < 20
    assert "the registry cannot be reached" in said(result.output)
    assert "connection refused" in said(result.output) and "DASHSCALE_REGISTRY" in said(
        result.output
    )
    assert "retrying in" not in said(result.output) and "Traceback" not in said(result.output)


def test_the_same_tag_with_other_content_is_refused(
    project: Path,
    run,
    aws: str,
    base_image: str,
    registry_now: Registry,
    engine_refs: list[str],
    docker_client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_registry(monkeypatch, engine_refs, registry_now.address)
    monkeypatch.setenv("IMAGE_TAG", "demo-fixed")
    try:
        assert run("build", "--no-check").exit_code == 0
        first = run("push")
        assert first.exit_code == 0, first.output
        _, digest = result_lines(first)

        app = project / "src" / "app.py"
        app.write_text(app.read_text().replace("Hello from dashscale", "Hello again"))
        assert run("build", "--no-check").exit_code == 0
        second = run("push")
        assert second.exit_code == 1
        assert "already holds" in said(second.output) and "other content" in said(second.output)
        assert "IMAGE_TAG" in said(second.output) and "Traceback" not in said(second.output)
        assert registry_digest(registry_now, "demo-fixed") == digest  # untouched
    finally:
        with contextlib.suppress(Exception):
            docker_client.api.remove_image("demo:demo-fixed", noprune=True)


def test_an_image_stored_by_an_attempt_whose_answer_was_lost_is_not_pushed_again(
    project: Path,
    aws: str,
    base_image: str,
    registry_now: Registry,
    engine_refs: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ECR refuses the same tag twice (immutable tags): a retry must notice the image arrived."""
    from dashscale.steps import push as push_step

    use_registry(monkeypatch, engine_refs, registry_now.address)
    real_push_once = push_step._push_once
    calls: list[int] = []

    def lost_answer(*args, **kwargs):
        calls.append(1)
        real_push_once(*args, **kwargs)  # the registry stores the image...
        raise push_step._Failure("use of closed network connection")  # ...the answer is lost

    monkeypatch.setattr(push_step, "_push_once", lost_answer)
    sleeps: list[float] = []
    ctx = Context(config=load_config(), ui=UI(), clock=Clock(sleep=sleeps.append))
    pushed = push(ctx)
    assert len(calls) == 1 and len(sleeps) == 1  # one retry, and it pushed nothing again
    assert pushed.digest == registry_digest(registry_now, pushed.uri.split(":")[-1])

"""Push without an engine: sorting the engine's error lines, backoff, the retry loop, the ECR
repository (against moto's server), and that no credential reaches the output."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from dashscale.aws import Clock
from dashscale.config import load_config
from dashscale.context import Context
from dashscale.errors import PushError
from dashscale.steps.push import (
    Kind,
    _Failure,
    _Session,
    backoff,
    classify,
    explain,
    fetch_login,
    find_pushed,
)
from dashscale.steps.repository import ensure_repository, lifecycle_policy
from dashscale.ui import UI
from tests.support.recording import recording

MOTO_PASSWORD = "123456789012-auth-token"  # what moto's GetAuthorizationToken hands out


def make_ctx(sleeps: list[float] | None = None) -> tuple[Context, io.StringIO]:
    """A context on the current project whose output is captured and whose sleeps are recorded."""
    buffer = io.StringIO()
    ui = UI(
        err=Console(file=buffer, width=300, highlight=False),
        out=Console(file=buffer, width=300, highlight=False),
    )
    sleep = sleeps.append if sleeps is not None else (lambda seconds: None)
    return Context(config=load_config(), ui=ui, clock=Clock(sleep=sleep)), buffer


# --- the engine's own words -------------------------------------------------------------------

# Lines seen from the Docker engine 20.10 on this machine (push stream `errorDetail.message` or
# the API error of /distribution/{ref}/json), then lines users report from ECR pushes.
OBSERVED = [
    (
        'Get "http://127.0.0.1:40557/v2/": write tcp 127.0.0.1:42708->127.0.0.1:40557: write: '
        "connection reset by peer",
        Kind.TRANSIENT,
    ),
    (
        'Get "http://127.0.0.1:47087/v2/": dial tcp 127.0.0.1:47087: connect: connection reset '
        "by peer",
        Kind.TRANSIENT,
    ),
    (
        'Get "http://127.0.0.1:42349/v2/": read tcp 127.0.0.1:49810->127.0.0.1:42349: read: '
        "connection reset by peer",
        Kind.TRANSIENT,
    ),
    ("unauthorized: authentication required", Kind.AUTH),
    (
        'Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused',
        Kind.FATAL,
    ),
    ("tag does not exist: 127.0.0.1:58527/demo-repository:nope", Kind.FATAL),
    ("An image does not exist locally with the tag: 127.0.0.1:1/demo-repository", Kind.FATAL),
]
REPORTED = [
    (
        'Put "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/v2/demo-repository/blobs/'
        'uploads/4f1c": write tcp 192.168.1.20:50064->52.95.1.10:443: use of closed network '
        "connection",
        Kind.TRANSIENT,
    ),
    ("EOF", Kind.TRANSIENT),
    ("unexpected EOF", Kind.TRANSIENT),
    ("write tcp 10.0.0.2:51234->52.95.1.10:443: write: broken pipe", Kind.TRANSIENT),
    ("net/http: TLS handshake timeout", Kind.TRANSIENT),
    (
        'Head "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/x/blobs/sha256:ab": '
        "dial tcp 52.95.1.10:443: i/o timeout",
        Kind.TRANSIENT,
    ),
    ("received unexpected HTTP status: 500 Internal Server Error", Kind.TRANSIENT),
    ("received unexpected HTTP status: 503 Service Unavailable", Kind.TRANSIENT),
    ("toomanyrequests: Rate exceeded", Kind.TRANSIENT),
    ("blob upload unknown: blob upload unknown to registry", Kind.TRANSIENT),
    ("denied: Your authorization token has expired. Reauthenticate and try again.", Kind.AUTH),
    ("no basic auth credentials", Kind.AUTH),
    (
        "name unknown: The repository with name 'demo-repository' does not exist in the registry "
        "with id '123456789012'",
        Kind.FATAL,
    ),
    (
        "tag invalid: The image tag 'latest' already exists in the 'app_service_image' "
        "repository and cannot be overwritten because the repository is immutable.",
        Kind.FATAL,
    ),
    (
        "denied: User: arn:aws:iam::123456789012:user/ci is not authorized to perform: "
        "ecr:InitiateLayerUpload on resource: arn:aws:ecr:us-east-1:123456789012:repository/"
        "demo-repository because no identity-based policy allows the ecr:InitiateLayerUpload "
        "action",
        Kind.FATAL,
    ),
    ("write /var/lib/docker/tmp/docker-export-1234: no space left on device", Kind.FATAL),
]


@pytest.mark.parametrize(("line", "kind"), OBSERVED + REPORTED)
def test_engine_error_lines_are_sorted(line: str, kind: Kind) -> None:
    assert classify(line) is kind


def test_a_port_number_is_not_an_http_status() -> None:
    # 500 and 503 as part of an address must not make a refused connection look transient
    assert classify('Get "http://127.0.0.1:5003/v2/": connection refused') is Kind.FATAL
    assert classify("something nobody has seen before") is Kind.FATAL


def test_fatal_failures_explain_themselves() -> None:
    summary, hint = explain("name unknown: The repository with name 'x' does not exist")
    assert "no repository" in summary and "dashscale push" in hint
    summary, hint = explain("denied: User: arn:aws:iam::1:user/ci is not authorized to perform")
    assert "denied" in summary and "ecr:PutImage" in hint
    summary, hint = explain("no space left on device")
    assert "disk is full" in summary and "free space" in hint
    summary, hint = explain("tag invalid: cannot be overwritten because the tag is immutable")
    assert "immutable" in summary and "IMAGE_TAG" in hint


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    assert backoff(1, lambda low, high: high) == 2.0
    assert backoff(3, lambda low, high: high) == 8.0
    assert backoff(1, lambda low, high: low) == 1.0
    assert backoff(20, lambda low, high: high) == 60.0
    waits = {backoff(2) for _ in range(50)}
    assert all(2.0 <= wait <= 4.0 for wait in waits) and len(waits) > 1


# --- the retry loop (real ECR tokens from moto, scripted failures) ----------------------------


def scripted(*failures: str):
    """An action that fails with the given engine messages, then answers 'done'."""
    seen: list[dict[str, str]] = []

    def action(auth: dict[str, str]) -> str:
        seen.append(auth)
        if len(seen) <= len(failures):
            raise _Failure(failures[len(seen) - 1])
        return "done"

    action.seen = seen  # type: ignore[attr-defined]
    return action


def test_transient_failures_are_retried_with_growing_waits(project: Path, aws: str) -> None:
    sleeps: list[float] = []
    ctx, out = make_ctx(sleeps)
    action = scripted("EOF", "use of closed network connection", "toomanyrequests: Rate exceeded")
    assert _Session(ctx, retries=5).run("pushing x", action) == "done"
    assert len(sleeps) == 3
    assert 1.0 <= sleeps[0] <= 2.0 and 2.0 <= sleeps[1] <= 4.0 and 4.0 <= sleeps[2] <= 8.0
    text = out.getvalue()
    assert "attempt 1 of 6 failed (pushing x): EOF; retrying in" in text
    assert "attempt 3 of 6 failed" in text


def test_retries_run_out_with_a_clear_error(project: Path, aws: str) -> None:
    sleeps: list[float] = []
    ctx, _ = make_ctx(sleeps)
    action = scripted(*["connection reset by peer"] * 10)
    with pytest.raises(PushError) as raised:
        _Session(ctx, retries=2).run("pushing x", action)
    assert len(action.seen) == 3 and len(sleeps) == 2
    assert "failed 3 times" in raised.value.message
    assert "--retries" in raised.value.hint


def test_a_refused_login_fetches_a_fresh_token_once(project: Path, aws: str) -> None:
    sleeps: list[float] = []
    ctx, out = make_ctx(sleeps)
    with recording(aws) as calls:
        action = scripted("denied: Your authorization token has expired. Reauthenticate.")
        assert _Session(ctx, retries=5).run("pushing x", action) == "done"
    assert calls.operations.count("GetAuthorizationToken") == 2
    assert sleeps == []
    assert "fetching a fresh token" in out.getvalue()

    with recording(aws) as calls:
        action = scripted(*["unauthorized: authentication required"] * 3)
        with pytest.raises(PushError) as raised:
            _Session(ctx, retries=5).run("pushing x", action)
    assert len(action.seen) == 2  # the first token, then one fresh one: no retry loop
    assert calls.operations.count("GetAuthorizationToken") == 2
    assert sleeps == []
    assert "refused the login" in raised.value.message


def test_fatal_failures_stop_at_once(project: Path, aws: str) -> None:
    sleeps: list[float] = []
    ctx, _ = make_ctx(sleeps)
    action = scripted("name unknown: The repository with name 'demo-repository' does not exist")
    with pytest.raises(PushError) as raised:
        _Session(ctx, retries=5).run("pushing x", action)
    assert len(action.seen) == 1 and sleeps == []
    assert raised.value.message.startswith("the registry has no repository of that name")


def test_credentials_never_reach_the_output(project: Path, aws: str) -> None:
    ctx, out = make_ctx([])
    login = fetch_login(ctx)
    assert login.password == MOTO_PASSWORD and MOTO_PASSWORD not in repr(login)
    assert login.address == "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    # even when an engine message quotes the password, it is masked
    action = scripted(f"EOF after sending {MOTO_PASSWORD}", f"denied: {MOTO_PASSWORD} refused")
    with pytest.raises(PushError) as raised:
        _Session(ctx, retries=5).run("pushing x", action)
    assert MOTO_PASSWORD not in out.getvalue() + str(raised.value)
    assert "***" in out.getvalue()


def test_dashscale_registry_overrides_the_token_address(
    project: Path, aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHSCALE_REGISTRY", "127.0.0.1:5999")
    ctx, _ = make_ctx()
    login = fetch_login(ctx)
    assert login.address == "127.0.0.1:5999"
    assert login.auth_config()["serveraddress"] == "127.0.0.1:5999"


# --- the repository ---------------------------------------------------------------------------


def repository_settings(boto, name: str = "demo-repository") -> dict:
    ecr = boto("ecr")
    repo = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
    try:
        policy = json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])
    except ecr.exceptions.LifecyclePolicyNotFoundException:
        policy = None
    return {
        "scan": repo["imageScanningConfiguration"]["scanOnPush"],
        "mutability": repo["imageTagMutability"],
        "tags": tags,
        "policy": policy,
    }


def test_repository_is_created_configured_and_then_left_alone(
    project: Path, aws: str, boto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECR_KEEP_IMAGES", "7")
    ctx, out = make_ctx()
    ensure_repository(ctx)
    settings = repository_settings(boto)
    assert settings["scan"] is True and settings["mutability"] == "IMMUTABLE"
    assert {"Key": "dashscale:app", "Value": "demo"} in settings["tags"]
    assert settings["policy"] == lifecycle_policy(7)
    assert settings["policy"]["rules"][0]["selection"]["countNumber"] == 7
    assert "created" in out.getvalue()

    with recording(aws) as calls:
        ensure_repository(make_ctx()[0])
    assert calls.changing == []


def test_own_repository_that_drifted_is_put_back(
    project: Path, aws: str, boto, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_repository(make_ctx()[0])
    ecr = boto("ecr")
    ecr.put_image_tag_mutability(repositoryName="demo-repository", imageTagMutability="MUTABLE")
    monkeypatch.setenv("ECR_KEEP_IMAGES", "12")  # the user changed the documented setting
    ctx, out = make_ctx()
    ensure_repository(ctx)
    settings = repository_settings(boto)
    assert settings["mutability"] == "IMMUTABLE"
    assert settings["policy"] == lifecycle_policy(12)
    assert "updated" in out.getvalue() and "tags are mutable" in out.getvalue()


def test_a_repository_dashscale_did_not_create_is_used_but_not_changed(
    project: Path, aws: str, boto
) -> None:
    boto("ecr").create_repository(repositoryName="demo-repository")  # MUTABLE, no scan, no tag
    before = repository_settings(boto)
    ctx, out = make_ctx()
    with recording(aws) as calls:
        ensure_repository(ctx)
    assert calls.changing == []
    assert repository_settings(boto) == before
    text = out.getvalue()
    assert "not created by dashscale: used as it is" in text
    assert "tags are mutable" in text and "Tag it dashscale:app=demo" in text


def test_find_pushed_without_a_repository_is_none(project: Path, aws: str) -> None:
    ctx, _ = make_ctx()
    with recording(aws) as calls:
        assert find_pushed(ctx) is None
    assert calls.changing == []


def test_push_command_offers_its_options(run) -> None:
    result = run("push", "--help")
    assert result.exit_code == 0
    assert "--retries" in result.output and "--no-check" in result.output
    assert "--env-file" in result.output

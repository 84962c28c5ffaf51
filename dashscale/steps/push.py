"""`dashscale push`: the app's image into its ECR repository, retrying the flaky pushes.

The guide's push script "must be executed again whenever it does not complete"; here that retry
is dashscale's job. The Docker engine reports push failures inside its stream, so every line is
checked and a push counts as done only when the final digest arrives. Failures are sorted into
transient ones (retried with exponential backoff and jitter; the engine skips layers the
registry already has), authentication ones (a fresh ECR token, once) and fatal ones (stop now).

Credentials travel only with each engine request (`auth_config`): nothing is written to the
user's Docker configuration, and the token never appears in output or errors.
"""

from __future__ import annotations

import base64
import enum
import random
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dashscale.aws import Cancelled, translated
from dashscale.context import Context
from dashscale.errors import DockerError, PushError
from dashscale.steps import build
from dashscale.steps.repository import describe_repository, ensure_repository

T = TypeVar("T")

BACKOFF_BASE = 2.0  # seconds before the first retry (before jitter)
BACKOFF_CAP = 60.0  # longest wait between two attempts
_ARCHITECTURES = {"amd64": "X86_64", "arm64": "ARM64"}


@dataclass(frozen=True)
class PushedImage:
    uri: str  # REGISTRY/APP-repository:TAG
    digest: str  # sha256:...
    architecture: str  # ECS name: X86_64 or ARM64 (from build.Image.architecture)


# --- sorting failures -------------------------------------------------------------------------


class Kind(enum.Enum):
    TRANSIENT = "transient"  # retry the whole push after a backoff
    AUTH = "auth"  # fetch a fresh token, then retry
    FATAL = "fatal"  # stop at once


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    kind: Kind
    summary: str = ""
    hint: str = ""


def _rule(regex: str, kind: Kind, summary: str = "", hint: str = "") -> _Rule:
    return _Rule(re.compile(regex, re.IGNORECASE), kind, summary, hint)


_PERMISSIONS = (
    "ecr:BatchCheckLayerAvailability, ecr:InitiateLayerUpload, ecr:UploadLayerPart, "
    "ecr:CompleteLayerUpload and ecr:PutImage"
)

# First match wins: the expired-token answer starts with "denied:" like a real refusal.
RULES: tuple[_Rule, ...] = (
    _rule(r"authorization token has expired|token has expired", Kind.AUTH),
    _rule(r"unauthorized|authentication required|no basic auth credentials|\b401\b", Kind.AUTH),
    _rule(
        r"name unknown|repository with name .* does not exist|repository does not exist",
        Kind.FATAL,
        "the registry has no repository of that name",
        "it was deleted, or DASHSCALE_REGISTRY names another registry; re-run `dashscale push` "
        "to create it",
    ),
    _rule(
        r"tag invalid|cannot be overwritten|already exists in the .* repository",
        Kind.FATAL,
        "the registry refused to overwrite the tag (tags are immutable)",
        "change the app or unset IMAGE_TAG so a new tag is derived from the content",
    ),
    _rule(
        r"\bdenied\b|not authorized to perform|access to the resource is denied|forbidden|\b403\b",
        Kind.FATAL,
        "the registry denied the push",
        f"give your IAM user or role {_PERMISSIONS} on the repository",
    ),
    _rule(
        r"no space left on device|disk quota exceeded",
        Kind.FATAL,
        "the disk is full",
        "free space for Docker (for example `docker image prune`), then re-run `dashscale push`",
    ),
    _rule(
        r"connection refused|no such host|no route to host|server gave HTTP response to HTTPS",
        Kind.FATAL,
        "the registry cannot be reached",
        "check DASHSCALE_REGISTRY (unset it to push to ECR) and your network",
    ),
    _rule(
        r"does not exist locally|tag does not exist|no such image",
        Kind.FATAL,
        "the image to push is missing from the Docker engine",
        "run `dashscale build`, then push again",
    ),
    _rule(
        r"use of closed network connection|\bEOF\b|connection reset|broken pipe|"
        r"timeout|timed out|deadline exceeded|connection aborted|server misbehaving|"
        r"temporary failure|blob upload unknown|blob upload invalid|GOAWAY|"
        r"too many requests|toomanyrequests|rate exceeded|\b429\b|"
        r"(status|code|HTTP)[^0-9]{0,20}5[0-9][0-9]\b|internal server error|bad gateway|"
        r"service unavailable|gateway time-?out",
        Kind.TRANSIENT,
    ),
)


def classify(message: str) -> Kind:
    """The kind of a failure from the engine's own words (push stream lines, API errors)."""
    for rule in RULES:
        if rule.pattern.search(message):
            return rule.kind
    return Kind.FATAL  # unknown: retrying a deterministic error only wastes the user's time


def explain(message: str) -> tuple[str, str]:
    """A summary and a hint for a fatal failure."""
    for rule in RULES:
        if rule.pattern.search(message) and rule.summary:
            return rule.summary, rule.hint
    return (
        "the push failed",
        "fix what the registry names above; if it looks like a network problem, re-run "
        "`dashscale push` (uploaded layers are kept)",
    )


class _Failure(Exception):
    """One failed attempt, already sorted."""

    def __init__(self, message: str, kind: Kind | None = None) -> None:
        super().__init__(message)
        self.message = message.strip()
        self.kind = kind or classify(self.message)


def backoff(failures: int, rng: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds to wait after the n-th failure: exponential, capped, with jitter (50-100 %)."""
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (failures - 1)) * rng(0.5, 1.0)


# --- the registry login -----------------------------------------------------------------------


@dataclass
class RegistryLogin:
    """An ECR token and the registry address; the password is never shown."""

    address: str
    username: str
    password: str = field(repr=False)
    fetched_at: float = 0.0

    def auth_config(self) -> dict[str, str]:
        return {
            "username": self.username,
            "password": self.password,
            "serveraddress": self.address,
        }


def fetch_login(ctx: Context) -> RegistryLogin:
    """Asks ECR for a token (valid 12 hours); DASHSCALE_REGISTRY overrides the address."""
    with translated("getting a login token for ECR"):
        data = ctx.client("ecr").get_authorization_token()["authorizationData"][0]
    try:
        username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise PushError(
            "ECR returned a login token dashscale cannot read",
            "re-run; if it persists, check AWS_ENDPOINT_URL",
        ) from None
    endpoint = data.get("proxyEndpoint", "")
    address = ctx.config.dashscale_registry or urllib.parse.urlparse(endpoint).netloc or endpoint
    return RegistryLogin(address, username or "AWS", password, time.monotonic())


class _Redactor:
    """Removes every credential of the run from a text before it reaches output or an error."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, login: RegistryLogin) -> None:
        if login.password:
            self._secrets.add(login.password)
            self._secrets.add(
                base64.b64encode(f"{login.username}:{login.password}".encode()).decode()
            )

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


# --- talking to the registry through the engine -----------------------------------------------


class _Session:
    """The login, the redactor and the retry loop shared by every registry request of a run."""

    def __init__(self, ctx: Context, retries: int) -> None:
        self.ctx = ctx
        self.retries = retries
        self.redact = _Redactor()
        self.login = self._fresh_login()
        self.refreshed = False

    def _fresh_login(self) -> RegistryLogin:
        login = fetch_login(self.ctx)
        self.redact.add(login)
        return login

    @property
    def target(self) -> str:
        return f"{self.login.address}/{self.ctx.names.repository}"

    def run(self, what: str, action: Callable[[dict[str, str]], T]) -> T:
        """Runs `action(auth_config)` until it succeeds, retrying what is worth retrying."""
        failures = 0
        attempts = self.retries + 1
        while True:
            try:
                return action(self.login.auth_config())
            except _Failure as failure:
                message = self.redact(failure.message)
                if failure.kind is Kind.AUTH and not self.refreshed:
                    self.refreshed = True
                    self.ctx.ui.warn(
                        f"the registry refused the login ({message}); fetching a fresh token"
                    )
                    self.login = self._fresh_login()
                    continue
                if failure.kind is Kind.AUTH:
                    raise PushError(
                        f"the registry {self.login.address} refused the login while {what}: "
                        f"{message}",
                        "check that your AWS credentials may use ECR (ecr:GetAuthorizationToken "
                        "and push permissions); unset DASHSCALE_REGISTRY unless it is an "
                        "ECR-compatible registry that accepts ECR tokens",
                    ) from None
                if failure.kind is Kind.FATAL:
                    summary, hint = explain(failure.message)
                    raise PushError(f"{summary} while {what}: {message}", hint) from None
                failures += 1
                if failures >= attempts:
                    raise PushError(
                        f"{what} failed {failures} times; the last error: {message}",
                        "check your network connection, then re-run `dashscale push` (layers "
                        "already uploaded are not sent again), or raise --retries",
                    ) from None
                delay = backoff(failures)
                self.ctx.ui.warn(
                    f"attempt {failures} of {attempts} failed ({what}): {message}; "
                    f"retrying in {delay:.1f} s"
                )
                self.ctx.clock.sleep(delay)


def _api_failure(error: Exception) -> _Failure:
    explanation = getattr(error, "explanation", None)
    text = str(explanation or error)
    return _Failure(text if text.strip() else type(error).__name__)


@dataclass(frozen=True)
class _Remote:
    digest: str
    architecture: str | None


def _remote_image(ctx: Context, ref: str, auth: dict[str, str]) -> _Remote | None:
    """The manifest digest the registry holds for `ref`, read by the engine; None when absent."""
    import docker
    import requests

    try:
        answer = ctx.docker.api.inspect_distribution(ref, auth_config=auth)
    except docker.errors.NotFound:
        return None  # manifest unknown (or, on ECR, no repository yet)
    except docker.errors.APIError as error:
        raise _api_failure(error) from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
        raise _Failure(f"the Docker engine connection failed: {error}", Kind.TRANSIENT) from None
    digest = answer.get("Descriptor", {}).get("digest")
    if not digest:
        return None
    platforms = answer.get("Platforms") or []
    arch = _ARCHITECTURES.get(platforms[0].get("architecture", "")) if platforms else None
    return _Remote(digest, arch)


@dataclass
class _Layers:
    uploaded: set[str] = field(default_factory=set)
    existing: set[str] = field(default_factory=set)


_DIGEST_LINE = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def _push_once(ctx: Context, target: str, tag: str, auth: dict[str, str], layers: _Layers) -> str:
    """One `docker push`; returns the manifest digest. Raises _Failure."""
    import docker
    import requests

    digest = None
    with ctx.ui.transfers(f"pushing to {target}:{tag}") as progress:
        tasks: dict[str, Any] = {}
        try:
            stream = ctx.docker.api.push(
                target, tag=tag, stream=True, decode=True, auth_config=auth
            )
            for line in stream:
                if ctx.clock.cancelled.is_set():  # another piece of `up` failed, or Ctrl-C
                    raise Cancelled()
                if "error" in line or "errorDetail" in line:
                    detail = line.get("errorDetail") or {}
                    raise _Failure(str(detail.get("message") or line.get("error") or line))
                aux = line.get("aux") or {}
                if aux.get("Digest"):
                    digest = str(aux["Digest"])
                status = str(line.get("status", ""))
                layer = str(line.get("id", ""))
                match = _DIGEST_LINE.search(status)
                if match:
                    digest = digest or match.group(1)
                if not layer:
                    continue
                if status == "Pushing":
                    done = int((line.get("progressDetail") or {}).get("current", 0))
                    total = int((line.get("progressDetail") or {}).get("total", 0))
                    if layer not in tasks:
                        tasks[layer] = progress.add_task(layer, total=max(total, done) or None)
                    progress.update(tasks[layer], completed=done, total=max(total, done) or None)
                elif status == "Pushed":
                    layers.uploaded.add(layer)
                    ctx.ui.detail(f"layer {layer} uploaded")
                elif status == "Layer already exists" or status.startswith("Mounted from"):
                    layers.existing.add(layer)
                    ctx.ui.detail(f"layer {layer} already in the registry")
                elif status.startswith("Retrying in"):
                    ctx.ui.detail(f"layer {layer}: the engine is {status.lower()}")
        except docker.errors.APIError as error:
            raise _api_failure(error) from None
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.Timeout,
        ) as error:
            message = f"the Docker engine connection failed: {error}"
            raise _Failure(message, Kind.TRANSIENT) from None
    if digest is None:
        raise _Failure("the engine's push stream ended before the final digest", Kind.TRANSIENT)
    return digest


def _pushed_from_here(ctx: Context, image_id: str, target: str, digest: str) -> bool:
    """True when this engine pushed (or pulled) exactly that manifest for the image."""
    attrs = ctx.docker.images.get(image_id).attrs
    return f"{target}@{digest}" in (attrs.get("RepoDigests") or [])


def _uri(target: str, tag: str) -> str:
    return f"{target}:{tag}"


# --- the step ---------------------------------------------------------------------------------


def find_pushed(
    ctx: Context, retries: int = 5, repository: dict[str, Any] | None = None
) -> PushedImage | None:
    """The current content's image if the registry already holds its tag; no build, no push.
    `repository`: its description when the caller has read it already."""
    ecr = ctx.client("ecr")
    if repository is None:
        with translated(f"looking up the ECR repository {ctx.names.repository}"):
            repository = describe_repository(ecr, ctx.names.repository)
    if repository is None:
        return None
    _, tag = build.current_image(ctx)
    if not ctx.config.dashscale_registry:
        # ECR itself is the registry: its API answers, no Docker engine needed.
        with translated(f"reading the images of {ctx.names.repository}"):
            try:
                found = ecr.describe_images(
                    repositoryName=ctx.names.repository, imageIds=[{"imageTag": tag}]
                )["imageDetails"]
            except ecr.exceptions.ImageNotFoundException:
                return None
        uri = f"{repository['repositoryUri']}:{tag}"
        return PushedImage(uri, str(found[0]["imageDigest"]), ctx.config.architecture)
    session = _Session(ctx, retries)
    remote = session.run(
        "reading the registry",
        lambda auth: _remote_image(ctx, _uri(session.target, tag), auth),
    )
    if remote is None:
        return None
    architecture = remote.architecture or ctx.config.architecture
    return PushedImage(_uri(session.target, tag), remote.digest, architecture)


def push(ctx: Context, retries: int = 5, check: bool = False, verbose: bool = False) -> PushedImage:
    """Ensures the repository and the image, then pushes it, retrying transient failures.

    `check` smoke-checks the image when it has to be built first.
    """
    ctx.ui.step(f"Pushing {ctx.names.app}'s image to ECR")
    ensure_repository(ctx)
    _, tag = build.current_image(ctx)
    session = _Session(ctx, retries)
    target = session.target
    uri = _uri(target, tag)
    local = build.find_local_image(ctx, tag)
    remote = session.run("reading the registry", lambda auth: _remote_image(ctx, uri, auth))
    if remote is not None:
        return _already_pushed(ctx, uri, target, local, remote)
    if local is None:
        local = build.build(ctx, verbose=verbose)
        if check:
            build.smoke_check(ctx, local)
    else:
        ctx.ui.resource("image", local.ref, "found")
    _tag_for_registry(ctx, local, target, tag)
    digest = _upload(ctx, session, target, tag)
    return PushedImage(uri, digest, local.architecture)


def _already_pushed(
    ctx: Context, uri: str, target: str, local: build.Image | None, remote: _Remote
) -> PushedImage:
    """The registry holds the tag already: nothing to upload, unless IMAGE_TAG names other
    content than the local image's (an immutable tag cannot take it)."""
    if local is not None and not _pushed_from_here(ctx, local.id, target, remote.digest):
        if ctx.config.image_tag:
            raise PushError(
                f"the registry already holds {uri} with other content ({remote.digest}); "
                "tags are immutable, so this image cannot be pushed under the same tag",
                "set another IMAGE_TAG, or unset it so the tag follows the content",
            )
        note = "built elsewhere from the same content; nothing uploaded"
    else:
        note = "nothing uploaded"
    ctx.ui.resource("image", uri, "found", f"already in the registry; {note}")
    architecture = local.architecture if local else ctx.config.architecture
    return PushedImage(uri, remote.digest, remote.architecture or architecture)


def _tag_for_registry(ctx: Context, local: build.Image, target: str, tag: str) -> None:
    """The engine pushes by name: the local image gets the registry's name too."""
    try:
        ctx.docker.api.tag(local.id, target, tag)
    except Exception as error:
        raise DockerError(
            f"could not tag the image as {_uri(target, tag)}: {_api_failure(error).message}",
            "check that Docker is running, then re-run `dashscale push`",
        ) from None


def _upload(ctx: Context, session: _Session, target: str, tag: str) -> str:
    """Pushes the tagged image with the session's retries; the manifest digest."""
    uri = _uri(target, tag)
    layers = _Layers()
    started = time.monotonic()
    attempts = 0

    def push_attempt(auth: dict[str, str]) -> str:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            # The tag was absent when we started: if it is there now, an earlier attempt stored
            # the image and only its answer was lost. Pushing again would hit the immutable tag.
            stored = _remote_image(ctx, uri, auth)
            if stored is not None:
                ctx.ui.detail(f"{uri} arrived with an earlier attempt; not pushing it again")
                return stored.digest
        return _push_once(ctx, target, tag, auth, layers)

    digest = session.run(f"pushing {uri}", push_attempt)
    uploaded = layers.uploaded
    existing = layers.existing - uploaded
    ctx.ui.resource(
        "image",
        uri,
        "created",
        f"{len(uploaded)} layers uploaded, {len(existing)} already there, "
        f"{time.monotonic() - started:.1f} s",
    )
    ctx.ui.info(f"digest {digest}")
    return digest

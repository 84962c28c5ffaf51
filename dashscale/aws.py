"""AWS access: one boto3 Session per run, clients with standard retries, a bounded wait helper.

No endpoint handling here on purpose: botocore honours AWS_ENDPOINT_URL and
AWS_ENDPOINT_URL_<SERVICE>, which is how the tests point everything at moto's server.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import boto3
import botocore.exceptions
from botocore.config import Config as BotoConfig

from dashscale.errors import AwsError, DashscaleError, NotOwnedError, WaitTimeout
from dashscale.names import TAG_KEY, Names

T = TypeVar("T")

# Standard mode backs off with jitter and retries throttling, 5xx and dropped connections.
RETRY_CONFIG = BotoConfig(
    retries={"mode": "standard", "max_attempts": 10},
    connect_timeout=10,
    read_timeout=60,
)

CREDENTIALS_HINT = (
    "set AWS_PROFILE in .env to a profile from ~/.aws, run `aws configure`, or export "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)


# The IAM action every command makes first: whose credentials these are (the account). AWS
# lets every identity make it, so no policy needs to grant it (dashscale/policy.py).
IDENTITY_CALLS = ("sts:GetCallerIdentity",)
NEEDS_NO_PERMISSION = frozenset(IDENTITY_CALLS)


class Aws:
    """The run's boto3 session and its clients, created once each."""

    def __init__(self, region: str, profile: str | None = None, read_only: bool = False) -> None:
        try:
            self.session = boto3.Session(profile_name=profile, region_name=region)
        except botocore.exceptions.ProfileNotFound:
            raise AwsError(
                f"AWS_PROFILE={profile!r} is not a profile in your AWS configuration",
                "run `aws configure list-profiles` to see the profiles you have",
            ) from None
        self.region = region
        self.read_only = read_only
        self._clients: dict[str, Any] = {}
        self._account: str | None = None
        self._lock = threading.Lock()

    def client(self, service: str, region: str | None = None) -> Any:
        """A client of the run's session; `region` only for global services pinned to one
        region (Route 53 Domains lives in us-east-1)."""
        key = f"{service}@{region or self.region}"
        with self._lock:  # clients are thread-safe; creating them from one session is not
            if key not in self._clients:
                client = self.session.client(
                    service, region_name=region or self.region, config=RETRY_CONFIG
                )
                if self.read_only:
                    refuse_changes(client)
                name_denials(client)
                # botocore builds a client's exception classes on first use, without a lock:
                # two threads touching `client.exceptions` first can get two different sets, and
                # an `except client.exceptions.X` then misses the X the other set raised. Built
                # here, under our lock, every thread shares one set.
                _ = client.exceptions
                self._clients[key] = client
            return self._clients[key]

    @property
    def account_id(self) -> str:
        if self._account is None:
            with translated("reading the AWS account of your credentials"):
                self._account = self.client("sts").get_caller_identity()["Account"]
        return self._account

    def check_account(self, expected: str | None) -> None:
        """Refuses to go on when AWS_ACCOUNT_ID is set and the credentials are for another."""
        if not expected:
            return
        actual = self.account_id
        if actual != expected:
            raise AwsError(
                f"your AWS credentials are for account {actual}, but AWS_ACCOUNT_ID is {expected}",
                "switch AWS_PROFILE or credentials, or correct AWS_ACCOUNT_ID in .env",
            )


# Operations that only read (Route 53's reads are all List... and Get...; IAM's policy simulator
# evaluates policies and changes nothing).
READ_PREFIXES = ("Describe", "List", "Get", "BatchGet", "Check", "Filter", "Simulate")


class ChangeRefused(DashscaleError):
    """A dry run reached a changing AWS call (the plan, dashscale/model.py, should never apply)."""


def is_read(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES)


def refuse_changes(client: Any) -> None:
    """The dry run's safety net: the client raises before sending any operation that is not a
    read, so a changing call site the plan missed fails loudly instead of changing AWS."""
    service = client.meta.service_model.service_name

    def guard(model: Any, **_: Any) -> None:
        if not is_read(model.name):
            raise ChangeRefused(
                f"internal error: the dry run was about to call {service} {model.name}; it was "
                "stopped before anything changed",
                "report this; run without --dry-run to deploy",
            )

    client.meta.events.register("before-call", guard)  # each client has its own events


# --- "not allowed to X on Y" -------------------------------------------------------------------

POLICY_HINT = (
    "run `dashscale policy` to print the IAM policy this app needs, give it to your IAM user or "
    "role (or ask whoever manages your AWS access), then re-run; finished work is kept"
)
# Answers that mean "your identity may not do this" (not "your credentials are wrong").
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "NotAuthorized",
    "NotAuthorizedException",
    "AuthorizationError",
}
_CREDENTIALS = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "AuthFailure",
    "RequestExpired",
    "IncompleteSignature",
    "MissingAuthenticationToken",
}
# The request fields that name what a call acts on, most telling first.
_NAMING = (
    "RoleName",
    "repositoryName",
    "logGroupName",
    "service",
    "services",
    "cluster",
    "clusters",
    "taskDefinition",
    "family",
    "familyPrefix",
    "ListenerArn",
    "TargetGroupArn",
    "LoadBalancerArn",
    "ResourceArns",
    "ListenerArns",
    "TargetGroupArns",
    "Names",
    "CertificateArn",
    "HostedZoneId",
    "Id",
    "ResourceId",
    "UserPoolId",
    "ClientId",
    "Domain",
    "DomainName",
    "GroupId",
    "GroupIds",
    "GroupName",
    "Name",
    "Path",
    "SecretId",
    "PolicyArn",
    "ResourceARN",
    "resourceArn",
    "repositoryNames",
    "logGroupNamePrefix",
    "logStreamName",
)


class NotAllowed(AwsError):
    """AWS refused a call for want of a permission: names the IAM action and what it was on."""

    def __init__(self, action: str, resource: str, code: str = "") -> None:
        said = f" ({code})" if code else ""  # AWS's own word for it, when botocore read one
        super().__init__(f"not allowed to {action} on {resource}{said}", POLICY_HINT)
        self.action = action
        self.resource = resource


def iam_action(model: Any) -> str:
    """The IAM action of an operation: IAM's service prefix is the signing name (elbv2 signs
    as elasticloadbalancing; see IAM_PREFIXES for the exceptions), the action the operation's
    name."""
    service = model.service_model
    prefix = service.signing_name or service.endpoint_prefix
    return f"{IAM_PREFIXES.get(prefix, prefix)}:{model.name}"


# Where IAM's service prefix is not the signing name: CloudWatch signs as monitoring.
IAM_PREFIXES = {"monitoring": "cloudwatch"}


def called_on(params: dict[str, Any]) -> str:
    """What a call acted on, from the request dashscale sent: "*" when nothing names it."""
    for key in _NAMING:
        value = params.get(key)
        if isinstance(value, (list, tuple)) and value:
            return ", ".join(str(v) for v in value)
        if isinstance(value, str) and value:
            return value
    return "*"


def is_denial(status: int, code: str, body: bytes = b"") -> bool:
    """A refusal for want of permission. Several services answer a denial with a body their
    protocol does not use, which botocore leaves unparsed: a bare 403 counts too, unless its
    body names a credentials problem."""
    if code in _CREDENTIALS or any(c.encode() in body for c in _CREDENTIALS):
        return False
    return code in _DENIED or (status == 403 and (not code or code.isdigit() or "Denied" in code))


def name_denials(client: Any) -> None:
    """Makes a denied call raise NotAllowed naming its IAM action and the resource from the
    request it sent, whatever the body of AWS's answer."""

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["dashscale_params"] = dict(params)

    def check(http_response: Any, parsed: dict[str, Any], model: Any, context: Any, **_: Any):
        status = int(getattr(http_response, "status_code", 0) or 0)
        code = str((parsed or {}).get("Error", {}).get("Code", ""))
        body = bytes(getattr(http_response, "content", b"") or b"")
        if status >= 400 and is_denial(status, code, body):
            said = code if code and not code.isdigit() else ""
            raise NotAllowed(
                iam_action(model), called_on(context.get("dashscale_params", {})), said
            )

    client.meta.events.register("before-parameter-build", remember)
    client.meta.events.register("after-call", check)


def error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def already_exists(error: botocore.exceptions.ClientError, *codes: str) -> bool:
    """True for the "already exists" answers a retried create gets after a lost response."""
    return error_code(error) in codes


def create_or_find(
    create: Callable[[], Any], duplicate: str, find: Callable[[], T | None], what: str
) -> T:
    """Creates, then returns what `find` finds. A create retried after its first answer was lost
    gets `duplicate` ("already exists"): that counts as made."""
    try:
        create()
    except botocore.exceptions.ClientError as error:
        if not already_exists(error, duplicate):
            raise
    found = find()
    if found is None:
        raise AwsError(
            f"{what} was created but cannot be found", "re-run the same command in a minute"
        )
    return found


def require_owned(names: Names, kind: str, name: str, tags: object) -> None:
    """Stops when a resource under one of our names is not tagged as this app's: never take
    over someone else's resource silently."""
    if not names.owns(tags):  # type: ignore[arg-type]
        raise NotOwnedError(
            f"{kind} {name} exists but is not tagged {TAG_KEY}={names.app}, so it is not this "
            "app's",
            f"choose another APP_NAME, or if it is yours, tag it {TAG_KEY}={names.app}",
        )


PERMISSION_HINT = (
    "give your IAM user or role the permission AWS names above, then re-run; finished work is kept"
)

_ACTIONABLE: dict[str, tuple[str, str]] = {
    "AccessDenied": ("AWS denied the request", PERMISSION_HINT),
    "AccessDeniedException": (
        "AWS denied the request",
        PERMISSION_HINT,
    ),
    "UnauthorizedOperation": (
        "AWS denied the request",
        PERMISSION_HINT,
    ),
    "ExpiredToken": ("your AWS session has expired", "log in again (aws sso login) and re-run"),
    "ExpiredTokenException": (
        "your AWS session has expired",
        "log in again (aws sso login) and re-run",
    ),
    "InvalidClientTokenId": ("AWS does not recognise your access key", CREDENTIALS_HINT),
    "UnrecognizedClientException": ("AWS does not recognise your access key", CREDENTIALS_HINT),
    "SignatureDoesNotMatch": (
        "your AWS secret key does not match the access key",
        CREDENTIALS_HINT,
    ),
    "LimitExceededException": (
        "an AWS quota is reached",
        "delete unused resources or ask AWS for a higher quota",
    ),
    "TooManyLoadBalancers": (
        "the load balancer quota of this account is reached",
        "delete unused load balancers or request a higher quota",
    ),
    "AuthFailure": ("AWS does not accept your credentials", CREDENTIALS_HINT),
    "RequestExpired": (
        "AWS refused the request as sent too late or too early",
        "your computer's clock is off: set it to the right time, then re-run",
    ),
    "OptInRequired": (
        "your account is not enabled for this in the region",
        "enable AWS_REGION for your account (or choose an enabled region), then re-run",
    ),
    "VcpuLimitExceeded": (
        "the vCPU quota of this account is reached",
        "lower DESIRED_COUNT or TASK_CPU, or request a higher Fargate quota",
    ),
}


# Answers that say AWS failed or was busy (after botocore's retries): time is the only fix.
_AWS_SIDE = {
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
}
_IN_USE = {
    "ResourceInUse",
    "ResourceInUseException",
    "DependencyViolation",
    "ConcurrentModificationException",
    "ConflictException",
    "OperationAbortedException",
}
_BAD_VALUE = {
    "ValidationError",
    "ValidationException",
    "InvalidParameterValue",
    "InvalidParameterException",
    "InvalidParameterCombination",
    "InvalidInput",
    "InvalidRequest",
}


REPORT = "otherwise re-run with --debug and report it"
AWS_SIDE_HINT = (
    "AWS failed or was busy, also on retries; nothing to fix on your side: re-run in a few "
    "minutes (finished work is kept)"
)
IN_USE_HINT = (
    "something else still uses or changes it right now: wait a minute, then re-run (finished "
    "work is kept)"
)
NOT_FOUND_HINT = (
    "when it was deleted while this ran (another run, or by hand), re-run and dashscale makes "
    f"it again; {REPORT}"
)
BAD_VALUE_HINT = (
    f"when the message names one of your settings, correct it in .env and re-run; {REPORT}"
)
OTHER_HINT = (
    "when the message names something of yours (a setting in .env, a permission, a limit of "
    f"your account), change it and re-run; {REPORT}"
)


def generic_hint(error: botocore.exceptions.ClientError) -> str:
    """A hint for an AWS error without one of its own that fits the kind of answer: most of
    them leave the user nothing to fix."""
    code = error_code(error)
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in _AWS_SIDE or status >= 500:
        return AWS_SIDE_HINT
    if code in _IN_USE:
        return IN_USE_HINT
    if code.endswith(("NotFound", "NotFoundException")) or code.startswith("NoSuch"):
        return NOT_FOUND_HINT
    if code in _BAD_VALUE:
        return BAD_VALUE_HINT
    return OTHER_HINT


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Turns AWS and credential errors into one clear DashscaleError naming what we were doing."""
    try:
        yield
    except DashscaleError:
        raise
    except (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError):
        raise AwsError("no AWS credentials found", CREDENTIALS_HINT) from None
    except (
        botocore.exceptions.TokenRetrievalError,
        botocore.exceptions.SSOError,
        botocore.exceptions.CredentialRetrievalError,
    ):
        raise AwsError("your AWS login has expired", "run `aws sso login` and re-run") from None
    except botocore.exceptions.ClientError as error:
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", "") or code
        summary, hint = _ACTIONABLE.get(code, ("AWS refused the request", generic_hint(error)))
        raise AwsError(f"{summary} while {action}: {code}: {message}", hint) from error
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectionClosedError,
        botocore.exceptions.ReadTimeoutError,
        botocore.exceptions.ConnectTimeoutError,
    ) as error:
        raise AwsError(
            f"could not reach AWS while {action}: {error}",
            "check your network connection and re-run; finished work is kept",
        ) from error


# A poll that fails on these is "not yet", not the end of the wait.
_NETWORK_ERRORS = (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)


class Cancelled(Exception):
    """Raised inside a step's wait when the run is being stopped (Ctrl-C, or a failure in a
    step running alongside)."""


def wall_time() -> float:
    """Seconds since the epoch: "now" for office hours and metrics (a test replaces it)."""
    return time.time()


class Clock:
    """Time and sleep, injectable so tests never wait in real time.

    Every wait of every step sleeps here, so setting `cancelled` stops all of them at once: that
    is how steps running side by side stop within a second of a failure or Ctrl-C.
    """

    def __init__(
        self,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        wall: Callable[[], float] | None = None,
    ) -> None:
        self.now = now
        self._wait = sleep
        self._wall = wall
        self.cancelled = threading.Event()

    def wall(self) -> float:
        """The time of day, as seconds since the epoch (`now` is only for measuring waits)."""
        return self._wall() if self._wall is not None else wall_time()

    def sleep(self, seconds: float) -> None:
        if self.cancelled.is_set():
            raise Cancelled()
        if self._wait is None:
            if self.cancelled.wait(seconds):
                raise Cancelled()
        else:
            self._wait(seconds)


def wait_until(
    check: Callable[[], T | None],
    *,
    what: str,
    timeout: float,
    clock: Clock,
    interval: float = 5.0,
    max_interval: float | None = None,
    on_poll: Callable[[float], None] | None = None,
    hint: str = "re-run the same command to keep waiting; finished work is kept",
) -> T:
    """Calls `check` until it returns something other than None, at most `timeout` seconds.

    Polls every `interval` seconds, growing by half each time up to `max_interval` when given:
    quick answers are seen quickly, long waits cost few calls.

    A poll that fails on a transient network error counts as "not yet" rather than ending the wait.
    """
    start = clock.now()
    while True:
        try:
            result = check()
        except _NETWORK_ERRORS:
            result = None
        except AwsError as error:  # a check that translates its errors: same rule
            if not isinstance(error.__cause__, _NETWORK_ERRORS):
                raise
            result = None
        if result is not None:
            return result
        elapsed = clock.now() - start
        if on_poll is not None:
            on_poll(elapsed)
        if elapsed >= timeout:
            raise WaitTimeout(f"timed out after {int(elapsed)} s waiting for {what}", hint)
        clock.sleep(min(interval, max(timeout - elapsed, 0.1)))
        if max_interval is not None:
            interval = min(interval * 1.5, max_interval)

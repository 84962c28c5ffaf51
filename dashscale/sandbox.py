"""`--sandbox`: the whole flow with no AWS account, on an AWS emulator dashscale starts itself.

moto's server (the optional extra `dashscale[sandbox]`) runs in this process on a free loopback
port for the duration of the command. Every AWS client of the run is pointed at it through
`AWS_ENDPOINT_URL`, with dummy credentials and no profile or configuration file, so nothing
reaches AWS; the emulator is set up to behave like a healthy account (services run their tasks,
certificates issue after a second, AWS managed policies exist). It stops at the end, also on
errors and Ctrl-C, and everything it held is gone with it.

A first try needs no set-up: with no .env, APP_NAME comes from the folder's name, the region is
us-east-1 and, when there is no src/, the example app dashscale carries is deployed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dashscale.config import APP_NAME_MAX
from dashscale.context import Context
from dashscale.errors import DashscaleError
from dashscale.project_files import bundled

MISSING_HINT = (
    "moto's server is an optional extra: install it where dashscale runs, then re-run "
    "`dashscale up --sandbox`"
)
ACCOUNT_ID = "123456789012"  # moto's account
LOOPBACK = "127.0.0.1"
CERTIFICATE_WAIT = 1  # seconds before the emulator issues a requested certificate
DEFAULT_REGION = "us-east-1"
FALLBACK_APP_NAME = "dash-app"  # for a folder whose name has no usable letter

# Environment variables that could send a request elsewhere or pick other credentials: removed
# for the duration (the AWS_ENDPOINT_URL_<SERVICE> ones too, which would win over ours).
_REMOVED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
)


def emulator_environment(endpoint: str, running_tasks: int) -> dict[str, str | None]:
    """What the sandbox sets (a value) and removes (None) in the environment."""
    changes: dict[str, str | None] = {name: None for name in _REMOVED}
    changes.update(
        {name: None for name in os.environ if name.startswith("AWS_ENDPOINT_URL_")},
    )
    no_proxy = ",".join(
        part
        for part in [os.environ.get("NO_PROXY") or os.environ.get("no_proxy"), LOOPBACK]
        if part
    )
    changes.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
            "MOTO_ECS_SERVICE_RUNNING": str(running_tasks),
            "MOTO_ACM_VALIDATION_WAIT": str(CERTIFICATE_WAIT),
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
        }
    )
    return changes


@contextlib.contextmanager
def _environment(changes: dict[str, str | None]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _moto_settings() -> Iterator[None]:
    """moto reads some settings when it is imported: where it already was (a test session),
    set them on its settings module too, and put them back afterwards."""
    import moto.settings

    saved = moto.settings.ACM_VALIDATION_WAIT
    moto.settings.ACM_VALIDATION_WAIT = CERTIFICATE_WAIT
    try:
        yield
    finally:
        moto.settings.ACM_VALIDATION_WAIT = saved


@contextlib.contextmanager
def _quiet_request_log() -> Iterator[None]:
    """The emulator's web server logs every request at INFO: keep the output the user's."""
    logger = logging.getLogger("werkzeug")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _server_class() -> Any:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:
        raise DashscaleError(
            "the sandbox needs moto: pip install 'dashscale[sandbox]'",
            f"{MISSING_HINT} (import failed: {error})",
        ) from None
    return ThreadedMotoServer


@contextlib.contextmanager
def emulator(running_tasks: int = 3) -> Iterator[str]:
    """Starts moto's server on a free loopback port in this process and points AWS at it for
    the duration; yields the endpoint. `running_tasks` is what an ECS service reports running
    (the desired count, so deployments complete)."""
    # The settings first: moto reads some of them when it is imported.
    with _environment(emulator_environment("http://127.0.0.1:0", running_tasks)):
        server_class = _server_class()
        with _moto_settings(), _quiet_request_log():
            server = server_class(ip_address=LOOPBACK, port=0, verbose=False)
            server.start()
            try:
                host, port = server.get_host_and_port()
                endpoint = f"http://{host}:{port}"
                os.environ["AWS_ENDPOINT_URL"] = endpoint
                yield endpoint
            finally:
                server.stop()


def app_name_for(folder: str) -> str:
    """A valid APP_NAME from a folder's name: "My Dash App!" gives my-dash-app (lowercase ASCII,
    runs of other characters one hyphen, starting with a letter, at most APP_NAME_MAX long)."""
    text = unicodedata.normalize("NFKD", folder).encode("ascii", "ignore").decode().lower()
    name = re.sub(r"[^a-z0-9]+", "-", text).lstrip("-0123456789")
    return name[:APP_NAME_MAX].rstrip("-") or FALLBACK_APP_NAME


def first_try_defaults(project_dir: Path, env_file: Path | None) -> dict[str, str] | None:
    """What `up --sandbox` assumes where there is no .env (None where there is one)."""
    if env_file is not None or (project_dir / ".env").is_file():
        return None
    return {"APP_NAME": app_name_for(project_dir.name), "AWS_REGION": DEFAULT_REGION}


def _first_try(ctx: Context) -> None:
    """No .env here: the example app when there is no src/, and one line that says so."""
    config = ctx.config
    what = "src/"
    if not config.src_dir.is_dir():
        ctx.config = dataclasses.replace(config, app_source=bundled("src/app.py").parent)
        what = "the example app"
    ctx.ui.info(
        f"sandbox: no .env here: deploying {what} as APP_NAME={config.app_name} in "
        f"{config.aws_region} (run `dashscale init` to make it yours)"
    )


@contextlib.contextmanager
def sandboxed(ctx: Context, first_try: bool = False) -> Iterator[str]:
    """A command's context switched to the emulator: AWS_PROFILE and AWS_ACCOUNT_ID are ignored
    (the emulator's account is moto's), the delegation check of DOMAIN asks no DNS server, and
    the emulator runs for the duration. Yields its endpoint. `first_try`: there is no .env (the
    configuration came from `first_try_defaults`)."""
    if first_try:
        _first_try(ctx)
    config = ctx.config
    if config.aws_account_id and config.aws_account_id != ACCOUNT_ID:
        ctx.ui.info(
            f"sandbox: AWS_ACCOUNT_ID={config.aws_account_id} is ignored (the emulator's "
            f"account is {ACCOUNT_ID})"
        )
    if config.aws_profile:
        ctx.ui.info(f"sandbox: AWS_PROFILE={config.aws_profile} is ignored (no AWS access)")
    ctx.config = dataclasses.replace(
        config, aws_account_id=None, aws_profile=None, dns_resolver="none"
    )
    ctx.ui.step("Sandbox: an AWS emulator on this machine, no AWS account needed")
    with emulator(running_tasks=ctx.config.desired_count) as endpoint:
        ctx.ui.detail(f"the emulator answers on {endpoint}")
        yield endpoint
    ctx.ui.info(
        "sandbox: this ran against an emulator on this machine, which is stopped now; nothing "
        "was created in AWS. Run `dashscale up` without --sandbox to deploy for real."
    )

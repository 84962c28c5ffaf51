"""The command line: one click group, shared options declared once, one error handler."""

from __future__ import annotations

import contextlib
import functools
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from dashscale import __version__, stopping
from dashscale.config import load_config, parse_overrides
from dashscale.context import Context
from dashscale.errors import EXIT_FAILURE, EXIT_INTERRUPTED, ConfigError, DashscaleError
from dashscale.ui import UI


@dataclass
class Options:
    env_file: Path | None
    overrides: tuple[str, ...]
    debug: bool
    verbose: bool


def shared_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options every command takes, declared once, and the error handler around the command."""

    @click.option(
        "--env-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Read configuration from this file instead of ./.env.",
    )
    @click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="NAME=VALUE",
        help="Override one configuration variable (repeatable).",
    )
    @click.option("--verbose", "-v", is_flag=True, help="Show more detail, such as the build log.")
    @click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
    @functools.wraps(command)
    def wrapper(
        env_file: Path | None, overrides: tuple[str, ...], verbose: bool, debug: bool, **kwargs: Any
    ) -> None:
        options = Options(env_file, overrides, debug, verbose)
        ui = UI(verbose=verbose)
        code = handle_errors(
            ui, debug, lambda: command(options, ui, **kwargs), command.__name__.replace("_", "-")
        )
        sys.exit(code)

    return wrapper


def handle_errors(ui: UI, debug: bool, action: Callable[[], Any], command: str = "") -> int:
    """Runs a command; maps every failure to one clear message and an exit code."""
    try:
        stopping.take_over()  # from here, Ctrl-C is reported with what was done before it
        action()
    except DashscaleError as error:
        if debug:
            traceback.print_exc()
        if ui.changes:  # what a failed run already did, so nobody has to guess
            report_changes(ui)
        ui.error(error.message, error.hint)
        return error.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):  # Abort: Ctrl-C or EOF at a prompt
        report_changes(ui)
        ui.error(
            f"interrupted: `dashscale {command}` stopped before it finished",
            f"what was done is kept; run `dashscale {command}` again to finish: it finds what "
            "exists and makes only what is missing",
        )
        return EXIT_INTERRUPTED
    except Exception as error:
        if debug:
            raise
        ui.error(
            f"unexpected error: {type(error).__name__}: {error}",
            "re-run with --debug for the traceback, and report it",
        )
        return EXIT_FAILURE
    return 0


def report_changes(ui: UI) -> None:
    """After a failure or Ctrl-C: what this run changed before it stopped (or that it changed
    nothing)."""
    if not ui.changes:
        ui.info("nothing was changed by this run")
        return
    done = ", ".join(f"{kind} {name} ({state})" for kind, name, state in ui.changes)
    ui.info(f"done before stopping: {done}")


def make_context(
    options: Options,
    ui: UI,
    timeout: float = 900.0,
    dry_run: bool = False,
    defaults: dict[str, str] | None = None,
    wait_drained: bool = False,
    **flags: str | None,
) -> Context:
    """Loads the configuration (flags win over environment over file over `defaults`) and
    builds the context. A dry run is decided here, once: its AWS clients refuse every change
    (the safety net) and the commands print their plan instead of applying it."""
    overrides = parse_overrides(options.overrides)
    overrides.update({name: value for name, value in flags.items() if value is not None})
    config = load_config(env_file=options.env_file, overrides=overrides, defaults=defaults)
    return Context(
        config=config, ui=ui, timeout=timeout, dry_run=dry_run, wait_drained=wait_drained
    )


REGISTRAR_HELP = (
    "When Route 53 Domains registers DOMAIN in this account, point it at the zone's name "
    "servers without asking."
)


IMAGE_HELP = (
    "Deploy this image, already in a registry, instead of the one `push` made for the current "
    "content (build and push are skipped; PLATFORM names its architecture)."
)
TIMEOUT_HELP = "Seconds to wait for the load balancer and the deployment."
DRY_RUN_HELP = (
    "Only read AWS and print the plan: what would be created, updated (and which fields) or "
    "left alone. Changes nothing; never builds or pushes."
)
SANDBOX_HELP = (
    "Run everything on an AWS emulator started on this machine (needs dashscale[sandbox]; no "
    "AWS account): nothing is created in AWS. Without a Docker engine the image step is skipped. "
    "With no .env, APP_NAME is the folder's name, the region us-east-1 and, with no src/, the "
    "example app is deployed."
)

# Options several commands share, declared once.
image_option = click.option("--image", "image_uri", metavar="URI", help=IMAGE_HELP)
dry_run_option = click.option("--dry-run", is_flag=True, help=DRY_RUN_HELP)
registrar_option = click.option("--update-registrar", is_flag=True, help=REGISTRAR_HELP)
wait_option = click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Follow the deployment until the new tasks serve: healthy in the target group, the "
    "old ones draining (or until it fails, and say why).",
)
wait_drained_option = click.option(
    "--wait-drained",
    is_flag=True,
    help="After a redeploy, wait until the old tasks have drained and stopped (the target "
    "group's deregistration delay, 30 s by default), not only until the new ones serve.",
)
timeout_option = click.option(
    "--timeout", type=click.IntRange(min=1), default=900, show_default=True, help=TIMEOUT_HELP
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dashscale")
def cli() -> None:
    """Deploy a Plotly Dash app to AWS: ECR, ECS Fargate, a load balancer, HTTPS; and back again.

    Configuration comes from ./.env (see `dashscale init`). Run `dashscale up` to deploy
    everything, `dashscale teardown` to remove it, or one section at a time.
    """


@cli.command()
@click.option("--app-name", help="APP_NAME to write (asked for on a terminal).")
@click.option("--region", help="AWS_REGION to write (asked for on a terminal).")
@click.option("--force", is_flag=True, help="Overwrite .env and the example app if they exist.")
@click.option(
    "--template",
    type=click.Choice(["basic", "background"]),
    default="basic",
    show_default=True,
    help="The example app: basic, or background (a background callback with progress and a "
    "memoized function on a shared Redis; writes CACHE=redis and WORKERS=1).",
)
@shared_options
def init(
    options: Options, ui: UI, app_name: str | None, region: str | None, force: bool, template: str
) -> None:
    """Write .env from example.env and an example app in src/.

    --env-file names the file to write instead of ./.env; --set NAME=VALUE values are written
    into it (checked first).
    """
    from dashscale.steps.init import init_project

    settings = parse_overrides(options.overrides)
    init_project(ui, Path.cwd(), app_name, region, force, options.env_file, settings, template)


@cli.command()
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Run the image and request HEALTH_CHECK_PATH before declaring success.",
)
@shared_options
def build(options: Options, ui: UI, check: bool) -> None:
    """Build the app's image from src/ (and smoke-check it)."""
    from dashscale.steps import build as build_step

    ctx = make_context(options, ui)
    image = build_step.build(ctx, verbose=options.verbose)
    if check:
        build_step.smoke_check(ctx, image)
    ui.result(image.ref)


@cli.command()
@registrar_option
@click.option(
    "--timeout",
    type=click.IntRange(min=1),
    default=3600,
    show_default=True,
    help="Seconds to wait for the certificate to be issued.",
)
@shared_options
def tls(options: Options, ui: UI, update_registrar: bool, timeout: int) -> None:
    """HTTPS on DOMAIN and www.DOMAIN: zone, certificate, listener, redirect, aliases."""
    from dashscale.steps import https

    ctx = make_context(options, ui, timeout=timeout)
    if not ctx.config.domain:
        raise ConfigError("DOMAIN is not set", "set DOMAIN=example.com in .env to serve HTTPS")
    ui.result(https.tls_section(ctx, update_registrar, timeout=timeout))


@cli.command()
@click.option(
    "--retries",
    type=click.IntRange(0, 20),
    default=5,
    show_default=True,
    help="Times to retry a push that fails on a transient error (network, 5xx, throttling).",
)
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="When push has to build the image first, smoke-check it before pushing.",
)
@shared_options
def push(options: Options, ui: UI, retries: int, check: bool) -> None:
    """Push the app's image to its ECR repository (building it first when needed)."""
    from dashscale.steps import push as push_step

    ctx = make_context(options, ui)
    pushed = push_step.push(ctx, retries=retries, check=check, verbose=options.verbose)
    ui.result(pushed.uri)
    ui.result(pushed.digest)


@cli.command()
@image_option
@dry_run_option
@shared_options
def cluster(options: Options, ui: UI, image_uri: str | None, dry_run: bool) -> None:
    """Create the security groups, ECS cluster, execution role, log group and task definition."""
    from dashscale.steps import cluster as cluster_step

    ctx = make_context(options, ui, dry_run=dry_run)
    arn = cluster_step.cluster_section(ctx, cluster_step.resolve_image(ctx, image_uri))
    if arn is not None:
        ui.result(arn)


@cli.command()
@wait_option
@wait_drained_option
@timeout_option
@dry_run_option
@shared_options
def alb(
    options: Options, ui: UI, wait: bool, wait_drained: bool, timeout: int, dry_run: bool
) -> None:
    """Create the load balancer, target group, port-80 listener and the ECS service."""
    from dashscale.steps.service import alb_section

    ctx = make_context(
        options, ui, timeout=float(timeout), dry_run=dry_run, wait_drained=wait_drained
    )
    address = alb_section(ctx, wait=wait)
    if address is not None:
        ui.result(address)


@cli.command()
@image_option
@wait_option
@wait_drained_option
@timeout_option
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Push attempts after a failed one.",
)
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Smoke-check a newly built image before pushing it.",
)
@registrar_option
@dry_run_option
@click.option("--sandbox", is_flag=True, help=SANDBOX_HELP)
@click.option(
    "--cert-timeout",
    type=click.IntRange(min=1),
    default=3600,
    show_default=True,
    help="Seconds to wait for the certificate (with DOMAIN).",
)
@shared_options
def up(
    options: Options,
    ui: UI,
    image_uri: str | None,
    wait: bool,
    wait_drained: bool,
    timeout: int,
    retries: int,
    check: bool,
    update_registrar: bool,
    cert_timeout: int,
    dry_run: bool,
    sandbox: bool,
) -> None:
    """Deploy everything: build, push, cluster, alb (and HTTPS when DOMAIN is set).

    --dry-run only reads AWS and prints the plan; --sandbox runs everything on an AWS emulator
    on this machine (no AWS account needed).
    """
    from dashscale.steps import up as up_step

    defaults = None
    if sandbox:  # a first try needs no .env: the sandbox has defaults for what it would hold
        from dashscale.sandbox import first_try_defaults

        defaults = first_try_defaults(Path.cwd(), options.env_file)
    ctx = make_context(
        options,
        ui,
        timeout=float(timeout),
        dry_run=dry_run,
        defaults=defaults,
        wait_drained=wait_drained,
    )
    with contextlib.ExitStack() as stack:
        if sandbox:
            from dashscale.sandbox import sandboxed

            stack.enter_context(sandboxed(ctx, first_try=defaults is not None))
        result = up_step.up(
            ctx,
            image_uri,
            wait=wait,
            retries=retries,
            check=check,
            update_registrar=update_registrar,
            certificate_timeout=float(cert_timeout),
            sandbox=sandbox,
        )
    if result is not None:
        ui.result(result.url)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option(
    "--since",
    default="24h",
    show_default=True,
    metavar="AGE",
    help="The usage window: a number and s, m, h or d (2h, 7d).",
)
@shared_options
def status(options: Options, ui: UI, as_json: bool, since: str) -> None:
    """Show every resource, the service's tasks and deployments, target health, usage with
    right-size advice, and the address.

    Changes nothing. Exit code 0 when the app is serving (at least one healthy target and no
    unhealthy one) or asleep outside its office hours, 1 otherwise.
    """
    from dashscale.steps import status as status_step
    from dashscale.steps.logs import parse_since

    window = parse_since(since)
    ctx = make_context(options, ui)
    status_step.show(ctx, status_step.collect(ctx, window), as_json=as_json)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option(
    "--live",
    is_flag=True,
    help="Read the prices from the AWS Price List API (needs credentials) instead of "
    "dashscale's dated table; falls back to the table when the API cannot be reached.",
)
@shared_options
def cost(options: Options, ui: UI, as_json: bool, live: bool) -> None:
    """Estimate what the app costs a month: a line per item, quantity x unit price.

    Reads only the configuration (and, with --live, the AWS Price List API); assumptions are
    marked. With SCHEDULE, also what the schedule saves.
    """
    from dashscale import cost as cost_module

    ctx = make_context(options, ui)
    cost_module.show(ctx, cost_module.for_config(ctx, live=live), as_json=as_json)


@cli.command()
@click.option(
    "--since",
    default="1h",
    show_default=True,
    metavar="AGE",
    help="How far back to start: a number and s, m, h or d (10m, 2h, 1d).",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option(
    "--filter",
    "pattern",
    metavar="PATTERN",
    help="Only lines matching this CloudWatch Logs filter pattern, such as ERROR.",
)
@click.option("--worker", is_flag=True, help="The background-callback workers' lines instead.")
@shared_options
def logs(
    options: Options, ui: UI, since: str, follow: bool, pattern: str | None, worker: bool
) -> None:
    """Print the app's log lines (CloudWatch): time, task and message."""
    from dashscale.steps import logs as logs_step

    ctx = make_context(options, ui)
    logs_step.show_logs(ctx, since=since, follow=follow, pattern=pattern, worker=worker)


@cli.command()
@click.argument("count", type=click.IntRange(min=0), required=False)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    help="Set the number of background-callback worker tasks (service APP-worker) instead.",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait until COUNT tasks run.",
)
@click.option(
    "--timeout",
    type=click.IntRange(min=1),
    default=900,
    show_default=True,
    help="Seconds to wait for the tasks.",
)
@shared_options
def scale(
    options: Options, ui: UI, count: int | None, workers: int | None, wait: bool, timeout: int
) -> None:
    """Set the number of tasks the service runs to COUNT (or of the workers, with --workers N),
    and wait until they run."""
    from dashscale.steps import scale as scale_step

    if count is None and workers is None:
        raise click.UsageError("give COUNT, or --workers N")
    ctx = make_context(options, ui, timeout=float(timeout))
    if count is not None:
        service = scale_step.scale(ctx, count, wait=wait)
        ui.result(f"{service.get('runningCount', 0)}/{count} running")
    if workers is not None:
        service = scale_step.scale_workers(ctx, workers, wait=wait)
        ui.result(f"{service.get('runningCount', 0)}/{workers} workers running")


@cli.command()
@click.option(
    "--for",
    "duration",
    metavar="AGE",
    help="Sleep again after this long (30m, 2h), or at the scheduled end if that comes first.",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the tasks run.")
@click.option(
    "--timeout",
    type=click.IntRange(min=1),
    default=900,
    show_default=True,
    help="Seconds to wait for the tasks.",
)
@shared_options
def wake(options: Options, ui: UI, duration: str | None, wait: bool, timeout: int) -> None:
    """Start the app now, outside its office hours (SCHEDULE), until the scheduled end or --for."""
    from dashscale.steps import wake as wake_step

    ctx = make_context(options, ui, timeout=float(timeout))
    wake_step.wake(ctx, duration, wait=wait)


@cli.group()
def users() -> None:
    """The users who may sign in (AUTH=cognito): add, list, remove."""


@users.command("add")
@click.argument("email")
@shared_options
def users_add(options: Options, ui: UI, email: str) -> None:
    """Invite EMAIL: Cognito mails a temporary password; the first sign-in sets a new one."""
    from dashscale.steps import auth

    ctx = make_context(options, ui)
    ui.result(f"{email}: {auth.add_user(ctx, email)}")


@users.command("list")
@shared_options
def users_list(options: Options, ui: UI) -> None:
    """List the users: email, status (FORCE_CHANGE_PASSWORD until the first sign-in), enabled."""
    from dashscale.steps import auth

    ctx = make_context(options, ui)
    found = auth.list_users(ctx)
    ui.info(f"{ctx.names.user_pool}: {len(found)} user(s)")
    for user in found:
        ui.result(f"{user['email']}\t{user['status']}\tenabled: {user['enabled']}")


@users.command("remove")
@click.argument("email")
@shared_options
def users_remove(options: Options, ui: UI, email: str) -> None:
    """Remove EMAIL: they can no longer sign in."""
    from dashscale.steps import auth

    ctx = make_context(options, ui)
    auth.remove_user(ctx, email)
    ui.result(f"{email}: removed")


@cli.group()
def secret() -> None:
    """Store, list and remove the app's secrets (SSM SecureStrings under /dashscale/APP/).

    Each stored secret NAME becomes the environment variable NAME of the app's tasks at the
    next `dashscale up`. Values are never printed.
    """


def read_secret_value(name: str) -> str:
    """From a hidden prompt on a terminal, otherwise stdin (one trailing newline dropped)."""
    stdin = click.get_text_stream("stdin")
    if stdin.isatty():
        return str(click.prompt(f"Value of {name}", hide_input=True, err=True))
    value = stdin.read()
    return value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")


@secret.command("set")
@click.argument("name")
@click.option(
    "--restart",
    is_flag=True,
    help="Start new tasks now (a new deployment of the service) so they read the new value.",
)
@shared_options
def secret_set(options: Options, ui: UI, name: str, restart: bool) -> None:
    """Store the secret NAME; its value comes from a hidden prompt or stdin, never an argument."""
    from dashscale.steps import appconfig, service

    appconfig.check_secret_name(name)
    ctx = make_context(options, ui)
    replaced = appconfig.set_secret(ctx, name, read_secret_value(name))
    if replaced and restart:
        service.restart(ctx, f"so new tasks read the new value of {name}")
    elif replaced:
        ui.info(
            "running tasks keep the old value until they restart: run "
            f"`dashscale secret set {name} --restart` to start new tasks with it now"
        )


@secret.command("list")
@shared_options
def secret_list(options: Options, ui: UI) -> None:
    """List the stored secrets: names and when each last changed (never values)."""
    from dashscale.steps import appconfig

    for parameter in appconfig.list_secrets(make_context(options, ui)):
        ui.result(parameter["Name"].rsplit("/", 1)[-1])


@secret.command("remove")
@click.argument("name")
@shared_options
def secret_remove(options: Options, ui: UI, name: str) -> None:
    """Delete the stored secret NAME (then run `dashscale up`)."""
    from dashscale.steps import appconfig

    appconfig.remove_secret(make_context(options, ui), name)


TEARDOWN_ALL_HELP = (
    "Also delete what holds data, when dashscale created it: the image repository with its "
    "images, the log group, the user pool with its users (and its sign-in domain), and a "
    "hosted zone with no records but dashscale's."
)
TEARDOWN_TIMEOUT_HELP = (
    "Seconds to wait for each resource AWS is slow to release (service tasks, load balancer, "
    "certificate, security groups)."
)


@cli.command()
@click.option("--yes", "-y", is_flag=True, help="Delete without asking (needed with no terminal).")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted and what is kept.")
@click.option("--all", "everything", is_flag=True, help=TEARDOWN_ALL_HELP)
@click.option(
    "--timeout",
    type=click.IntRange(min=1),
    default=900,
    show_default=True,
    help=TEARDOWN_TIMEOUT_HELP,
)
@shared_options
def teardown(
    options: Options, ui: UI, yes: bool, dry_run: bool, everything: bool, timeout: int
) -> None:
    """Delete the app's AWS resources in the order AWS needs; keeps images, logs and the zone.

    Lists what it deletes and what it keeps first, then asks (or takes --yes). Only resources
    under this app's exact names and tagged dashscale:app=APP_NAME are touched; a second run
    deletes only what is left.
    """
    from dashscale.steps import teardown as teardown_step

    ctx = make_context(options, ui, timeout=float(timeout))
    teardown_step.teardown(ctx, everything=everything, yes=yes, dry_run=dry_run)


@cli.group()
def ci() -> None:
    """Deploy from CI without keys: GitHub Actions assumes a role of the app's (see
    docs/deploy-from-ci.md)."""


BRANCH_HELP = "The branch whose pushes deploy."


def _checked(pattern: str, what: str) -> Callable[[click.Context, click.Parameter, str], str]:
    def check(_: click.Context, __: click.Parameter, value: str) -> str:
        if value is not None and not re.fullmatch(pattern, value):
            raise click.BadParameter(f"expected {what}, got {value!r}")
        return value

    return check


BRANCH = _checked(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", "a branch name such as main")


@ci.command("github")
@click.option("--branch", default="main", show_default=True, callback=BRANCH, help=BRANCH_HELP)
@click.option("--force", is_flag=True, help="Replace a workflow file that differs.")
@shared_options
def ci_github(options: Options, ui: UI, branch: str, force: bool) -> None:
    """Write .github/workflows/dashscale.yml: on a push to the branch, `dashscale up` as the
    role `ci role` makes. No keys or secrets in the file."""
    from dashscale.steps import ci as ci_step

    ui.result(str(ci_step.github(make_context(options, ui), branch, force)))


@ci.command("role")
@click.option(
    "--repo",
    required=True,
    metavar="OWNER/NAME",
    callback=_checked(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", "OWNER/NAME"),
    help="The GitHub repository whose workflow may deploy.",
)
@click.option("--branch", default="main", show_default=True, callback=BRANCH, help=BRANCH_HELP)
@click.option(
    "--for",
    "purpose",
    type=click.Choice(["deploy", "up"]),
    default="deploy",
    show_default=True,
    help="deploy: ship new images of an app that exists; up: also create and change resources.",
)
@dry_run_option
@shared_options
def ci_role(options: Options, ui: UI, repo: str, branch: str, purpose: str, dry_run: bool) -> None:
    """Create GitHub's OIDC provider in the account (if missing) and the role APP-deployer,
    trusted by that repository and branch only, with the deployer's policy inline."""
    from dashscale.steps import ci as ci_step

    ci_step.role(make_context(options, ui, dry_run=dry_run), repo, branch, purpose)


@cli.command()
@click.option(
    "--for",
    "purpose",
    type=click.Choice(["up", "deploy", "teardown", "all"]),  # dashscale.policy.PURPOSES
    default="up",
    show_default=True,
    help="What the policy is for: up (create and change everything, and the everyday "
    "commands), deploy (a new image of an app that exists: for CI), teardown, or all.",
)
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON document on stdout.")
@shared_options
def policy(options: Options, ui: UI, purpose: str, as_json: bool) -> None:
    """Print the least-privilege IAM policy that lets dashscale run for this app.

    Built from the calls dashscale makes for this configuration (APP_NAME, region, account,
    DOMAIN, AUTH, secrets, task role): scoped to the app's own resources wherever AWS allows.
    """
    import json

    from dashscale import policy as policy_module

    ctx = make_context(options, ui)
    document = policy_module.document(ctx, purpose)
    if not as_json:
        count = len(policy_module.actions(ctx, purpose))
        ui.info(f"{ctx.names.app}: the IAM policy for `{purpose}` ({count} actions)")
        for sid, why in policy_module.broad_reasons(document):
            ui.info(f"{sid}: on * because {why}")
    ui.result(json.dumps(document, indent=None if as_json else 2))


def main() -> None:
    cli(prog_name="dashscale")

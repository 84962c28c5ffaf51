"""The command line: one click group, shared options declared once, one error handler."""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from dashscale import __version__
from dashscale.config import load_config, parse_overrides
from dashscale.context import Context
from dashscale.errors import EXIT_FAILURE, EXIT_INTERRUPTED, DashscaleError
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
        code = handle_errors(ui, debug, lambda: command(options, ui, **kwargs))
        sys.exit(code)

    return wrapper


def handle_errors(ui: UI, debug: bool, action: Callable[[], Any]) -> int:
    """Runs a command; maps every failure to one clear message and an exit code."""
    try:
        action()
    except DashscaleError as error:
        if debug:
            traceback.print_exc()
        ui.error(error.message, error.hint)
        return error.exit_code
    except KeyboardInterrupt:
        ui.error("interrupted", "finished work is kept; re-run the same command to continue")
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


def make_context(options: Options, ui: UI, timeout: float = 900.0, **flags: str | None) -> Context:
    """Loads the configuration (flags win over environment over file) and builds the context."""
    overrides = parse_overrides(options.overrides)
    overrides.update({name: value for name, value in flags.items() if value is not None})
    config = load_config(env_file=options.env_file, overrides=overrides)
    return Context(config=config, ui=ui, timeout=timeout)


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
@shared_options
def init(options: Options, ui: UI, app_name: str | None, region: str | None, force: bool) -> None:
    """Write .env from example.env and an example app in src/."""
    from dashscale.steps.init import init_project

    init_project(ui, Path.cwd(), app_name, region, force)


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


def main() -> None:
    cli(prog_name="dashscale")

"""`dashscale init`: a .env from example.env and the example app, never overwriting silently."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import click

from dashscale.config import check_value, load_config
from dashscale.errors import ConfigError
from dashscale.project_files import EXAMPLE_APP_FILES, bundled
from dashscale.ui import UI, is_interactive

# What a template's app needs besides the defaults (`--set` still wins).
TEMPLATE_SETTINGS: dict[str, dict[str, str]] = {"background": {"CACHE": "redis", "WORKERS": "1"}}


def suggested_app_name(folder: Path) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", folder.name.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:20].rstrip("-")
    return name or "dash-app"


def _ask(name: str, given: str | None, default: str) -> str:
    if given is not None:
        check_value(name, given)
        return given.strip()
    if not is_interactive():
        flag = {"APP_NAME": "--app-name", "AWS_REGION": "--region"}[name]
        raise ConfigError(
            f"{name} is needed and there is no terminal to ask on", f"pass {flag} VALUE"
        )
    while True:
        value = click.prompt(name, default=default, err=True).strip()
        try:
            check_value(name, value)
            return value
        except ConfigError as error:
            click.echo(error.message, err=True)


def render_env(example: str, values: dict[str, str]) -> str:
    lines = []
    for line in example.splitlines():
        name = line.split("=", 1)[0]
        lines.append(f"{name}={values[name]}" if name in values and "=" in line else line)
    return "\n".join(lines) + "\n"


def write_checked(path: Path, text: str, folder: Path) -> None:
    """Writes the file only when the whole configuration in it is valid (one value alone can be
    valid and still clash with a default, such as TASK_CPU=256 with the default TASK_MEMORY)."""
    draft = path.with_name(f".{path.name}.draft")
    draft.write_text(text, encoding="utf-8")
    try:
        load_config(env_file=draft, environ={}, project_dir=folder)
    except ConfigError:
        draft.unlink()
        raise
    draft.replace(path)


def init_project(
    ui: UI,
    folder: Path,
    app_name: str | None,
    region: str | None,
    force: bool,
    env_file: Path | None = None,
    settings: Mapping[str, str] | None = None,
    template: str = "basic",
) -> None:
    """Writes the configuration file (`env_file`, default ./.env) with `settings` (from
    `--set`, validated here) and the example app of `template` where there is none."""
    settings = {**TEMPLATE_SETTINGS.get(template, {}), **(settings or {})}
    for name, value in settings.items():
        check_value(name, value)  # an unknown name or a bad value stops before any write
    app_name = _one_of(app_name, settings.pop("APP_NAME", None), "--app-name", "APP_NAME")
    region = _one_of(region, settings.pop("AWS_REGION", None), "--region", "AWS_REGION")
    env_path = env_file if env_file is not None else folder / ".env"
    shown = str(env_file) if env_file is not None else ".env"
    if env_path.exists() and not force:
        if settings or app_name or region:
            raise ConfigError(
                f"{shown} exists, so the values given would not be written",
                f"edit {shown}, or add --force to write a new one",
            )
        ui.resource("file", shown, "kept", "exists; --force overwrites it")
    else:
        values = {
            "APP_NAME": _ask("APP_NAME", app_name, suggested_app_name(folder)),
            "AWS_REGION": _ask("AWS_REGION", region, "us-east-1"),
            **{name: value.strip() for name, value in settings.items()},
        }
        example = bundled("example.env").read_text(encoding="utf-8")
        env_path.parent.mkdir(parents=True, exist_ok=True)
        write_checked(env_path, render_env(example, values), folder)
        ui.resource("file", shown, "created")
    for relative in EXAMPLE_APP_FILES:
        target = folder / relative
        if target.exists() and not force:
            ui.resource("file", relative, "kept", "exists; --force overwrites it")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        source = relative if template == "basic" else f"templates/{template}/{relative}"
        target.write_bytes(bundled(source).read_bytes())
        ui.resource("file", relative, "created")
    flag = f" --env-file {env_file}" if env_file is not None else ""
    ui.info(
        f"next: `dashscale build{flag}` to build and check the image, `dashscale up{flag}` to "
        "deploy"
    )


def _one_of(flag_value: str | None, set_value: str | None, flag: str, name: str) -> str | None:
    """A value given both as a flag and as `--set NAME=...` must agree."""
    if flag_value is not None and set_value is not None and flag_value.strip() != set_value.strip():
        raise ConfigError(
            f"{flag} {flag_value} and --set {name}={set_value} disagree", "give only one of them"
        )
    return flag_value if flag_value is not None else set_value

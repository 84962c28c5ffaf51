"""`dashscale init`: the configuration file and the example app, and its shared options used."""

from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values

from dashscale.config import load_config


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_init_writes_env_and_the_example_app(folder: Path, run) -> None:
    result = run("init", "--app-name", "demo", "--region", "eu-west-1")
    assert result.exit_code == 0, result.output
    assert (folder / "src" / "app.py").is_file() and (folder / "src" / "requirements.txt").is_file()
    config = load_config(environ={}, project_dir=folder)
    assert (config.app_name, config.aws_region) == ("demo", "eu-west-1")


def test_init_writes_the_file_env_file_names_with_the_values_of_set(folder: Path, run) -> None:
    result = run(
        "init",
        "--env-file",
        "prod.env",
        "--set",
        "APP_NAME=shop",
        "--set",
        "AWS_REGION=eu-central-1",
        "--set",
        "domain=example.com",
        "--set",
        "DESIRED_COUNT=2",
    )
    assert result.exit_code == 0, result.output
    assert not (folder / ".env").exists()
    written = dotenv_values(folder / "prod.env")
    assert written["DOMAIN"] == "example.com" and written["DESIRED_COUNT"] == "2"
    config = load_config(env_file=folder / "prod.env", environ={}, project_dir=folder)
    assert (config.app_name, config.aws_region, config.domain) == (
        "shop",
        "eu-central-1",
        "example.com",
    )
    assert "--env-file prod.env" in result.stderr  # the next commands need it too


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--set", "TASK_MEMORY=lots"), "TASK_MEMORY='lots' is invalid"),
        (("--set", "NO_SUCH=1"), "unknown setting NO_SUCH"),
        (("--set", "APP_NAME=one", "--app-name", "two"), "disagree"),
        # valid alone, but not with the default TASK_MEMORY=3072 the file would get
        (("--set", "TASK_CPU=256"), "TASK_MEMORY"),
    ],
)
def test_init_refuses_bad_values_before_writing(folder: Path, run, args, said: str) -> None:
    result = run("init", "--app-name", "demo", "--region", "eu-west-1", *args)
    assert result.exit_code == 2
    assert said in result.stderr
    assert list(folder.iterdir()) == []


def test_set_on_an_existing_env_is_refused_not_ignored(folder: Path, run) -> None:
    assert run("init", "--app-name", "demo", "--region", "eu-west-1").exit_code == 0
    before = (folder / ".env").read_text()
    result = run("init", "--set", "DOMAIN=example.com")
    assert result.exit_code == 2 and "--force" in result.stderr
    assert (folder / ".env").read_text() == before
    forced = run(
        "init",
        "--force",
        "--set",
        "DOMAIN=example.com",
        "--app-name",
        "demo",
        "--region",
        "eu-west-1",
    )
    assert forced.exit_code == 0, forced.output
    assert dotenv_values(folder / ".env")["DOMAIN"] == "example.com"

"""`dashscale up --sandbox`: the whole flow on the emulator dashscale starts itself, with the
real Docker engine, on a machine with no AWS credentials.

Run as a child process (`python -m dashscale up --sandbox`), as a user would, so that its own
in-process moto leaves the test session's moto alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dashscale import sandbox
from dashscale.config import check_value, load_config
from dashscale.errors import DashscaleError
from tests.support.operating import said
from tests.support.servers import Registry

REPO_ROOT = Path(__file__).resolve().parent.parent


def without_aws(project: Path, **extra: str) -> dict[str, str]:
    """The test's environment with no AWS credentials and no endpoint; instead, settings that
    would send requests away from the emulator if the sandbox kept them."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "MOTO_", "DASHSCALE_"))
        and name not in ("DNS_RESOLVER", "TEST_SERVER_MODE")
    }
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "COLUMNS": "200",
            # a dead endpoint for one service and a profile that does not exist: the sandbox
            # must ignore both, or the run fails
            "AWS_ENDPOINT_URL_ECS": "http://127.0.0.1:9",
            "AWS_PROFILE": "no-such-profile",
            **extra,
        }
    )
    assert "AWS_ACCESS_KEY_ID" not in env and "AWS_ENDPOINT_URL" not in env
    return env


def run_sandbox(
    project: Path, env: dict[str, str], *flags: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dashscale", "up", *(flags or ("--sandbox",))],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def sandbox_project(project: Path, base_image: str) -> Path:
    with (project / ".env").open("a") as env:
        env.write("DOMAIN=example.com\nAWS_ACCOUNT_ID=999999999999\n")
    return project


@pytest.fixture
def cleanup_images(docker_client):
    refs: list[str] = []
    yield refs
    for ref in refs:
        with contextlib.suppress(Exception):
            docker_client.api.remove_image(ref, noprune=True)


@pytest.mark.docker
def test_sandbox_deploys_everything_without_aws(sandbox_project: Path, docker_client) -> None:
    result = run_sandbox(sandbox_project, without_aws(sandbox_project))
    err = said(result.stderr)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip().splitlines()[-1] == "https://example.com"
    assert "Traceback" not in result.stderr
    # built and smoke-checked for real on the local engine
    assert "smoke check" in err and "passed" in err
    # no registry: the push is skipped, and it says so
    assert "push skipped: DASHSCALE_REGISTRY is not set" in err
    # every resource, the TLS ones included, in the emulator, and the summary of a real run
    for name in (
        "demo-alb-sg",
        "demo-from-alb-sg",
        "demo-cluster",
        "demo-us-east-1-task-execution-role",
        "/ecs/demo",
        "demo-taskdef:1",
        "demo-alb",
        "demo-tg",
        "demo-service",
        "demo-repository",
    ):
        assert name in err, name
    assert "resource(s) created or updated" in err
    assert "HTTPS :443" in err and "alias record" in err
    # the AWS_ACCOUNT_ID and the profile do not stop it, and it says why
    assert "AWS_ACCOUNT_ID=999999999999 is ignored" in err
    assert "AWS_PROFILE=no-such-profile is ignored" in err
    # the delegation of DOMAIN was not checked against any DNS server
    assert "delegation" not in err and "public DNS" not in err
    assert "nothing was created in AWS" in err


@pytest.mark.docker
def test_sandbox_pushes_to_the_local_registry_when_given(
    sandbox_project: Path, docker_client, registry: Registry, cleanup_images: list[str]
) -> None:
    before = set(registry.tags("demo-repository"))
    env = without_aws(sandbox_project, DASHSCALE_REGISTRY=registry.address)
    result = run_sandbox(sandbox_project, env)
    assert result.returncode == 0, result.stderr[-4000:]
    err = said(result.stderr)
    assert "smoke check" in err and "passed" in err
    # the deployed image is the one now in the registry (a new tag: APP_PORT is the test's own)
    pattern = re.escape(f"{registry.address}/demo-repository:") + r"([\w.-]+)"
    (tag,) = set(re.findall(pattern, result.stderr))
    cleanup_images.append(f"{registry.address}/demo-repository:{tag}")
    assert tag in registry.tags("demo-repository") and tag not in before
    assert f"{registry.address}/demo-repository:{tag} deployed" in said(
        result.stderr.replace("│", " ")
    )
    assert result.stdout.strip().splitlines()[-1] == "https://example.com"


def test_missing_moto_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_moto(name: str, *args, **kwargs):
        if name == "moto.server" or name.startswith("moto.server"):
            raise ImportError("No module named 'moto'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_moto)
    before = dict(os.environ)
    with pytest.raises(DashscaleError) as raised, sandbox.emulator():
        pass
    assert raised.value.message == "the sandbox needs moto: pip install 'dashscale[sandbox]'"
    assert dict(os.environ) == before  # the environment is put back


def test_sandbox_without_a_docker_engine_runs_everything_but_the_image(project: Path) -> None:
    with (project / ".env").open("a") as env:
        env.write("DOMAIN=example.com\n")
    dead = project / "no-engine.sock"
    result = run_sandbox(project, without_aws(project, DOCKER_HOST=f"unix://{dead}"))
    err = said(result.stderr)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "cannot reach the Docker engine" in err
    assert "the image step (build, smoke check, push) is skipped" in err
    assert "Start Docker and re-run `dashscale up --sandbox` to include it" in err
    for name in ("demo-cluster", "demo-taskdef:1", "demo-alb", "demo-service", "HTTPS :443"):
        assert name in err, name
    assert result.stdout.strip().splitlines()[-1] == "https://example.com"
    assert "nothing was created in AWS" in err and "Traceback" not in result.stderr
    assert "no .env here" not in err  # the project's own configuration, as it was


def test_first_try_in_an_empty_folder_deploys_the_example_app(tmp_path: Path) -> None:
    """`dashscale up --sandbox` where there is nothing: no .env, no src/ (here without a Docker
    engine, so no image is built; the example app's content still names the image)."""
    folder = tmp_path / "first-try"
    folder.mkdir()
    env = without_aws(folder, DOCKER_HOST=f"unix://{tmp_path / 'no-engine.sock'}")
    result = run_sandbox(folder, env)
    err = said(result.stderr)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (
        "sandbox: no .env here: deploying the example app as APP_NAME=first-try in us-east-1 "
        "(run `dashscale init` to make it yours)" in err
    )
    assert err.count("no .env here") == 1
    for name in ("first-try-cluster", "first-try-taskdef:1", "first-try-alb", "first-try-service"):
        assert name in err, name
    assert "first-try: 11 resource(s) created or updated" in err
    assert result.stdout.strip().splitlines()[-1].startswith("http://first-try-alb")
    assert "nothing was created in AWS" in err and "Traceback" not in result.stderr
    assert list(folder.iterdir()) == []  # nothing written where the user stood

    # without --sandbox, the same folder is still the clear error, before any AWS call
    result = run_sandbox(folder, env, "--dry-run")
    assert result.returncode == 2, result.stderr[-4000:]
    assert "no configuration: there is no .env here and APP_NAME is not set" in said(result.stderr)


@pytest.mark.parametrize(
    ("folder", "app_name"),
    [
        ("My Dash App!", "my-dash-app"),
        ("2024 Sales_Report", "sales-report"),  # starts with a letter
        ("Données--clients", "donnees-clients"),  # ASCII, one hyphen at a time
        ("sales-and-marketing-kpis", "sales-and-marketing"),  # 20 at most, no hyphen at the end
        ("dashscale", "dashscale"),
        ("!!!", sandbox.FALLBACK_APP_NAME),
        ("2024", sandbox.FALLBACK_APP_NAME),
        ("", sandbox.FALLBACK_APP_NAME),  # the root folder
    ],
)
def test_a_folder_name_becomes_a_valid_app_name(folder: str, app_name: str) -> None:
    assert sandbox.app_name_for(folder) == app_name
    assert check_value("APP_NAME", app_name) == app_name


def test_first_try_defaults_fill_only_what_nothing_sets(tmp_path: Path) -> None:
    folder = tmp_path / "My Dash App!"
    folder.mkdir()
    defaults = sandbox.first_try_defaults(folder, None)
    assert defaults == {"APP_NAME": "my-dash-app", "AWS_REGION": "us-east-1"}
    config = load_config(environ={}, project_dir=folder, defaults=defaults)
    assert (config.app_name, config.aws_region) == ("my-dash-app", "us-east-1")
    # the environment and --set still win over them
    config = load_config(
        overrides={"APP_NAME": "mine"},
        environ={"AWS_REGION": "eu-west-1"},
        project_dir=folder,
        defaults=defaults,
    )
    assert (config.app_name, config.aws_region) == ("mine", "eu-west-1")
    # a .env here, or --env-file: the project's own configuration, no defaults
    assert sandbox.first_try_defaults(folder, folder / "other.env") is None
    (folder / ".env").write_text("APP_NAME=demo\n")
    assert sandbox.first_try_defaults(folder, None) is None

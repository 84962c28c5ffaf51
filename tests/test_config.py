"""Configuration rules: sources and precedence, defaults, and every refusal naming its variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashscale.config import (
    VARIABLES,
    Config,
    ConfigErrors,
    fargate_memory_options,
    load_config,
    parse_overrides,
)
from dashscale.errors import ConfigError

BASE = {"APP_NAME": "demo", "AWS_REGION": "eu-west-1"}


def load(tmp_path: Path, **values: str) -> Config:
    return load_config(environ={**BASE, **values}, project_dir=tmp_path)


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert (config.app_port, config.health_check_path, config.desired_count) == (8050, "/", 3)
    assert (config.task_cpu, config.task_memory) == (1024, 3072)
    assert config.base_image == "python:3.12-slim"
    assert config.domain is None and config.image_tag is None and config.aws_account_id is None
    assert config.architecture == "X86_64"
    assert config.compress is True


@pytest.mark.parametrize(("raw", "value"), [("false", False), ("FALSE", False), ("True", True)])
def test_compress_is_a_boolean(tmp_path: Path, raw: str, value: bool) -> None:
    assert load(tmp_path, COMPRESS=raw).compress is value


def test_compress_refuses_anything_else(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="COMPRESS='no' is invalid: expected true or false"):
        load(tmp_path, COMPRESS="no")


def test_env_file_then_environment_then_flags(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "APP_NAME=fromfile\nAWS_REGION=eu-west-1\nAPP_PORT=9000\nDESIRED_COUNT=4\n"
    )
    config = load_config(
        environ={"APP_PORT": "9100"}, overrides={"DESIRED_COUNT": "5"}, project_dir=tmp_path
    )
    assert (config.app_name, config.app_port, config.desired_count) == ("fromfile", 9100, 5)


def test_explicit_env_file(tmp_path: Path) -> None:
    other = tmp_path / "prod.env"
    other.write_text("APP_NAME=prod\nAWS_REGION=us-west-2\n")
    assert load_config(env_file=other, environ={}, project_dir=tmp_path).app_name == "prod"
    with pytest.raises(ConfigError, match="--env-file"):
        load_config(env_file=tmp_path / "missing.env", environ={}, project_dir=tmp_path)


def test_empty_value_counts_as_unset(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "APP_NAME=demo\nAWS_REGION=eu-west-1\nAWS_ACCOUNT_ID=\nAPP_PORT=\n"
    )
    config = load_config(environ={}, project_dir=tmp_path)
    assert config.aws_account_id is None and config.app_port == 8050


def test_no_configuration_points_to_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(environ={}, project_dir=tmp_path)
    assert "dashscale init" in error.value.hint


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("APP_NAME", "Demo"),
        ("APP_NAME", "1demo"),
        ("APP_NAME", "demo-"),
        ("APP_NAME", "a" * 21),
        ("APP_NAME", "de_mo"),
        ("APP_NAME", "de--mo"),
        ("AWS_REGION", "Europe"),
        ("AWS_ACCOUNT_ID", "12345"),
        ("APP_PORT", "0"),
        ("APP_PORT", "65536"),
        ("APP_PORT", "80a"),
        ("HEALTH_CHECK_PATH", "health"),
        ("TASK_CPU", "1000"),
        ("TASK_MEMORY", "1000"),
        ("DESIRED_COUNT", "0"),
        ("DESIRED_COUNT", "1.5"),
        ("DOMAIN", "not a domain"),
        ("DOMAIN", "www.example.com"),
        ("IMAGE_TAG", "-bad"),
        ("PLATFORM", "linux/386"),
        ("SUBNET_IDS", "subnet-0a"),
        ("LOG_RETENTION_DAYS", "31"),
    ],
)
def test_invalid_values_are_refused_naming_the_variable(
    tmp_path: Path, name: str, value: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, **{name: value})
    assert error.value.message.startswith(name)
    assert error.value.exit_code == 2


def test_required_variables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AWS_REGION is not set"):
        load_config(environ={"APP_NAME": "demo"}, project_dir=tmp_path)


def test_fargate_pair_error_lists_valid_memory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, TASK_CPU="256", TASK_MEMORY="4096")
    assert "512, 1024, 2048" in error.value.message


@pytest.mark.parametrize(
    ("cpu", "memory", "valid"),
    [
        (256, 512, True),
        (256, 3072, False),
        (512, 4096, True),
        (1024, 8192, True),
        (2048, 16384, True),
        (4096, 30720, True),
        (4096, 31744, False),
        (8192, 20480, True),
        (8192, 18432, False),
        (16384, 122880, True),
        (16384, 36864, False),
    ],
)
def test_fargate_pairs(cpu: int, memory: int, valid: bool) -> None:
    assert (memory in fargate_memory_options(cpu)) is valid


def test_vpc_and_subnets_go_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VPC_ID and SUBNET_IDS"):
        load(tmp_path, VPC_ID="vpc-0abc")
    config = load(tmp_path, VPC_ID="vpc-0abc", SUBNET_IDS="subnet-01, subnet-02")
    assert config.subnet_ids == ("subnet-01", "subnet-02")


def test_domain_is_normalised(tmp_path: Path) -> None:
    assert load(tmp_path, DOMAIN="Example.COM.").domain == "example.com"


def test_overrides() -> None:
    assert parse_overrides(("app_port=9000", "DOMAIN=")) == {"APP_PORT": "9000", "DOMAIN": ""}
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_overrides(("APP_PORT",))
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config(environ=BASE, overrides={"NOPE": "1"}, project_dir=Path("."))


def _table_rows(text: str, heading: str) -> dict[str, list[str]]:
    """The cells of each Markdown table row whose first cell is a `NAME`, by NAME, in the
    section under `heading` (up to the next heading of its level)."""
    section = text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and cells[0].startswith("`") and cells[0].endswith("`"):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_every_variable_is_documented() -> None:
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    reference = (root / "docs" / "configuration.md").read_text()
    example = (root / "example.env").read_text()
    short = _table_rows(readme, "## Configuration")
    full = _table_rows(reference, "## Variables")
    assert "(docs/configuration.md)" in readme, "README's table must link the full reference"
    for var in VARIABLES:
        # README: one line of meaning; docs/configuration.md: default, accepted values, meaning
        assert var.name in short and short[var.name][0], f"{var.name} missing from README's table"
        assert var.name in full, f"{var.name} missing from docs/configuration.md's table"
        default, accepted, meaning = full[var.name]
        assert accepted and meaning, f"{var.name}: docs/configuration.md lacks its details"
        if var.default is not None:
            assert f"`{var.default}`" in default, f"{var.name}: default is not {var.default}"
        else:
            # no fixed default: "(unset)", "(required)" or a computed one ("`true` for an apex")
            assert not re.fullmatch(r"`[^`]*`", default), (
                f"{var.name}: docs/configuration.md gives a default, dashscale has none"
            )
        assert f"\n{var.name}=" in example, f"{var.name} missing from example.env"
    names = {var.name for var in VARIABLES}
    assert set(short) - names == set(), "README documents variables dashscale does not have"
    assert set(full) - names == set(), "docs/configuration.md documents unknown variables"


def test_the_global_iam_role_is_named_per_region() -> None:
    from dashscale.names import Names

    # IAM is global: the same app in two regions must not share (or delete) one role
    assert Names("demo", "eu-west-1").execution_role == "demo-eu-west-1-task-execution-role"
    assert Names("demo", "eu-west-1").execution_role != Names("demo", "us-east-1").execution_role


def test_every_bad_value_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "APP_NAME=Bad_Name\nAWS_REGION=eu-west-1\nTASK_MEMORY=999\nAPP_PORT=0\n"
        "MIN_COUNT=5\nMAX_COUNT=2\n"
    )
    with pytest.raises(ConfigErrors) as raised:
        load_config(environ={}, project_dir=tmp_path)
    lines = raised.value.message.splitlines()
    assert lines[0] == "4 settings are invalid:"
    for name in ("APP_NAME='Bad_Name'", "APP_PORT='0'", "TASK_MEMORY=999", "MIN_COUNT=5"):
        assert sum(name in line for line in lines[1:]) == 1, name
    assert raised.value.exit_code == 2


def test_every_bad_value_is_reported_before_any_call(project: Path, run, no_docker) -> None:
    with (project / ".env").open("a") as env:
        env.write("APP_NAME=Bad_Name\nTASK_MEMORY=999\n")
    result = run("up", "--image", "registry.example/app:v1")  # no AWS endpoint: no call made
    assert result.exit_code == 2
    assert "APP_NAME='Bad_Name' is invalid" in result.stderr
    assert "TASK_MEMORY=999 is invalid with TASK_CPU=1024" in result.stderr


def test_at_most_ten_task_role_policies(tmp_path: Path) -> None:
    """IAM attaches at most 10 managed policies to a role (its default quota): the eleventh is
    refused here, not by IAM halfway through a run. The same policy twice counts once."""
    ten = [f"Policy{n}" for n in range(10)]
    assert len(load(tmp_path, TASK_ROLE_POLICIES=",".join([*ten, ten[0]])).task_role_policies) == 10
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, TASK_ROLE_POLICIES=",".join([*ten, "arn:aws:iam::123456789012:policy/x"]))
    assert raised.value.message.startswith("TASK_ROLE_POLICIES names 11 managed policies")
    assert "at most 10" in raised.value.message and "TASK_POLICY_FILE" in str(raised.value.hint)
    assert raised.value.exit_code == 2


def test_a_policy_arn_of_another_partition_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, AWS_REGION="cn-north-1", TASK_ROLE_POLICIES="arn:aws:iam::aws:policy/X")
    assert "outside aws-cn, the partition of AWS_REGION=cn-north-1" in raised.value.message
    assert "arn:aws-cn:iam::ACCOUNT:policy/NAME" in str(raised.value.hint)


def test_too_many_task_role_policies_stop_up_before_any_call(
    aws: str, project: Path, run, no_docker: None
) -> None:
    from tests.support.operating import said
    from tests.support.recording import recording

    policies = ",".join(f"Policy{n}" for n in range(11))
    with recording(aws) as calls:
        result = run(
            "up", "--image", "registry.example/app:v1", "--set", f"TASK_ROLE_POLICIES={policies}"
        )
    assert result.exit_code == 2, result.output
    assert calls.operations == []
    assert "TASK_ROLE_POLICIES names 11 managed policies" in said(result.stderr)

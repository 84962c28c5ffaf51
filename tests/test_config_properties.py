"""Property-based tests of the configuration rules (hypothesis): whatever is accepted yields
valid AWS names and a valid Fargate size; whatever is refused names its variable."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dashscale.config import FARGATE_CPUS, VARIABLES, fargate_memory_options, load_config
from dashscale.errors import ConfigError
from dashscale.names import Names

FOLDER = Path(tempfile.gettempdir())
NAMES_32 = ("alb", "target_group")  # ELBv2 names: at most 32, letters digits hyphens
ELB_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?")

app_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_A.", min_size=0, max_size=24)
numbers = st.one_of(st.integers(-5, 200_000).map(str), st.text(max_size=6))


def load(values: dict[str, str]):
    return load_config(environ={"AWS_REGION": "eu-west-1", **values}, project_dir=FOLDER)


# Each property has two branches (accepted: check the result; refused: check the message). A
# property whose every example took one branch would pass without checking the other: each
# test counts its branches and fails when one was never taken.


def test_any_accepted_app_name_gives_valid_aws_names() -> None:
    taken = {"accepted": 0, "refused": 0}

    @settings(max_examples=300, deadline=None)
    @given(app_names)
    def check(name: str) -> None:
        try:
            config = load({"APP_NAME": name})
        except ConfigError as error:
            assert "APP_NAME" in error.message
            taken["refused"] += 1
            return
        taken["accepted"] += 1
        names = Names(config.app_name, "ap-southeast-2")  # among the longest region names
        for attribute in NAMES_32:
            value = getattr(names, attribute)
            assert len(value) <= 32 and ELB_NAME.fullmatch(value), value
        assert len(names.execution_role) <= 64
        assert re.fullmatch(r"[a-z0-9]+(?:[._-][a-z0-9]+)*", names.repository)  # ECR
        assert len(names.cluster) <= 255 and len(names.service) <= 255

    check()
    assert min(taken.values()) > 0, taken


def test_any_accepted_task_size_is_a_valid_fargate_pair() -> None:
    taken = {"accepted": 0, "refused": 0}

    @settings(max_examples=300, deadline=None)
    @given(numbers, numbers)
    def check(cpu: str, memory: str) -> None:
        try:
            config = load({"APP_NAME": "demo", "TASK_CPU": cpu, "TASK_MEMORY": memory})
        except ConfigError as error:
            problems = getattr(error, "errors", [error])  # several bad values: each named
            assert problems
            for problem in problems:
                assert problem.message.startswith(("TASK_CPU", "TASK_MEMORY"))
            taken["refused"] += 1
            return
        taken["accepted"] += 1
        assert config.task_cpu in FARGATE_CPUS
        assert config.task_memory in fargate_memory_options(config.task_cpu)

    check()
    assert min(taken.values()) > 0, taken


optional = [v for v in VARIABLES if not v.required]


def test_any_refused_value_names_its_variable() -> None:
    refused = 0

    @settings(max_examples=400, deadline=None)
    @given(st.sampled_from(optional), st.text(max_size=30))
    def check(variable, value: str) -> None:
        nonlocal refused
        try:
            load({"APP_NAME": "demo", variable.name: value})
        except ConfigError as error:
            # refused for its own value, or for the combination it is part of: named either way
            assert variable.name in error.message, error.message
            assert error.exit_code == 2
            refused += 1

    check()
    assert refused > 0, "no generated value was refused: the property checked nothing"

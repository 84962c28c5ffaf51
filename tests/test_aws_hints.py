"""Every AWS error ends in a hint that fits it: most leave the user nothing to fix."""

from __future__ import annotations

from pathlib import Path

import botocore.exceptions
import pytest

from dashscale.aws import (
    AWS_SIDE_HINT,
    BAD_VALUE_HINT,
    IN_USE_HINT,
    NOT_FOUND_HINT,
    OTHER_HINT,
    PERMISSION_HINT,
    translated,
)
from dashscale.errors import AwsError
from tests.support.flaky_aws import Faults

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-repository:v1"


def answer(code: str, status: int = 400) -> botocore.exceptions.ClientError:
    """An error as botocore raises it from an AWS answer."""
    response = {
        "Error": {"Code": code, "Message": f"the words of {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return botocore.exceptions.ClientError(response, "SomeOperation")  # type: ignore[arg-type]


def hint_of(error: Exception) -> str:
    with pytest.raises(AwsError) as raised, translated("doing something"):
        raise error
    return raised.value.hint or ""


@pytest.mark.parametrize(
    ("code", "status", "hint"),
    [
        ("InternalFailure", 500, AWS_SIDE_HINT),
        ("ServiceUnavailable", 503, AWS_SIDE_HINT),
        ("ServerException", 500, AWS_SIDE_HINT),  # ECS's own name, known by its status
        ("ThrottlingException", 400, AWS_SIDE_HINT),
        ("ResourceInUse", 400, IN_USE_HINT),
        ("DependencyViolation", 400, IN_USE_HINT),
        ("TargetGroupNotFound", 400, NOT_FOUND_HINT),
        ("ClusterNotFoundException", 400, NOT_FOUND_HINT),
        ("NoSuchEntity", 404, NOT_FOUND_HINT),
        ("ValidationError", 400, BAD_VALUE_HINT),
        ("InvalidParameterException", 400, BAD_VALUE_HINT),
        ("SomethingNew", 400, OTHER_HINT),
        ("AccessDenied", 403, PERMISSION_HINT),
        (
            "RequestExpired",
            400,
            "your computer's clock is off: set it to the right time, then re-run",
        ),
    ],
)
def test_each_kind_of_answer_gets_its_own_hint(code: str, status: int, hint: str) -> None:
    assert hint_of(answer(code, status)) == hint


@pytest.mark.parametrize(
    ("operation", "error", "hint"),
    [
        (
            "CreateLoadBalancer",
            (400, "ValidationError", "At least two subnets in two different AZs must be given"),
            BAD_VALUE_HINT,
        ),
        (
            "CreateService",
            (400, "ClusterNotFoundException", "Cluster not found."),
            NOT_FOUND_HINT,
        ),
    ],
)
def test_a_run_that_fails_on_aws_ends_in_a_fitting_hint(
    aws: str, project: Path, run, flaky, operation: str, error: tuple, hint: str
) -> None:
    flaky(Faults(errors={operation: error}))
    result = run("up", "--image", IMAGE)
    assert result.exit_code == 1
    assert error[1] in result.stderr and "Traceback" not in result.output
    said = " ".join(result.stderr.split())
    assert f"hint: {hint}" in said
    assert "fix what AWS names above" not in said

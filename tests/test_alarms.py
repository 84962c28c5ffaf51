"""ALERT_EMAIL against moto's server: the SNS topic, the email subscription and the three alarms
`up` makes (and a re-run leaves alone), `status` showing an alarm in ALARM, a changed address,
ALERT_EMAIL unset, and teardown removing them all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dashscale.config import load_config
from dashscale.errors import ConfigError
from tests.support.operating import IMAGE, said, wide_terminal
from tests.support.recording import recording

__all__ = ["wide_terminal"]

EMAIL = ("--set", "ALERT_EMAIL=ops@example.com")
ALARMS = {"demo-unhealthy-targets", "demo-5xx-rate", "demo-cpu-high"}


def topics(boto) -> list[str]:
    return [t["TopicArn"] for t in boto("sns").list_topics()["Topics"]]


def alarms(boto) -> dict[str, dict[str, Any]]:
    return {a["AlarmName"]: a for a in boto("cloudwatch").describe_alarms()["MetricAlarms"]}


def subscriptions(boto, topic: str) -> list[str]:
    found = boto("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    return sorted(s["Endpoint"] for s in found if s["Protocol"] == "email")


def test_up_makes_the_topic_subscription_and_alarms_and_a_rerun_changes_nothing(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    result = run("up", "--image", IMAGE, *EMAIL)
    assert result.exit_code == 0, result.output
    (topic,) = topics(boto)
    assert topic.endswith(":demo-alerts")
    tags = boto("sns").list_tags_for_resource(ResourceArn=topic)["Tags"]
    assert {"Key": "dashscale:app", "Value": "demo"} in tags
    assert subscriptions(boto, topic) == ["ops@example.com"]

    found = alarms(boto)
    assert set(found) == ALARMS
    for alarm in found.values():
        assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]
        arn_tags = boto("cloudwatch").list_tags_for_resource(ResourceARN=alarm["AlarmArn"])
        assert {"Key": "dashscale:app", "Value": "demo"} in arn_tags["Tags"]
    cpu = found["demo-cpu-high"]
    assert (cpu["Namespace"], cpu["MetricName"], cpu["Statistic"]) == (
        "AWS/ECS",
        "CPUUtilization",
        "Average",
    )
    assert cpu["Period"] * cpu["EvaluationPeriods"] == 15 * 60  # 15 minutes
    assert (cpu["Threshold"], cpu["ComparisonOperator"]) == (90.0, "GreaterThanThreshold")
    assert {d["Name"]: d["Value"] for d in cpu["Dimensions"]} == {
        "ClusterName": "demo-cluster",
        "ServiceName": "demo-service",
    }
    unhealthy = found["demo-unhealthy-targets"]
    (group,) = boto("elbv2").describe_target_groups(Names=["demo-tg"])["TargetGroups"]
    dims = {d["Name"]: d["Value"] for d in unhealthy["Dimensions"]}
    assert unhealthy["MetricName"] == "UnHealthyHostCount" and unhealthy["Threshold"] == 0
    assert dims["TargetGroup"] == group["TargetGroupArn"].rsplit(":", 1)[-1]
    assert dims["LoadBalancer"].startswith("app/demo-alb/")
    rate = found["demo-5xx-rate"]
    expression = next(m["Expression"] for m in rate["Metrics"] if m.get("Expression"))
    assert "requests" in expression and rate["Threshold"] == 5.0
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in rate["Metrics"] if "MetricStat" in m}
    assert names == {"HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count", "RequestCount"}
    err = said(result.stderr)
    assert "SNS subscription ops@example.com created" in err and "confirmation link" in err

    with recording(aws) as calls:
        again = run("up", "--image", IMAGE, *EMAIL)
    assert again.exit_code == 0, again.output
    assert calls.operations and calls.changing == []


def test_status_shows_an_alarm_in_alarm(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE, *EMAIL).exit_code == 0
    reason = "Threshold Crossed: 3 datapoints [96.0, 95.1, 97.3] were greater than 90.0"
    boto("cloudwatch").set_alarm_state(
        AlarmName="demo-cpu-high", StateValue="ALARM", StateReason=reason
    )
    shown = run("status", *EMAIL)
    text = said(shown.stderr)
    assert f"alarm demo-cpu-high is in ALARM: {reason}" in text
    row = next(line for line in shown.stderr.splitlines() if "demo-cpu-high" in line)
    assert "│ ALARM " in row
    document = json.loads(run("status", "--json", *EMAIL).stdout)
    assert [(a["name"], a["reason"]) for a in document["alarms"]] == [("demo-cpu-high", reason)]
    kinds = {(r["kind"], r["name"]) for r in document["resources"]}
    assert {("SNS topic", "demo-alerts"), ("SNS subscription", "ops@example.com")} <= kinds
    assert {("alarm", name) for name in ALARMS} <= kinds


def test_a_new_address_is_subscribed_and_the_old_one_unsubscribed(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE, *EMAIL).exit_code == 0
    result = run("up", "--image", IMAGE, "--set", "ALERT_EMAIL=oncall@example.com")
    assert result.exit_code == 0, result.output
    (topic,) = topics(boto)
    assert subscriptions(boto, topic) == ["oncall@example.com"]


def test_unset_alert_email_removes_everything_and_teardown_does_too(
    aws: str, boto, project: Path, run, no_docker: None
) -> None:
    assert run("up", "--image", IMAGE, *EMAIL).exit_code == 0
    result = run("up", "--image", IMAGE)
    assert result.exit_code == 0, result.output
    assert topics(boto) == [] and alarms(boto) == {}
    assert "alarm demo-cpu-high deleted" in said(result.stderr)

    assert run("up", "--image", IMAGE, *EMAIL).exit_code == 0
    listed = run("teardown", "--dry-run", *EMAIL)
    assert "demo-alerts" in said(listed.stderr + listed.stdout)
    down = run("teardown", "--yes", *EMAIL)
    assert down.exit_code == 0, down.output
    assert topics(boto) == [] and alarms(boto) == {}
    assert boto("sns").list_subscriptions()["Subscriptions"] == []


@pytest.mark.parametrize("value", ["ops", "ops@example", "a@b.com,c@d.com", "ops @example.com"])
def test_a_bad_address_is_refused_before_any_call(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(
            environ={"APP_NAME": "demo", "AWS_REGION": "us-east-1", "ALERT_EMAIL": value},
            project_dir=tmp_path,
        )
    assert raised.value.message.startswith(f"ALERT_EMAIL={value!r} is invalid: expected one email")

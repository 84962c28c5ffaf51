"""Alarms by email: with ALERT_EMAIL set, an SNS topic `APP-alerts` with that address subscribed,
and three CloudWatch alarms that notify it (when they go off, and when they are OK again):

- `APP-unhealthy-targets`: any target of the load balancer unhealthy for 3 minutes;
- `APP-5xx-rate`: more than 5 % of the requests answered 5xx (by the app or the load balancer)
  in two 5-minute periods in a row;
- `APP-cpu-high`: the service's average CPU above 90 % for 15 minutes (three 5-minute periods).

Unset, they are removed (the subscription goes with the topic). The topic and the alarms carry
the `dashscale:app` tag; the subscription is ours as part of our topic. AWS mails the address a
confirmation link first: until it is followed, the subscription is "pending confirmation" (and
cannot be removed on its own: it goes with the topic, or after three days).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import botocore.exceptions

from dashscale.aws import error_code, require_owned, translated
from dashscale.context import Context
from dashscale.model import (
    CREATE,
    DELETE,
    FOREIGN,
    NEW,
    UPDATE,
    Change,
    Item,
    Reading,
    Resource,
    Survey,
    absent,
    compare,
    create,
    is_new,
)

PENDING = "PendingConfirmation"  # the SubscriptionArn of a subscription not confirmed yet
FIVE_XX_PERCENT = 5.0
CPU_PERCENT = 90.0


def topic_name(ctx: Context) -> str:
    return f"{ctx.names.app}-alerts"


def _topic_arn(ctx: Context) -> str | None:
    """The ARN of APP-alerts when it exists (SNS has no lookup by name: the topics listed)."""
    suffix = f":{topic_name(ctx)}"
    for page in ctx.client("sns").get_paginator("list_topics").paginate():
        for topic in page.get("Topics", []):
            if str(topic["TopicArn"]).endswith(suffix):
                return str(topic["TopicArn"])
    return None


def find_topic(ctx: Context) -> dict[str, Any] | None:
    """APP-alerts with its email subscriptions, checked to be this app's; None when missing."""
    sns = ctx.client("sns")
    with translated(f"looking up SNS topic {topic_name(ctx)}"):
        arn = _topic_arn(ctx)
        if arn is None:
            return None
        tags = sns.list_tags_for_resource(ResourceArn=arn).get("Tags", [])
        require_owned(ctx.names, "SNS topic", topic_name(ctx), tags)
        subscriptions = []
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn):
            subscriptions += [s for s in page.get("Subscriptions", []) if s["Protocol"] == "email"]
    return {"TopicArn": arn, "Subscriptions": subscriptions}


class Topic(Resource):
    """The SNS topic APP-alerts the alarms notify."""

    calls = {
        CREATE: ("sns:CreateTopic", "sns:TagResource"),
        DELETE: ("sns:DeleteTopic",),
    }
    key = kind = "SNS topic"

    def configured(self, ctx: Context) -> bool:
        return bool(ctx.config.alert_email)

    finder = staticmethod(find_topic)
    find_calls = ("sns:ListTopics", "sns:ListTagsForResource", "sns:ListSubscriptionsByTopic")
    survey_calls = find_calls
    delete_calls = ("sns:DeleteTopic",)

    def name(self, ctx: Context) -> str:
        return topic_name(ctx)

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        name = self.name(ctx)
        if not ctx.config.alert_email:
            if current is None:
                return absent(self.kind, name)
            return Change(self.kind, name, DELETE, detail="ALERT_EMAIL unset")
        if current is None:
            return create(self.kind, name, "alarms by email")
        return compare(self.kind, name, {}, "alarms by email")

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> Any:
        sns = ctx.client("sns")
        if change.action == DELETE:
            with translated(f"deleting SNS topic {self.name(ctx)}"):
                sns.delete_topic(TopicArn=current["TopicArn"])
            return None
        with translated(f"creating SNS topic {self.name(ctx)}"):
            # idempotent: the same name and tags answer the existing topic's ARN
            return str(sns.create_topic(Name=self.name(ctx), Tags=ctx.names.tags())["TopicArn"])

    def ref(self, ctx: Context, current: Any, change: Change) -> Any:
        if change.action == DELETE:
            return None
        return NEW if current is None else str(current["TopicArn"])

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        return self.found_item(ctx, lambda: find_topic(ctx), reason="with its subscriptions")

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        subscribed = item.data["resource"]["Subscriptions"]
        return item.name, f"{len(subscribed)} email subscription(s)"

    def when_absent(self, ctx: Context, survey: Survey) -> tuple[str, str, str] | None:
        if survey.of(self.key) or not ctx.config.alert_email:
            return None
        return self.name(ctx), "missing", "run `dashscale up`"

    def delete(self, ctx: Context, item: Item) -> str:
        """Its subscriptions go with it (a pending one cannot be removed on its own)."""
        ctx.client("sns").delete_topic(TopicArn=item.data["resource"]["TopicArn"])
        return "with its subscriptions"


class Subscription(Resource):
    """ALERT_EMAIL subscribed to the topic; a former address unsubscribed (once confirmed: a
    pending one cannot be, and lapses after three days)."""

    calls = {
        CREATE: ("sns:Subscribe", "sns:Unsubscribe"),
        UPDATE: ("sns:Unsubscribe",),
    }
    delete_calls = ("sns:Unsubscribe",)
    key = kind = "SNS subscription"
    reads = (Topic.key,)
    needs = (Topic.key,)
    surveys_after = (Topic.key,)

    def configured(self, ctx: Context) -> bool:
        return bool(ctx.config.alert_email)

    def name(self, ctx: Context) -> str:
        return ctx.config.alert_email or f"{topic_name(ctx)} subscription"

    def find(self, ctx: Context, found: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        topic = found.get(Topic.key)
        return None if topic is None else list(topic["Subscriptions"])

    def _others(self, ctx: Context, current: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        """Confirmed subscriptions of other addresses: to unsubscribe."""
        return [
            s
            for s in current or []
            if s["Endpoint"] != ctx.config.alert_email and s["SubscriptionArn"] != PENDING
        ]

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        email = ctx.config.alert_email
        name = self.name(ctx)
        if not email:  # the topic's deletion takes its subscriptions
            return absent(self.kind, name)
        mine = [s for s in current or [] if s["Endpoint"] == email]
        others = self._others(ctx, current)
        if not mine:
            return create(self.kind, name, "AWS mails a confirmation link to follow")
        differing = {"email": ([s["Endpoint"] for s in others], email)} if others else {}
        return compare(self.kind, name, differing, _state(mine[0]))

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> None:
        sns = ctx.client("sns")
        with translated(f"subscribing {ctx.config.alert_email} to the alarms"):
            if change.action == CREATE:
                sns.subscribe(
                    TopicArn=refs[Topic.key], Protocol="email", Endpoint=ctx.config.alert_email
                )
            for other in self._others(ctx, current):
                sns.unsubscribe(SubscriptionArn=other["SubscriptionArn"])

    def ref(self, ctx: Context, current: Any, change: Change) -> None:
        return None

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        """Shown by status (confirmed or not); deleted with the topic."""
        items = []
        for topic in survey.of(Topic.key):
            if topic.action == FOREIGN:
                continue
            for subscription in topic.data["resource"]["Subscriptions"]:
                items.append(
                    Item(
                        self.kind,
                        str(subscription["Endpoint"]),
                        DELETE,
                        _state(subscription),
                        {"resource": subscription},
                    )
                )
        return items

    def delete(self, ctx: Context, item: Item) -> str:
        arn = item.data["resource"]["SubscriptionArn"]
        if arn == PENDING:
            return "goes with the topic (not confirmed)"
        try:
            ctx.client("sns").unsubscribe(SubscriptionArn=arn)
        except botocore.exceptions.ClientError as error:
            if error_code(error) != "NotFound":
                raise
        return ""


def _state(subscription: Mapping[str, Any]) -> str:
    if subscription.get("SubscriptionArn") == PENDING:
        return "pending confirmation: follow the link AWS mailed"
    return "confirmed"


# --- the alarms ----------------------------------------------------------------------------------


def _dimension(arn: str, marker: str) -> str:
    """A load balancer's or target group's CloudWatch dimension: the end of its ARN."""
    return arn.split(marker, 1)[-1] if marker != ":" else arn.rsplit(":", 1)[-1]


def alarm_settings(ctx: Context, which: str, refs: Mapping[str, Any]) -> dict[str, Any]:
    """PutMetricAlarm's fields (without the name, actions and tags) for one alarm."""
    balancer = getattr(refs.get("load balancer"), "arn", NEW)
    group = refs.get("target group") or NEW
    lb = _dimension(str(balancer), ":loadbalancer/")
    if which == "unhealthy-targets":
        return {
            "Namespace": "AWS/ApplicationELB",
            "MetricName": "UnHealthyHostCount",
            "Dimensions": [
                {"Name": "LoadBalancer", "Value": lb},
                {"Name": "TargetGroup", "Value": _dimension(str(group), ":")},
            ],
            "Statistic": "Maximum",
            "Period": 60,
            "EvaluationPeriods": 3,
            "Threshold": 0.0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
        }
    if which == "cpu-high":
        return {
            "Namespace": "AWS/ECS",
            "MetricName": "CPUUtilization",
            "Dimensions": [
                {"Name": "ClusterName", "Value": ctx.names.cluster},
                {"Name": "ServiceName", "Value": ctx.names.service},
            ],
            "Statistic": "Average",
            "Period": 300,
            "EvaluationPeriods": 3,  # 15 minutes
            "Threshold": CPU_PERCENT,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
        }
    return _five_xx_settings(lb)


def _five_xx_settings(lb: str) -> dict[str, Any]:
    def metric(query_id: str, name: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "ReturnData": False,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/ApplicationELB",
                    "MetricName": name,
                    "Dimensions": [{"Name": "LoadBalancer", "Value": lb}],
                },
                "Period": 300,
                "Stat": "Sum",
            },
        }

    rate = {
        "Id": "rate",
        "Label": "5xx responses, % of requests",
        "ReturnData": True,
        "Expression": "100 * (FILL(app, 0) + FILL(lb, 0)) / requests",
    }
    return {
        "Metrics": [
            metric("app", "HTTPCode_Target_5XX_Count"),
            metric("lb", "HTTPCode_ELB_5XX_Count"),
            metric("requests", "RequestCount"),
            rate,
        ],
        "EvaluationPeriods": 2,
        "Threshold": FIVE_XX_PERCENT,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    }


DESCRIPTIONS = {
    "unhealthy-targets": "a target of the load balancer unhealthy for 3 minutes",
    "5xx-rate": f"over {FIVE_XX_PERCENT:g} % of requests answered 5xx, 10 minutes",
    "cpu-high": f"CPU above {CPU_PERCENT:g} % for 15 minutes",
}


def alarm_name(ctx: Context, which: str) -> str:
    return f"{ctx.names.app}-{which}"


def find_alarms(ctx: Context) -> dict[str, dict[str, Any]]:
    """The app's alarms that exist, by name, in one call; a stranger's under one of our names
    is kept with `foreign` set (its owner is checked when its turn comes)."""
    cloudwatch = ctx.client("cloudwatch")
    names = [alarm_name(ctx, which) for which in WHICH]
    found: dict[str, dict[str, Any]] = {}
    with translated("looking up the app's alarms"):
        for alarm in cloudwatch.describe_alarms(AlarmNames=names).get("MetricAlarms", []):
            if alarm.get("AlarmName") not in names:
                continue
            arn = alarm["AlarmArn"]
            tags = cloudwatch.list_tags_for_resource(ResourceARN=arn).get("Tags", [])
            found[str(alarm["AlarmName"])] = {**alarm, "foreign": not ctx.names.owns(tags)}
    return found


def owned(ctx: Context, name: str, alarms: Mapping[str, dict[str, Any]] | None) -> Any:
    """The alarm `name` of those read, checked to be this app's; None when missing."""
    alarm = (alarms or {}).get(name)
    if alarm is None:
        return None
    require_owned(ctx.names, "alarm", name, None if alarm["foreign"] else ctx.names.tags())
    return alarm


class Alarms(Reading):
    """The three alarms, read in one call for all of them."""

    key = "alarms"
    finder = staticmethod(find_alarms)
    find_calls = ("cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource")


def _query_view(query: Mapping[str, Any]) -> tuple[Any, ...]:
    stat = query.get("MetricStat") or {}
    metric = stat.get("Metric") or {}
    return (
        query.get("Id"),
        query.get("Expression"),
        metric.get("MetricName"),
        tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions") or [])),
        stat.get("Stat"),
        stat.get("Period"),
    )


def alarm_view(alarm: Mapping[str, Any]) -> tuple[Any, ...]:
    """What an alarm is, as compared between AWS's description and the wanted settings."""
    return (
        alarm.get("Namespace"),
        alarm.get("MetricName"),
        tuple(sorted((d["Name"], d["Value"]) for d in alarm.get("Dimensions") or [])),
        alarm.get("Statistic"),
        alarm.get("Period"),
        tuple(sorted(_query_view(q) for q in alarm.get("Metrics") or [])),
        int(alarm.get("EvaluationPeriods", 0)),
        float(alarm.get("Threshold", 0.0)),
        alarm.get("ComparisonOperator"),
        alarm.get("TreatMissingData", "missing"),
        tuple(alarm.get("AlarmActions") or []),
        tuple(alarm.get("OKActions") or []),
    )


class Alarm(Resource):
    """One CloudWatch alarm of ALERT_EMAIL's, notifying the topic."""

    calls = {
        CREATE: ("cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"),
        UPDATE: ("cloudwatch:PutMetricAlarm",),
        DELETE: ("cloudwatch:DeleteAlarms",),
    }
    kind = "alarm"
    survey_calls = Alarms.find_calls

    def configured(self, ctx: Context) -> bool:
        return bool(ctx.config.alert_email)

    delete_calls = ("cloudwatch:DeleteAlarms",)

    def __init__(self, which: str) -> None:
        self.which = which
        self.key = f"{which} alarm"
        balancer = () if which == "cpu-high" else ("load balancer", "target group")
        self.needs = (Topic.key, *balancer)

    reads = (Alarms.key,)

    def name(self, ctx: Context) -> str:
        return alarm_name(ctx, self.which)

    def find(self, ctx: Context, found: Mapping[str, Any]) -> dict[str, Any] | None:
        return owned(ctx, self.name(ctx), found[Alarms.key])

    def wanted(self, ctx: Context, refs: Mapping[str, Any]) -> dict[str, Any]:
        topic = str(refs.get(Topic.key) or NEW)
        return {
            **alarm_settings(ctx, self.which, refs),
            "AlarmActions": [topic],
            "OKActions": [topic],
        }

    def plan(self, ctx: Context, current: Any, refs: Mapping[str, Any]) -> Change:
        name = self.name(ctx)
        detail = DESCRIPTIONS[self.which]
        if not ctx.config.alert_email:
            if current is None:
                return absent(self.kind, name)
            return Change(self.kind, name, DELETE, detail="ALERT_EMAIL unset")
        if current is None:
            return create(self.kind, name, detail)
        wanted = self.wanted(ctx, refs)
        if any(is_new(v) for v in wanted["AlarmActions"]) or alarm_view(current) != alarm_view(
            wanted
        ):
            return compare(self.kind, name, {"settings": ("as found", detail)}, detail)
        return compare(self.kind, name, {}, detail)

    def apply(self, ctx: Context, current: Any, refs: Mapping[str, Any], change: Change) -> None:
        cloudwatch = ctx.client("cloudwatch")
        name = self.name(ctx)
        if change.action == DELETE:
            with translated(f"deleting alarm {name}"):
                cloudwatch.delete_alarms(AlarmNames=[name])
            return
        with translated(f"setting up alarm {name}"):
            cloudwatch.put_metric_alarm(
                AlarmName=name,
                AlarmDescription=f"{ctx.names.app}: {DESCRIPTIONS[self.which]} (dashscale)",
                ActionsEnabled=True,
                Tags=ctx.names.tags(),
                **self.wanted(ctx, refs),
            )

    def ref(self, ctx: Context, current: Any, change: Change) -> None:
        return None

    def survey(self, ctx: Context, survey: Survey) -> list[Item]:
        alarms = survey.shared(Alarms.key, lambda: find_alarms(ctx))
        return self.found_item(ctx, lambda: owned(ctx, self.name(ctx), alarms))

    def shown(self, ctx: Context, item: Item) -> tuple[str, str]:
        alarm = item.data["resource"]
        return item.name, f"{alarm.get('StateValue')}: {DESCRIPTIONS[self.which]}"

    def status_state(self, ctx: Context, item: Item) -> str:
        return "ALARM" if item.data["resource"].get("StateValue") == "ALARM" else "found"

    def when_absent(self, ctx: Context, survey: Survey) -> tuple[str, str, str] | None:
        if survey.of(self.key) or not ctx.config.alert_email:
            return None
        return self.name(ctx), "missing", "run `dashscale up`"

    def delete(self, ctx: Context, item: Item) -> str:
        ctx.client("cloudwatch").delete_alarms(AlarmNames=[item.name])
        return ""


def in_alarm(ctx: Context, items: list[Item]) -> list[dict[str, str]]:
    """The app's alarms in ALARM, with AWS's reason, for `status`."""
    return [
        {
            "name": item.name,
            "state": "ALARM",
            "reason": str(item.data["resource"].get("StateReason", "")),
            "since": str(item.data["resource"].get("StateUpdatedTimestamp", "")),
        }
        for item in items
        if item.action != FOREIGN and item.data["resource"].get("StateValue") == "ALARM"
    ]


WHICH = ("unhealthy-targets", "5xx-rate", "cpu-high")
READINGS: tuple[Reading, ...] = (Alarms(),)
RESOURCES: tuple[Resource, ...] = (Topic(), Subscription(), *(Alarm(which) for which in WHICH))

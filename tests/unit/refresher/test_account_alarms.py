"""Each account signal has a metric the refresher emits and an alarm in the template that watches it,
with the namespace and dimension the metric really carries."""

from typing import Any

import pytest

from igdm.runtime.observability import metrics
from local.aws.template import load
from refresher.scheduled_run import publish_metrics
from refresher.service import RunReport

TEMPLATE = load()
ENVIRONMENT = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]


def _alarms() -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}


def _watched(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    if "MetricName" in alarm:
        return [alarm]
    return [q["MetricStat"]["Metric"] for q in alarm.get("Metrics", []) if "MetricStat" in q]


def _emitted() -> dict[str, Any]:
    report = RunReport(
        accounts=3,
        refreshed=["1"],
        refresh_failed=["2"],
        needs_reauthorisation=["3"],
        resubscribed=["1"],
        earliest_expiry_days=5.5,
    )
    publish_metrics(report)
    document = dict(metrics.serialize_metric_set())
    metrics.clear_metrics()
    return document


@pytest.mark.parametrize(
    ("metric", "alarm"),
    [
        ("DaysUntilEarliestTokenExpiry", "TokenExpiryAlarm"),
        ("TokenRefreshFailures", "TokenRefreshFailedAlarm"),
        ("AccountsNeedingReauthorisation", "AccountNeedsReauthorisationAlarm"),
        ("Resubscriptions", "WebhookSubscriptionDroppedAlarm"),
        ("ResubscriptionFailures", "WebhookSubscriptionDroppedAlarm"),
        ("Accounts", "RefresherNotRunningAlarm"),
    ],
)
def test_every_account_signal_is_emitted_and_alarmed(metric: str, alarm: str) -> None:
    document = _emitted()
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert metric in {m["Name"] for m in directive["Metrics"]}
    assert directive["Namespace"] == ENVIRONMENT["POWERTOOLS_METRICS_NAMESPACE"]
    assert document["service"] == ENVIRONMENT["POWERTOOLS_SERVICE_NAME"]
    properties = _alarms()[alarm]
    [watched] = [w for w in _watched(properties) if w["MetricName"] == metric]
    assert watched["Namespace"] == ENVIRONMENT["POWERTOOLS_METRICS_NAMESPACE"]
    assert watched["Dimensions"] == [{"Name": "service", "Value": ENVIRONMENT["POWERTOOLS_SERVICE_NAME"]}]
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_expiry_alarm_fires_at_the_warning_threshold() -> None:
    alarm = _alarms()["TokenExpiryAlarm"]
    assert alarm["Threshold"] == {"Ref": "TokenExpiryWarningDays"}
    assert alarm["ComparisonOperator"] == "LessThanOrEqualToThreshold" and alarm["Statistic"] == "Minimum"

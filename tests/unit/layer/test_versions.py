"""The Graph API version the gateway pins, and the days left until Meta retires it (igdm.meta.versions)."""

from datetime import UTC, datetime

import pytest

from igdm.meta.versions import DEFAULT_GRAPH_API_VERSION, SUNSETS, days_to_sunset
from local.aws.template import load


def at(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


def test_the_default_version_is_current_and_its_sunset_is_known() -> None:
    assert DEFAULT_GRAPH_API_VERSION >= "v25.0" and DEFAULT_GRAPH_API_VERSION in SUNSETS
    assert load()["Parameters"]["GraphApiVersion"]["Default"] == DEFAULT_GRAPH_API_VERSION


@pytest.mark.parametrize(
    ("version", "now", "days"),
    [
        ("v25.0", "2028-04-30", 90.0),  # the alarm's threshold: 90 days before 2028-07-29
        ("v24.0", "2028-02-18", 0.0),
        ("v20.0", "2026-12-06", -73.0),  # retired already (2026-09-24)
    ],
)
def test_days_to_sunset(version: str, now: str, days: float) -> None:
    assert days_to_sunset(version, at(now)) == pytest.approx(days)


def test_an_unknown_version_has_no_sunset_rather_than_a_guess() -> None:
    assert days_to_sunset("v99.0", at("2026-12-06")) is None


def test_the_sunset_alarm_fires_90_days_ahead() -> None:
    alarm = load()["Resources"]["GraphApiSunsetAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "DaysUntilGraphApiSunset",
        90,
        "LessThanOrEqualToThreshold",
    )

"""One scheduled run of the refresher, as Lambda sees it: the accounts checked (every one, unless time ran out
first: the next run starts with those left), the run's figures as the metrics the template's alarms watch, one
summary line, and, when a retry may fix what failed (Meta or AWS not answering), an exception once the run is
over, so Lambda's asynchronous retries try again within minutes and a run that never succeeds lands in the
dead-letter queue. A dead token is not such a failure: its alarm and event say what to do."""

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from igdm.runtime.invocation import time_left
from igdm.runtime.observability import logger, metrics
from refresher.service import Refresher, RunReport


class RefreshIncomplete(Exception):
    """Some accounts could not be checked or refreshed this time; the run is retried."""


class ScheduledRun:
    def __init__(self, refresher: Callable[[], Refresher], default_seconds: float = 300.0) -> None:
        self._refresher = refresher
        self._default_seconds = default_seconds  # the time left, when invoked without a Lambda context

    def __call__(self, context: Any) -> dict[str, object]:
        remaining = time_left(context, self._default_seconds)  # from the start: building counts too
        refresher = self._refresher()
        refresher.remaining_seconds = remaining
        report = refresher.run()
        publish_metrics(report)
        summary = report.summary()
        logger.info("refresher run", extra=summary)
        if report.retry_worthy:
            raise RefreshIncomplete(f"incomplete run: {summary}")
        return summary


def publish_metrics(report: RunReport) -> None:
    """Zeros too: an alarm on a metric that only appears when something fails cannot tell 'all well'
    from 'the refresher stopped running'."""
    for name, value in (
        ("Accounts", report.accounts),
        ("TokenRefreshes", len(report.refreshed)),
        ("TokenRefreshFailures", len(report.refresh_failed)),
        ("AccountsNeedingReauthorisation", len(report.needs_reauthorisation)),
        ("AccountsExpiring", len(report.expiring)),
        ("Resubscriptions", len(report.resubscribed)),
        ("TokensRescued", len(report.rescued)),
        ("ResubscriptionFailures", len(report.subscription_failed)),
        ("AccountCheckFailures", len(report.check_failed)),
        ("AccountsDeferred", len(report.deferred)),
        ("ProfilesRestored", len(report.profiles_restored)),
        ("ProfileCheckFailures", len(report.profile_failed)),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if report.graph_api_sunset_days is not None:  # GraphApiSunsetAlarm at 90 days
        metrics.add_metric(
            name="DaysUntilGraphApiSunset", unit=MetricUnit.NoUnit, value=round(report.graph_api_sunset_days, 3)
        )
    if report.earliest_expiry_days is not None:
        metrics.add_metric(
            name="DaysUntilEarliestTokenExpiry", unit=MetricUnit.NoUnit, value=round(report.earliest_expiry_days, 3)
        )

"""Lambda entry point for the schedule (EventBridge Scheduler, daily by default): wiring and metrics.

The run's figures become the metrics the template's alarms watch. A run with failures that a retry
may fix (Meta or AWS not answering) raises at the end, after every account was checked, so Lambda's
asynchronous retries try again within minutes and a run that never succeeds lands in the dead-letter
queue; a dead token is not such a failure (its alarm and event say what to do).
"""

import time
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from igdm import aws
from igdm.account_events import AccountEventPublisher
from igdm.accounts import AccountTable, TokenRescue, TokenVault
from igdm.config import cached_settings
from igdm.instagram_login import InstagramLogin
from igdm.observability import logger, metrics
from refresher.service import DAY, Refresher, RunReport
from refresher.settings import RefresherSettings


class RefreshIncomplete(Exception):
    """Some accounts could not be checked or refreshed this time; the run is retried."""


@cache
def _refresher() -> Refresher:
    settings = cached_settings(RefresherSettings)
    return Refresher(
        accounts=AccountTable(aws.client("dynamodb"), settings.table_name),
        vault=TokenVault(aws.client("secretsmanager"), settings.account_secret_prefix),
        rescue=TokenRescue(aws.client("dynamodb"), settings.table_name),
        login=InstagramLogin(
            graph_base_url=settings.graph_api_base_url, api_version=settings.graph_api_version, oauth_token_url=""
        ),  # nosec B106 # a URL, unused: the refresher never exchanges codes
        events=AccountEventPublisher(aws.client("sqs"), settings.events_queue_url),
        webhook_fields=settings.webhook_fields,
        window_seconds=settings.refresh_window_days * DAY,
        warning_seconds=settings.token_expiry_warning_days * DAY,
    )


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
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if report.earliest_expiry_days is not None:
        metrics.add_metric(
            name="DaysUntilEarliestTokenExpiry", unit=MetricUnit.NoUnit, value=round(report.earliest_expiry_days, 3)
        )


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
    deadline = time.monotonic() + (context.get_remaining_time_in_millis() / 1000 if context else 300)
    refresher = _refresher()
    refresher.remaining_seconds = lambda: deadline - time.monotonic()
    report = refresher.run()
    publish_metrics(report)
    summary = report.summary()
    logger.info("refresher run", extra=summary)
    if report.retry_worthy:
        raise RefreshIncomplete(f"incomplete run: {summary}")
    return summary

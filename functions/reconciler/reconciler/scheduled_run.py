"""One scheduled run of the reconciler, as Lambda sees it: every account read within the run's budget and
time, the run's figures as metrics (zeros too: an alarm cannot tell "nothing to backfill" from "not
running" otherwise), and one summary line. A run cut short is not an error: the next one resumes."""

from collections.abc import Callable
from typing import Any

from igdm.runtime.invocation import time_left
from igdm.runtime.observability import count, logger
from reconciler.service import Reconciler, RunReport


class ScheduledRun:
    def __init__(self, reconciler: Callable[[], Reconciler], default_seconds: float = 840.0) -> None:
        self._reconciler = reconciler
        self._default_seconds = default_seconds  # the time left, when invoked without a Lambda context

    def __call__(self, context: Any) -> dict[str, Any]:
        remaining = time_left(context, self._default_seconds)  # from the start: building counts too
        reconciler = self._reconciler()
        reconciler.remaining_seconds = remaining
        report = reconciler.run()
        publish_metrics(report)
        summary = report.summary()
        logger.info("reconciler run", extra=summary)
        return summary


def publish_metrics(report: RunReport) -> None:
    count("MessagesBackfilled", sum(report.backfilled.values()))
    count("MessageGaps", report.gaps)
    count("ConversationsApiCalls", report.calls)
    count("ReconcileErrors", len(report.errors))
    count("WebhooksSilent", len(report.silent))
    count("Resubscriptions", len(report.resubscribed))  # as the refresher's: WebhookSubscriptionDroppedAlarm
    count("UnknownSettled", report.unknown_delivered + report.unknown_failed)
    count("UnknownLeft", report.unknown_left)
    if report.unknown_failed:  # as the sender counts its failures, one line per reason
        count("MessagesFailed", report.unknown_failed, reason="not_delivered")
    for account_id in report.silent:
        count("WebhooksSilent", 1, account_id=account_id)
    for account_id, backfilled in report.backfilled.items():
        # Per account too: a steady count for one account means its webhooks are not arriving.
        count("MessagesBackfilled", backfilled, account_id=account_id)

"""Lambda entry point for the schedule (EventBridge Scheduler, every 15 minutes by default): reconciler.wiring
builds it, reconciler.scheduled_run runs it."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from igdm.runtime.observability import logger, metrics
from reconciler import wiring


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
    return wiring.scheduled_run(context)

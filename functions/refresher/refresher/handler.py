"""Lambda entry point for the schedule (EventBridge Scheduler, daily by default): refresher.wiring builds
it, refresher.scheduled_run runs it."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from igdm.runtime.observability import logger, metrics
from refresher import wiring


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
    return wiring.scheduled_run(context)

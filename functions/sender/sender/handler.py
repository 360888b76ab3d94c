"""Lambda entry point for the outbound queue (sender.wiring builds it; igdm.runtime.fifo_consumer runs the batch)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from igdm.runtime.observability import logger, metrics
from sender import wiring


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.consumer()(event, context)

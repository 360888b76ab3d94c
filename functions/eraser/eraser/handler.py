"""Lambda entry point for the erasure queue (eraser.wiring builds it; eraser.jobs runs the batch)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from eraser import wiring
from igdm.runtime.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.jobs()(event, context)

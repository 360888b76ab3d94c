"""Lambda entry point for GET and POST /webhook (webhook.wiring builds it; webhook.api answers)."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from igdm.runtime.observability import logger, metrics
from webhook import wiring


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.api(event)

"""Lambda entry point for the table's stream (fanout.wiring builds the service; fanout.service fans each batch out
to the event webhooks)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from fanout import wiring
from igdm.runtime.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records: list[dict[str, Any]] = event.get("Records") or []
    return wiring.service().handle(records)

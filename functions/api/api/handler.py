"""Lambda entry point for the HTTP API's /v1 routes (api.wiring builds it; api.service answers)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from api import wiring
from igdm.runtime.observability import logger


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.api(event)

"""Lambda entry point for the HTTP API's authorizer (authorizer.wiring builds it; authorizer.service answers)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from authorizer import wiring
from igdm.runtime.observability import logger


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.service()(event)

"""Lambda entry point for GET /oauth/start and GET /oauth/callback (onboarding.wiring builds it;
onboarding.api answers)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from igdm.runtime.observability import logger
from onboarding import wiring


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.api(event)

"""Lambda entry point for the onboarding pages and Meta's callbacks (onboarding.wiring builds it;
onboarding.api answers)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from igdm.runtime.observability import logger
from onboarding import wiring


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.api(event)

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


def _after_snapshot_restore() -> None:
    """With SnapStart (WebhookSnapStart), each restored instance reads the app secret, its settings and its
    clients anew: nothing read before the snapshot (none is, today: tests/unit/webhook/test_snapshot_safe.py) may
    be shared by every instance restored from it, or outlive a rotation of the secret."""
    wiring.reset()


try:  # the SnapStart hooks library, part of Lambda's Python runtimes; absent elsewhere, where nothing is restored
    from snapshot_restore_py import register_after_restore  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - outside Lambda
    pass
else:  # pragma: no cover - in Lambda
    register_after_restore(_after_snapshot_restore)

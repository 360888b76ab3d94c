"""Lambda entry point for GET/POST /webhook: wiring, request decoding and error mapping only."""

import base64
import binascii
import json
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from igdm import aws
from igdm.config import ConfigurationError, cached_settings
from igdm.observability import logger, metrics
from webhook import service
from webhook.app_secrets import SecretsManagerAppSecret, SecretUnavailable
from webhook.dynamodb_store import DynamoEventStore
from webhook.service import Rejected, StorageUnavailable
from webhook.settings import WebhookSettings
from webhook.sqs_publisher import SqsEventPublisher

app = APIGatewayHttpResolver()


@cache
def _secret_source() -> SecretsManagerAppSecret:
    settings = cached_settings(WebhookSettings)
    return SecretsManagerAppSecret(aws.client("secretsmanager"), settings.app_secret_name,
                                   settings.secret_max_age_seconds)


@cache
def _store() -> DynamoEventStore:
    settings = cached_settings(WebhookSettings)
    return DynamoEventStore(aws.client("dynamodb"), settings.table_name, settings.event_retention_days)


@cache
def _publisher() -> SqsEventPublisher:
    return SqsEventPublisher(aws.client("sqs"), cached_settings(WebhookSettings).events_queue_url)


@app.get("/webhook")
def verify_subscription() -> Response[str]:
    params = app.current_event.query_string_parameters or {}
    challenge = service.handshake(params, _secret_source().current().verify_token)
    metrics.add_metric(name="HandshakeVerified", unit=MetricUnit.Count, value=1)
    logger.info("webhook subscription verified")
    return Response(200, content_types.TEXT_PLAIN, challenge)


@app.post("/webhook")
def receive_events() -> Response[str]:
    event = app.current_event
    result = service.receive(
        body=_raw_body(event.body, bool(event.is_base64_encoded)),
        signature=_header(event.headers, "x-hub-signature-256"),
        received_at_ms=event.request_context.time_epoch,
        secrets=_secret_source(),
        max_body_bytes=cached_settings(WebhookSettings).max_body_bytes,
        store=_store(),
        publisher=_publisher(),
    )
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=result.published)
    metrics.add_metric(name="EventsDuplicate", unit=MetricUnit.Count, value=result.duplicates)
    for kind, count in result.kinds.items():
        with single_metric(name="EventsReceived", unit=MetricUnit.Count, value=count,
                           namespace=metrics.namespace) as metric:
            metric.add_dimension(name="kind", value=kind)
    logger.info("webhook accepted", extra={"received": result.received, "published": result.published,
                                           "duplicates": result.duplicates, "kinds": result.kinds,
                                           "app_secret_index": result.secret_index})
    body = {"received": result.received, "published": result.published, "duplicates": result.duplicates}
    return Response(200, content_types.APPLICATION_JSON, json.dumps(body))


@app.exception_handler(Rejected)  # type: ignore[untyped-decorator]
def rejected(exc: Rejected) -> Response[str]:
    metrics.add_metric(name=exc.metric, unit=MetricUnit.Count, value=1)
    logger.warning("webhook request rejected", extra={"status": exc.status, "reason": exc.reason})
    return Response(exc.status, content_types.APPLICATION_JSON, json.dumps({"error": exc.reason}))


@app.exception_handler(StorageUnavailable)  # type: ignore[untyped-decorator]
def storage_unavailable(exc: StorageUnavailable) -> Response[str]:
    metrics.add_metric(name="StorageFailures", unit=MetricUnit.Count, value=1)
    logger.error("events not durable; asking Meta to retry", extra={"reason": str(exc)})
    return Response(503, content_types.APPLICATION_JSON,
                    json.dumps({"error": "events could not be stored; retry later"}))


@app.exception_handler(SecretUnavailable)  # type: ignore[untyped-decorator]
def secret_unavailable(exc: SecretUnavailable) -> Response[str]:
    metrics.add_metric(name="SecretReadFailures", unit=MetricUnit.Count, value=1)
    logger.error("app secret unreadable; asking Meta to retry", extra={"reason": str(exc)})
    return Response(503, content_types.APPLICATION_JSON, json.dumps({"error": "secret unavailable; retry later"}))


@app.exception_handler(ConfigurationError)  # type: ignore[untyped-decorator]
def misconfigured(exc: ConfigurationError) -> Response[str]:
    metrics.add_metric(name="ConfigurationErrors", unit=MetricUnit.Count, value=1)
    logger.error("function is misconfigured", extra={"reason": str(exc)})
    return Response(500, content_types.APPLICATION_JSON, json.dumps({"error": "gateway misconfigured"}))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


def _raw_body(body: str | None, is_base64: bool) -> bytes:
    """The exact bytes Meta signed: API Gateway base64-encodes bodies it cannot pass as text."""
    if not body:
        return b""
    if not is_base64:
        return body.encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected(400, "body is marked base64 but is not valid base64", "MalformedBody") from None


def _header(headers: dict[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None

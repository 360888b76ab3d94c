"""Lambda entry point for the callback queue: Powertools' FIFO batch processing, wiring only.

Each outbound message's callbacks form one message group, so a message's SENT reaches its receiver
before its DELIVERED, while a slow receiver holds up only its own messages' callbacks.
"""

import time
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from callback.http_client import CallbackClient
from callback.service import CallbackDelivery
from callback.settings import CallbackSettings
from callback.signing_secret import SigningSecret
from igdm import aws, observability
from igdm.config import cached_settings
from igdm.observability import logger, metrics
from igdm.sqs_retry import hand_back, release_skipped


class _DeadLetters:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def put(self, job_body: str, *, group_id: str | None, deduplication_id: str, reason: str, detail: str) -> None:
        # If this fails the record fails too, and comes back: nothing is dropped.
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=job_body,
            MessageGroupId=group_id or "callbacks",
            MessageDeduplicationId=deduplication_id[:128],
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason},
                "detail": {"DataType": "String", "StringValue": detail[:1024] or "-"},
            },
        )


class _Metrics:
    count = staticmethod(observability.count)


@cache
def _delivery() -> CallbackDelivery:
    settings = cached_settings(CallbackSettings)
    secret = SigningSecret(aws.client("secretsmanager"), settings.callback_secret_name, settings.secret_max_age_seconds)
    return CallbackDelivery(
        client=CallbackClient(
            allow_local=settings.allow_local_callbacks,
            connect_timeout=settings.callback_connect_timeout_seconds,
            read_timeout=settings.callback_read_timeout_seconds,
        ),
        signing_secret=secret.current,
        dead_letters=_DeadLetters(aws.client("sqs"), settings.callback_dead_letter_queue_url),
        metrics=_Metrics(),
        max_receive_count=settings.callback_max_receive_count,
        retry_base_seconds=settings.callback_retry_base_seconds,
        retry_cap_seconds=settings.callback_retry_cap_seconds,
    )


def _record_handler(record: SQSRecord) -> None:
    delivery = _delivery()
    receive_count = int(record.attributes.approximate_receive_count or 1)
    try:
        outcome = delivery.process(
            record.body,
            sqs_message_id=record.message_id,
            group_id=record.attributes.message_group_id,
            receive_count=receive_count,
        )
    except Exception as exc:  # Secrets Manager or SQS unavailable, or no signing secret: retried, never dropped
        raise hand_back(
            aws.client("sqs"),
            cached_settings(CallbackSettings).callback_queue_url,
            record,
            exc,
            fallback_delay=delivery.backoff_seconds(receive_count),
            receive_count=receive_count,
            what="callback",
            delayed=_retried,
        ) from None
    logger.info("callback processed", extra={"sqs_message_id": record.message_id, "outcome": outcome})


processor = SqsFifoPartialProcessor(skip_group_on_error=True)
processor.raise_on_entire_batch_failure = False  # each failed record already carries its retry delay

_retried: set[str] = set()  # message ids given their own retry delay in this invocation


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deadline = time.monotonic() + (context.get_remaining_time_in_millis() / 1000 if context else 60)
    _delivery().remaining_seconds = lambda: deadline - time.monotonic()
    _retried.clear()
    response: dict[str, Any] = dict(
        process_partial_response(event=event, record_handler=_record_handler, processor=processor, context=context)
    )
    release_skipped(aws.client("sqs"), cached_settings(CallbackSettings).callback_queue_url, event, response, _retried)
    return response

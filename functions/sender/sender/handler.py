"""Lambda entry point for the outbound queue: Powertools' FIFO batch processing, wiring only.

A failed record fails the rest of its message group in this batch (so the conversation keeps its
order) while the other groups go on; ReportBatchItemFailures returns only those to the queue.
"""

import time
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from igdm import aws, observability
from igdm.account_events import AccountEventPublisher
from igdm.accounts import AccountDirectory
from igdm.config import cached_settings
from igdm.observability import logger, metrics
from igdm.outbound_records import OutboundRecords
from igdm.sqs_retry import hand_back, release_skipped
from igdm.status_events import StatusPublisher
from igdm.table import CONVERSATION_STATE_SK, conversation_pk
from sender.graph import GraphClient
from sender.rate_limit import RateLimiter, intervals
from sender.service import Sender, backoff_seconds
from sender.settings import SenderSettings


class _Conversations:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def last_user_message_at(self, account_id: str, customer_id: str) -> int | None:
        item = self._client.get_item(
            TableName=self._table,
            ConsistentRead=True,
            ProjectionExpression="last_user_message_at",
            Key={"pk": {"S": conversation_pk(account_id, customer_id)}, "sk": {"S": CONVERSATION_STATE_SK}},
        ).get("Item")
        value = (item or {}).get("last_user_message_at", {}).get("N")
        return int(value) if value is not None else None


class _Metrics:
    count = staticmethod(observability.count)


@cache
def _sender() -> Sender:
    settings = cached_settings(SenderSettings)
    dynamodb = aws.client("dynamodb")
    return Sender(
        records=OutboundRecords(dynamodb, settings.table_name, settings.event_retention_days),
        accounts=AccountDirectory(
            dynamodb,
            settings.table_name,
            aws.client("secretsmanager"),
            secret_max_age_seconds=settings.secret_max_age_seconds,
            events=AccountEventPublisher(aws.client("sqs"), settings.events_queue_url),
        ),
        graph=GraphClient(settings.graph_api_base_url, settings.graph_api_version, settings.graph_timeout_seconds),
        limiter=RateLimiter(
            dynamodb,
            settings.table_name,
            intervals(
                settings.text_rate_per_second,
                settings.media_rate_per_second,
                settings.private_replies_per_hour,
                settings.rate_headroom,
            ),
        ),
        statuses=StatusPublisher(aws.client("sqs"), settings.events_queue_url, settings.callback_queue_url),
        conversations=_Conversations(dynamodb, settings.table_name),
        metrics=_Metrics(),
        max_receive_count=settings.max_receive_count,
        allow_local_callbacks=settings.allow_local_callbacks,
    )


def _record_handler(record: SQSRecord) -> None:
    sender = _sender()
    receive_count = int(record.attributes.approximate_receive_count or 1)
    try:
        status = sender.process(record.body, sqs_message_id=record.message_id, receive_count=receive_count)
    except Exception as exc:  # DynamoDB, SQS or Secrets Manager unavailable: retried like a transient Graph failure
        raise hand_back(
            aws.client("sqs"),
            cached_settings(SenderSettings).outbound_queue_url,
            record,
            exc,
            fallback_delay=backoff_seconds(receive_count),
            receive_count=receive_count,
            what="outbound message",
            delayed=_retried,
        ) from None
    logger.info(
        "outbound message processed",
        extra={"sqs_message_id": record.message_id, "status": status, "receive_count": receive_count},
    )


processor = SqsFifoPartialProcessor(skip_group_on_error=True)
# A batch whose every record is being retried later is not a function error: each record already
# carries its own retry delay, and an error would only add noise to the Errors metric.
processor.raise_on_entire_batch_failure = False


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deadline = time.monotonic() + (context.get_remaining_time_in_millis() / 1000 if context else 30)
    _sender().remaining_seconds = lambda: deadline - time.monotonic()
    _retried.clear()
    response: dict[str, Any] = dict(
        process_partial_response(event=event, record_handler=_record_handler, processor=processor, context=context)
    )
    release_skipped(aws.client("sqs"), cached_settings(SenderSettings).outbound_queue_url, event, response, _retried)
    return response


_retried: set[str] = set()  # message ids given their own retry delay in this invocation

"""SQS adapter: publishes events on the FIFO events queue, one message group per conversation."""

import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from igdm.contracts.event_kinds import SCHEMA_VERSION
from igdm.contracts.serialized import SerializedEvent
from igdm.runtime.aws import backoff
from igdm.runtime.observability import logger, metrics

_BATCH_ENTRIES = 10  # SendMessageBatch's limit
_BATCH_BYTES = 256 * 1024  # SendMessageBatch's payload limit, bodies and attributes together
_ENTRY_OVERHEAD = 512  # attributes and ids, generously
_ATTEMPTS = 3
_GROUP_ID = re.compile(r"[!-~]{1,128}")  # SQS: up to 128 letters, digits and punctuation


class SqsEventPublisher:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def publish(self, events: Sequence[SerializedEvent]) -> list[SerializedEvent]:
        accepted: list[SerializedEvent] = []
        for batch in _batches(events):
            sent = self._send(batch)
            accepted.extend(sent)
            if len(sent) < len(batch):
                # Stop: later events may belong to the same conversation and must not overtake.
                break
        return accepted

    def _send(self, batch: list[SerializedEvent]) -> list[SerializedEvent]:
        pending = dict(enumerate(batch))
        accepted_in_attempt: dict[int, int] = {}
        for attempt in range(_ATTEMPTS):
            if attempt:
                backoff(attempt)
            try:
                response = self._client.send_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[_entry(str(i), s) for i, s in pending.items()],
                )
            except (ClientError, BotoCoreError) as exc:
                logger.warning("SendMessageBatch failed", extra={"error": type(exc).__name__})
                continue
            for ok in response.get("Successful", []):
                pending.pop(int(ok["Id"]), None)
                accepted_in_attempt[int(ok["Id"])] = attempt
            failed = response.get("Failed", [])
            if failed:
                logger.warning("SQS refused events", extra={"codes": sorted({f.get("Code", "") for f in failed})})
            for refusal in failed:
                if refusal.get("SenderFault"):  # refused for the entry itself: repeating it cannot succeed
                    pending.pop(int(refusal["Id"]), None)
            if not pending:
                break
        _count_overtaken(batch, accepted_in_attempt)
        return [s for i, s in enumerate(batch) if i in accepted_in_attempt]


def _count_overtaken(batch: list[SerializedEvent], accepted_in_attempt: dict[int, int]) -> None:
    """SQS may take a later entry of a conversation while refusing an earlier one: that conversation's
    order is then broken. Rare (entry-level failures), never silent: logged and counted."""
    never = len(batch) + _ATTEMPTS
    overtaken = sum(
        1
        for i, earlier in enumerate(batch)
        if any(
            later.event.conversation_id == earlier.event.conversation_id
            and accepted_in_attempt.get(j, never) < accepted_in_attempt.get(i, never)
            for j, later in enumerate(batch[i + 1 :], start=i + 1)
        )
    )
    if overtaken:
        logger.error("events published out of order within their conversation", extra={"count": overtaken})
        metrics.add_metric(name="EventsOutOfOrder", unit=MetricUnit.Count, value=overtaken)


def group_id(conversation_id: str) -> str:
    """The conversation id itself when SQS accepts it as a group id, else a stable digest of it."""
    if _GROUP_ID.fullmatch(conversation_id):
        return conversation_id
    return "sha256-" + hashlib.sha256(conversation_id.encode("utf-8", "surrogatepass")).hexdigest()


def _entry(entry_id: str, serialized: SerializedEvent) -> dict[str, Any]:
    event = serialized.event
    return {
        "Id": entry_id,
        "MessageBody": serialized.body,
        "MessageGroupId": group_id(event.conversation_id),
        "MessageDeduplicationId": event.event_id,
        "MessageAttributes": {
            "kind": {"DataType": "String", "StringValue": event.kind.value},
            "account_id": {"DataType": "String", "StringValue": event.account_id},
            "schema_version": {"DataType": "String", "StringValue": SCHEMA_VERSION},
        },
    }


def _batches(events: Sequence[SerializedEvent]) -> Iterator[list[SerializedEvent]]:
    batch: list[SerializedEvent] = []
    size = 0
    for serialized in events:
        entry_size = len(serialized.body) + _ENTRY_OVERHEAD  # bodies are ASCII: characters are bytes
        if batch and (len(batch) == _BATCH_ENTRIES or size + entry_size > _BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(serialized)
        size += entry_size
    if batch:
        yield batch

"""SQS adapter: publishes events on the FIFO events queue, one message group per conversation."""

from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from igdm.events import SCHEMA_VERSION
from igdm.observability import logger
from webhook.service import SerializedEvent

_BATCH_ENTRIES = 10  # SendMessageBatch's limit
_BATCH_BYTES = 256 * 1024  # SendMessageBatch's payload limit, bodies and attributes together
_ENTRY_OVERHEAD = 512  # attributes and ids, generously
_ATTEMPTS = 3


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
        for _ in range(_ATTEMPTS):
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
            failed = response.get("Failed", [])
            if failed:
                logger.warning("SQS refused events", extra={"codes": sorted({f.get("Code", "") for f in failed})})
            if not pending:
                break
        return [s for i, s in enumerate(batch) if i not in pending]


def _entry(entry_id: str, serialized: SerializedEvent) -> dict[str, Any]:
    event = serialized.event
    return {
        "Id": entry_id,
        "MessageBody": serialized.body,
        "MessageGroupId": event.conversation_id,
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
        entry_size = len(serialized.body.encode()) + _ENTRY_OVERHEAD
        if batch and (len(batch) == _BATCH_ENTRIES or size + entry_size > _BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(serialized)
        size += entry_size
    if batch:
        yield batch

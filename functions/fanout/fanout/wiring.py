"""Builds the fan-out from its settings, once per execution environment; reset() is for tests."""

from functools import cache
from typing import Any

from fanout.service import Fanout
from fanout.settings import FanoutSettings
from igdm import runtime
from igdm.runtime import aws
from igdm.runtime.observability import Counts
from igdm.runtime.plain_settings import cached_settings
from igdm.store.webhooks import Webhooks

SEND_BATCH_LIMIT = 10  # SendMessageBatch's entries per call


class CallbackQueue:
    """Deliveries as the callback function's jobs, ten per request, in the order given (FIFO keeps it per group)."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs, self._queue_url = sqs, queue_url

    def send(self, jobs: list[tuple[str, str, str]]) -> None:
        for start in range(0, len(jobs), SEND_BATCH_LIMIT):
            chunk = jobs[start : start + SEND_BATCH_LIMIT]
            answer = self._sqs.send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(n), "MessageBody": body, "MessageGroupId": group, "MessageDeduplicationId": dedup}
                    for n, (body, group, dedup) in enumerate(chunk)
                ],
            )
            if answer.get("Failed"):  # the whole batch again: what SQS took is dropped as a duplicate
                codes = sorted({str(f.get("Code")) for f in answer["Failed"]})
                raise RuntimeError(f"the callback queue refused {len(answer['Failed'])} deliveries: {', '.join(codes)}")


@cache
def service() -> Fanout:
    settings = cached_settings(FanoutSettings)
    return Fanout(
        hooks=Webhooks(aws.client("dynamodb"), settings.table_name),
        jobs=CallbackQueue(aws.client("sqs"), settings.callback_queue_url),
        metrics=Counts(),
    )


def reset() -> None:
    service.cache_clear()
    runtime.reset()

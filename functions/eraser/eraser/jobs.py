"""The erasure queue's batch (one job per invocation, BatchSize 1): a job that is not finished is reported as a
batch item failure, so SQS hands it back after its visibility timeout and the next attempt goes on; a message
that is no job is dropped with a log line (nothing can be erased from it)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from eraser.service import Eraser, OutOfTime
from igdm.queues.erasure_queue import BadJob, ErasureJob
from igdm.runtime.observability import logger


class ErasureJobs:
    def __init__(self, eraser: Eraser) -> None:
        self._eraser = eraser

    def __call__(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        failures = []
        for record in event.get("Records") or []:
            message_id = record.get("messageId", "")
            try:
                job = ErasureJob.from_json(record.get("body") or "")
            except BadJob as bad:
                logger.error("not an erasure job; dropped", extra={"reason": str(bad), "message_id": message_id})
                continue
            try:
                self._eraser.erase(job, lambda: context.get_remaining_time_in_millis() / 1000)
            except OutOfTime as stopped:
                logger.info("erasure goes on at the next receive", extra={"code": job.code, "left": str(stopped)})
                failures.append({"itemIdentifier": message_id})
            except Exception as exc:
                logger.exception("erasure failed; retried", extra={"code": job.code, "error": type(exc).__name__})
                failures.append({"itemIdentifier": message_id})
        return {"batchItemFailures": failures}

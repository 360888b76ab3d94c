"""What every function's log lines carry (igdm.runtime.observability): Powertools' JSON, without the context keys
the log group and Lambda's REPORT line already say (each byte logged is billed at ingestion)."""

import json
import logging
from collections.abc import Iterator

import pytest

from igdm.runtime.observability import logger
from local.aws.apigw import LambdaContext


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.setFormatter(logger.registered_formatter)  # as the function writes its lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def written() -> Iterator[list[str]]:
    handler, gateway_logger = _Lines(), logging.getLogger(logger.name)
    gateway_logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        gateway_logger.removeHandler(handler)


def test_a_handler_line_names_the_function_and_the_request_but_not_its_arn_or_memory(written: list[str]) -> None:
    @logger.inject_lambda_context
    def handler(event: dict[str, str], context: LambdaContext) -> None:
        logger.info("handled", extra={"what": event["what"]})

    context = LambdaContext("gateway-WebhookFunction-1A2B3C4D5E6F", memory_limit_in_mb=512)
    handler({"what": "a test"}, context)

    line = json.loads(written[-1])
    assert line["message"] == "handled"
    assert line["what"] == "a test"
    assert line["function_name"] == "gateway-WebhookFunction-1A2B3C4D5E6F"
    assert line["function_request_id"] == context.aws_request_id
    assert "cold_start" in line
    assert "function_arn" not in line
    assert "function_memory_size" not in line

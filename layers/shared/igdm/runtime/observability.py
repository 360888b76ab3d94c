"""The one Logger and Metrics pair every function uses.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE
(set in the template's Globals). Tracing is off: Powertools' Tracer would add the X-Ray SDK to
every cold start for little gain on a path that makes three AWS calls per request.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit, single_metric

# Lambda context keys inject_lambda_context puts on every line that say nothing the line's log group and the
# invocation's REPORT line do not: the ARN (about 100 bytes in a deployed stack) and the memory size. Every byte
# logged is paid for at ingestion; function_name, function_request_id and cold_start stay.
REDUNDANT_CONTEXT_KEYS = frozenset({"function_arn", "function_memory_size"})


class GatewayFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines, without the redundant context keys."""

    def append_keys(self, **additional_keys: Any) -> None:
        kept = {k: v for k, v in additional_keys.items() if k not in REDUNDANT_CONTEXT_KEYS}
        super().append_keys(**kept)


logger = Logger(logger_formatter=GatewayFormatter())
metrics = Metrics()


class Counts:
    """The services' metrics port (``count``), publishing through this module."""

    @staticmethod
    def count(name: str, value: int = 1, **dimensions: str) -> None:
        count(name, value, **dimensions)


def count(name: str, value: int = 1, **dimensions: str) -> None:
    """A count; with dimensions it is flushed as its own metric, so each dimension value stays apart."""
    if not dimensions:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        return
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=metrics.namespace) as metric:
        for key, dimension in dimensions.items():
            metric.add_dimension(name=key, value=dimension)

"""The one Logger and Metrics pair every function uses.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE
(set in the template's Globals). Tracing is off: Powertools' Tracer would add the X-Ray SDK to
every cold start for little gain on a path that makes three AWS calls per request.
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = Logger()
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

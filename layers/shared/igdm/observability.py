"""The one Logger and Metrics pair every function uses.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE
(set in the template's Globals). Tracing is off: Powertools' Tracer would add the X-Ray SDK to
every cold start for little gain on a path that makes three AWS calls per request.
"""

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()

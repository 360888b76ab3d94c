"""The one Logger and Metrics pair every function uses.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE
(set in the template's Globals). Tracing is deliberately absent: see docs/operations.md for its
measured cold-start cost.
"""

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()

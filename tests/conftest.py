"""Test-wide setup. Powertools' Logger and Metrics read their service name and namespace when the
handler module is imported, as in Lambda, so the template's values are set before any import."""

import os

from local.aws.template import load

_GLOBAL_VARIABLES = load()["Globals"]["Function"]["Environment"]["Variables"]
for _name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
    os.environ[_name] = _GLOBAL_VARIABLES[_name]

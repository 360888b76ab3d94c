"""Fault injection and fuzzing of the gateway (`make chaos`; short versions in tests/chaos).

The functions' Powertools Logger and Metrics read their service name and namespace when the handler
modules are imported, as in Lambda: the template's values are set first, as tests/conftest.py does.
"""

import os

from local.aws.template import load

_GLOBAL_VARIABLES = load()["Globals"]["Function"]["Environment"]["Variables"]
for _name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
    os.environ.setdefault(_name, _GLOBAL_VARIABLES[_name])

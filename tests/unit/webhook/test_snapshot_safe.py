"""What a SnapStart snapshot of the webhook would hold (WebhookSnapStart, docs/configuration.md): Lambda snapshots
an instance right after it imported the handler, so the import must read no secret, create no AWS client and
build none of the settings; all of that happens at the first request, after the restore."""

import json
import os
import subprocess
import sys

from local.aws.template import ROOT  # the checkout, whose functions and layer the child imports

PROBE = """
import json
import botocore.session

created = []
original = botocore.session.Session.create_client

def counting(self, service_name, *args, **kwargs):
    created.append(service_name)
    return original(self, service_name, *args, **kwargs)

botocore.session.Session.create_client = counting

import webhook.handler  # what Lambda runs at init, and what a snapshot holds
from igdm.runtime import aws
from webhook import wiring

print(json.dumps({
    "clients_created": created,
    "clients_cached": aws.client.cache_info().currsize,
    "ports_built": wiring.ports.cache_info().currsize,
}))
"""


ENVIRONMENT = {
    "PATH": os.environ.get("PATH", ""),
    "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("functions/webhook", "layers/shared", ".")),
    "POWERTOOLS_SERVICE_NAME": "instagram-gateway",
    "POWERTOOLS_METRICS_NAMESPACE": "InstagramGateway",
    # The webhook's settings: read at its first request, never at import.
    "TABLE_NAME": "t",
    "EVENTS_QUEUE_URL": "http://127.0.0.1:9/q",
    "APP_SECRET_NAME": "app",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # never reached: neither probe sends a request
}


def test_importing_the_webhook_handler_reads_no_secret_and_creates_no_client() -> None:
    result = subprocess.run(  # noqa: S603 - our own interpreter and probe, fixed arguments
        [sys.executable, "-c", PROBE], env=ENVIRONMENT, capture_output=True, text=True, timeout=120, check=True
    )
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {"clients_created": [], "clients_cached": 0, "ports_built": 0}


RESTORE_PROBE = """
import json
import sys
import types

registered = []
hooks = types.ModuleType("snapshot_restore_py")  # as Lambda's Python runtime provides it with SnapStart
hooks.register_after_restore = lambda func, *args, **kwargs: registered.append(func)
sys.modules["snapshot_restore_py"] = hooks

import webhook.handler
from igdm.runtime import aws
from webhook import wiring

wiring.ports()  # what a first request builds: settings, clients, the secret's cache
built = (wiring.ports.cache_info().currsize, aws.client.cache_info().currsize)
for hook in registered:  # Lambda restores an instance from the snapshot
    hook()
print(json.dumps({"hooks": len(registered), "built": built,
    "after": [wiring.ports.cache_info().currsize, aws.client.cache_info().currsize]}))
"""


def test_an_instance_restored_from_a_snapshot_builds_its_clients_and_reads_its_secret_anew() -> None:
    result = subprocess.run(  # noqa: S603 - our own interpreter and probe, fixed arguments
        [sys.executable, "-c", RESTORE_PROBE], env=ENVIRONMENT, capture_output=True, text=True, timeout=120, check=True
    )
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {"hooks": 1, "built": [1, 3], "after": [0, 0]}

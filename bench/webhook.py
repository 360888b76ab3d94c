"""`make bench`: the webhook's figures, each against a floor measured in the same run.

- cold import of the handler module in a fresh interpreter with no bytecode cache, against the floor
  `import boto3` + creating the three clients the function uses;
- a signed 1000-event POST through the real handler with AWS answered by in-memory stubs: events per
  second and CPU per event, against the floor "HMAC over the body + json.loads"; AWS requests per event.

Bounded: a fixed number of repetitions, nothing leaves the process but the import subprocesses.
"""

import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions/webhook"), str(ROOT / "layers/shared"), str(ROOT)]

EVENTS_PER_POST = 1000
CONVERSATIONS = 100
POSTS = 20
IMPORT_RUNS = 7
FLOOR_IMPORT = "import boto3; [boto3.client(s) for s in ('dynamodb', 'sqs', 'secretsmanager')]"
APP_SECRET = "bench-app-secret"  # noqa: S105 - signs the synthetic POST only


class StubAws:
    """Answers the calls the webhook makes, instantly and successfully, and counts them."""

    def __init__(self) -> None:
        self.requests = 0

    def client(self, service: str) -> Any:
        stub = self

        class Client:
            def batch_get_item(self, **_: Any) -> dict[str, Any]:
                stub.requests += 1
                return {"Responses": {}, "UnprocessedKeys": {}}

            def transact_write_items(self, **_: Any) -> dict[str, Any]:
                stub.requests += 1
                return {}

            def send_message_batch(self, Entries: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
                stub.requests += 1
                return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

            def get_secret_value(self, **_: Any) -> dict[str, Any]:
                stub.requests += 1
                return {"SecretString": json.dumps({"app_secrets": [APP_SECRET], "verify_token": "t"})}

        return Client()


def cold_import_ms(code: str, paths: list[str] | None = None) -> float:
    """One import in a fresh interpreter with an empty bytecode cache, as in Lambda (the zip has no .pyc)."""
    with tempfile.TemporaryDirectory() as empty_cache:
        env = {**os.environ, "PYTHONPYCACHEPREFIX": empty_cache, "PYTHONDONTWRITEBYTECODE": "1",
               "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": os.pathsep.join(paths or sys.path[:3])}
        out = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
            [sys.executable, "-c", f"import time; t = time.perf_counter(); {code}; "
                                   "print((time.perf_counter() - t) * 1000)"],
            env=env, capture_output=True, text=True, check=True, timeout=120)
    return float(out.stdout.strip())


def cold_imports() -> tuple[float, float]:
    """Median handler and floor import times, measured alternately so load affects both alike."""
    floor, handler = [], []
    for _ in range(IMPORT_RUNS):
        floor.append(cold_import_ms(FLOOR_IMPORT))
        handler.append(cold_import_ms("import webhook.handler"))
    return statistics.median(handler), statistics.median(floor)


def signed_post() -> tuple[bytes, str]:
    from local import meta_samples as m

    items = [m.text(mid=f"m{i}", ts=m.T0 + i, customer=f"9{i % CONVERSATIONS:015d}") for i in range(EVENTS_PER_POST)]
    body = m.body(m.envelope(*items))
    return body, "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


def main() -> None:
    handler_import, floor_import = cold_imports()

    os.environ.update({"POWERTOOLS_SERVICE_NAME": "bench", "POWERTOOLS_METRICS_NAMESPACE": "Bench",
                       "POWERTOOLS_LOG_LEVEL": "WARNING", "TABLE_NAME": "t", "EVENTS_QUEUE_URL": "q",
                       "APP_SECRET_NAME": "s", "AWS_DEFAULT_REGION": "us-east-1"})
    from igdm import aws
    from local.apigw import LambdaContext, http_api_event
    from webhook import handler

    stub = StubAws()
    aws.client = stub.client  # type: ignore[assignment]
    body, signature = signed_post()
    headers = {"content-type": "application/json", "x-hub-signature-256": signature}
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - EMF metrics lines would swamp the report
    try:
        wall, cpu = [], []
        for _ in range(POSTS):
            event = http_api_event("POST", "/webhook", headers=headers, body=body)
            w0, c0 = time.perf_counter(), time.process_time()
            response = handler.lambda_handler(event, LambdaContext("bench"))
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
            assert response["statusCode"] == 200, response
    finally:
        sys.stdout = sys.__stdout__
    warm_requests_per_post = (stub.requests - 1) / POSTS  # the one secret read is cached after the first POST

    floor = []
    for _ in range(POSTS):
        c0 = time.process_time()
        hmac.compare_digest(hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest(), signature[7:])
        json.loads(body)
        floor.append(time.process_time() - c0)

    cpu_per_event_us = statistics.median(cpu) / EVENTS_PER_POST * 1e6
    floor_per_event_us = statistics.median(floor) / EVENTS_PER_POST * 1e6
    print(f"webhook, {EVENTS_PER_POST}-event signed POST over {CONVERSATIONS} conversations, {POSTS} runs (median)")
    print(f"  cold import of webhook.handler     {handler_import:8.1f} ms  floor (boto3 + 3 clients) "
          f"{floor_import:.1f} ms  ratio {handler_import / floor_import:.2f}x")
    print(f"  events per second through handler {EVENTS_PER_POST / statistics.median(wall):8.0f}")
    print(f"  CPU per event                      {cpu_per_event_us:8.1f} us  floor (HMAC + json.loads) "
          f"{floor_per_event_us:.2f} us  ratio {cpu_per_event_us / floor_per_event_us:.0f}x")
    print(f"  AWS requests per event             {warm_requests_per_post / EVENTS_PER_POST:8.3f}  "
          f"({warm_requests_per_post:.0f} per POST, +1 secret read when cold; target <= 0.15)")


if __name__ == "__main__":
    main()

"""What every figure of `make bench` shares: the functions as template.yaml declares them, a figure's row,
child processes with time limits, and small statistics.

A figure is always a measured value next to a floor measured (or derived) in the same run, so the ratio
says how far the gateway is from the least any design could do on this machine, whatever its load.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.aws.template import Stack

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers/shared"
LOOPBACK = "127.0.0.1"
REGION = "us-east-1"  # the local stack's, and the one the cost figure is priced in

# The boto3 clients each function creates through igdm.runtime.aws.client (read in each handler's wiring:
# functions/*/*/handler.py). The instance runs (bench.instance) check this against the clients each
# function really created, so a change in the code shows up as a warning rather than a wrong floor.
CLIENTS: dict[str, tuple[str, ...]] = {
    "WebhookFunction": ("dynamodb", "sqs", "secretsmanager"),
    "SenderFunction": ("dynamodb", "sqs", "secretsmanager"),
    "CallbackFunction": ("sqs", "secretsmanager"),
    "OnboardingFunction": ("dynamodb", "sqs", "secretsmanager"),
    "RefresherFunction": ("dynamodb", "sqs", "secretsmanager"),
    "ReconcilerFunction": ("dynamodb", "sqs", "secretsmanager"),
    "EraserFunction": ("dynamodb", "sqs", "secretsmanager"),
    "AuthorizerFunction": ("dynamodb",),
    "ApiFunction": ("dynamodb", "sqs"),
    "FanoutFunction": ("dynamodb", "sqs"),
}
SHORT_NAMES = {
    "WebhookFunction": "webhook",
    "SenderFunction": "sender",
    "CallbackFunction": "callback",
    "OnboardingFunction": "onboarding",
    "RefresherFunction": "refresher",
    "ReconcilerFunction": "reconciler",
    "EraserFunction": "eraser",
    "AuthorizerFunction": "authorizer",
    "ApiFunction": "api",
    "FanoutFunction": "fanout",
}


@dataclass
class Figure:
    """One row of the table: a measured value against its floor, with the target it is held to."""

    key: str  # stable id, used by the chart
    name: str
    value: float
    floor: float | None
    unit: str
    target: str  # what is asked, in words ("<= 1.3x floor"), or "-" for none
    met: bool | None  # None: informational, no target
    method: str = ""  # one paragraph for docs/performance.md
    details: list[str] = field(default_factory=list)  # extra measured facts, printed and written
    target_value: float | None = None  # the value the target holds the measured figure to (for the chart)

    @property
    def ratio(self) -> float | None:
        return self.value / self.floor if self.floor else None


# ------------------------------------------------------------------ the template


@cache
def template() -> dict[str, Any]:
    # Imported here: the child processes that play a Lambda instance import this module, and their peak
    # memory should hold the function, not the YAML parser.
    from local.aws.template import load

    return load()


def functions() -> list[str]:
    return [k for k, v in template()["Resources"].items() if v.get("Type") == "AWS::Serverless::Function"]


def function_property(logical_id: str, name: str) -> Any:
    """A function's property, else the Globals' value (as SAM applies them)."""
    own = template()["Resources"][logical_id]["Properties"]
    return own[name] if name in own else template().get("Globals", {}).get("Function", {}).get(name)


def memory_size_mb(logical_id: str) -> int:
    return int(function_property(logical_id, "MemorySize") or 128)  # 128: Lambda's default


def handler_module(logical_id: str) -> str:
    return str(function_property(logical_id, "Handler")).rpartition(".")[0]


def code_path(logical_id: str) -> Path:
    return ROOT / str(function_property(logical_id, "CodeUri"))


def stand_in_stack(name: str = "bench") -> "Stack":
    """The template with made-up names for its resources, for runs where AWS is answered by stubs: the
    functions' environment still comes from template.yaml, only the Refs are invented."""
    from local.aws.template import Stack

    stack = Stack(name, template())
    account = "123456789012"
    for logical_id, resource in template()["Resources"].items():
        kind = resource.get("Type")
        if kind == "AWS::SQS::Queue":
            queue = f"{name}-{logical_id}" + (".fifo" if resource["Properties"].get("FifoQueue") else "")
            stack.refs[logical_id] = f"https://sqs.{REGION}.amazonaws.com/{account}/{queue}"
            stack.attributes[(logical_id, "QueueName")] = queue
            stack.attributes[(logical_id, "Arn")] = f"arn:aws:sqs:{REGION}:{account}:{queue}"
        elif kind == "AWS::SecretsManager::Secret":
            stack.refs[logical_id] = f"arn:aws:secretsmanager:{REGION}:{account}:secret:{name}/{logical_id}"
        else:
            stack.refs[logical_id] = f"{name}-{logical_id}"
    return stack


# Where time goes, by package: the names an import or a profile is summed under in the figures' details.
GATEWAY_PACKAGES = frozenset({"igdm", "webhook", "sender", "callback", "onboarding", "refresher"})
PACKAGE_GROUPS = {
    **dict.fromkeys(("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"), "boto3/botocore"),
    **dict.fromkeys(
        ("pydantic", "pydantic_core", "annotated_types", "typing_extensions", "typing_inspection"), "pydantic"
    ),
    "aws_lambda_powertools": "Powertools",
    **dict.fromkeys(("requests", "certifi", "charset_normalizer", "idna"), "requests"),
}


def package_group(top_level: str) -> str:
    """The group a top-level package's time is reported under ("gateway" for the project's own code)."""
    if top_level in GATEWAY_PACKAGES:
        return "gateway"
    return PACKAGE_GROUPS.get(top_level, "stdlib and other")


# ------------------------------------------------------------------ child processes


def clean_environment() -> dict[str, str]:
    """This process's environment without anything that would point a child at other AWS settings,
    a Graph endpoint or other Powertools settings than the template's (as from a plain shell)."""
    prefixes = ("AWS_", "POWERTOOLS_", "GRAPH_API", "INSTAGRAM_", "LOCAL_", "IG_", "PYTHONPATH", "BENCH_")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    environment["AWS_DEFAULT_REGION"] = REGION
    if os.environ.get("BENCH_LOGS"):
        environment["BENCH_LOGS"] = os.environ["BENCH_LOGS"]
    return environment


def lambda_path(logical_id: str) -> str:
    """sys.path as Lambda sets it for the function (/var/task, then the layer's /opt/python), plus the
    repository root for the bench's own harness modules."""
    return os.pathsep.join([str(code_path(logical_id)), str(LAYER), str(ROOT)])


def run_child(module: str, args: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run `python -m module *args result.json` and return the JSON it wrote; a time limit, always."""
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        result = Path(scratch) / "result.json"
        log = Path(scratch) / "child.log"
        with log.open("w") as output:
            try:
                subprocess.run(  # noqa: S603 - our own interpreter and module
                    [sys.executable, "-m", module, *args, str(result)],
                    cwd=ROOT,
                    env=env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=True,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{module} {' '.join(args)} failed: {exc}\n{tail}") from None
        document: dict[str, Any] = json.loads(result.read_text())
        return document


def stop_process(process: "subprocess.Popen[Any]", grace: float) -> None:
    """Terminate a child we started; killed if it has not ended within ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class JsonAnswers(BaseHTTPRequestHandler):
    """A stand-in's request handler: answers as AWS's JSON protocol does, and no line per request (it would be the
    bench's own noise)."""

    def answer(self, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-RequestId", "bench")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_bounded(server: Any, port_file: str, time_limit: float) -> None:
    """A stand-in's loopback server, serving until ``time_limit`` seconds have passed however its parent ends; its
    port written to ``port_file`` whole (never half-written) once it listens."""
    timer = threading.Timer(time_limit, server.shutdown)
    timer.daemon = True
    timer.start()
    written = Path(port_file).with_suffix(".tmp")
    written.write_text(str(server.server_address[1]))
    written.replace(port_file)
    server.serve_forever()


def busiest_second(times: list[float]) -> int:
    """The most of ``times`` (seconds) within any one second: what Meta's per-second limit counts."""
    times = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def write_result(path: str, document: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(document))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ statistics


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100), interpolated between the two nearest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: list[float]) -> float:
    return statistics.median(values)

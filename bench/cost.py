"""Figure 6: an estimate of the AWS bill per million inbound events and per million outbound messages,
from what this run measured (durations, AWS requests and their billing units, log bytes) and the
functions' configured MemorySize, at us-east-1 list prices. An estimate: no free tier, no Savings Plans,
no tiered discounts, and the assumptions below stated where they are made.

Inbound: one event per webhook POST, as Meta mostly delivers them. Outbound: one text message, from
the producer's SendMessage to the sender's status event: the sender's own part; its echo comes back as a
webhook, priced apart as one inbound event.
"""

import math
from dataclasses import dataclass
from typing import Any

from bench.common import Figure, memory_size_mb, template
from bench.graph import LATENCY_SECONDS
from bench.instance import InstanceRun
from bench.webhook import SinglePosts

# ---- us-east-1 list prices, taken 2026-11-21 from the AWS pricing pages named (first tier of each).
# https://aws.amazon.com/lambda/pricing/ : Arm duration (first 7.5 billion GB-s a month), requests.
LAMBDA_ARM_PER_GB_SECOND = 0.0000133334
LAMBDA_PER_REQUEST = 0.20 / 1e6
# https://aws.amazon.com/api-gateway/pricing/ : HTTP APIs, first 300 million requests a month, metered in
# 512 KB increments.
HTTP_API_PER_REQUEST = 1.00 / 1e6
HTTP_API_METERED_BYTES = 512 * 1024
# https://aws.amazon.com/sqs/pricing/ : FIFO queues, per request, each 64 KB chunk of payload a request.
SQS_FIFO_PER_REQUEST = 0.50 / 1e6
# https://aws.amazon.com/dynamodb/pricing/on-demand/ : on-demand, Standard table class.
DYNAMODB_PER_WRITE_UNIT = 0.625 / 1e6
DYNAMODB_PER_READ_UNIT = 0.125 / 1e6
# https://aws.amazon.com/secrets-manager/pricing/ : API calls ($0.40 per secret a month is not per event).
SECRETS_MANAGER_PER_CALL = 0.05 / 10_000
# https://aws.amazon.com/cloudwatch/pricing/ : Logs, Standard class ingestion (Lambda's logs: its first tier),
# measured uncompressed with 26 bytes of metadata per log event.
CLOUDWATCH_LOGS_PER_GB = 0.50
CLOUDWATCH_BYTES_PER_LOG_EVENT = 26

# ---- assumptions (an estimate needs them; each is named in docs/performance.md)
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html : a function gets CPU in proportion
# to its memory, one vCPU at 1,769 MB. CPU time measured on one core here is scaled up by that share.
FULL_VCPU_MEMORY_MB = 1769
# One DynamoDB, SQS or Secrets Manager request from Lambda in the same region: the bench answers AWS
# with stubs or an emulator on loopback, so this time is not measured and is added per request.
AWS_ROUND_TRIP_MS = 10.0
# Lambda's START, END and REPORT lines for each invocation (about 350 bytes together).
PLATFORM_LOG_LINES = 3
PLATFORM_LOG_BYTES = 350
# The outbound queue's event source mapping receives and deletes each message alone: a quiet queue. A
# busy one delivers batches of up to 10 (the template's BatchSize), which divides these requests by up to 10.
MESSAGES_PER_BATCH = 1
# What the HTTP API's access log line holds for one of Meta's POSTs: the template's Format with these values
# (request id, Meta's address, time, route, status, answer bytes, latency, integration status and error,
# Meta's user agent), measured by _access_log_bytes.
ACCESS_LOG_SAMPLE = {
    "requestId": "Jd3mEjV5oAMEbqA=",
    "identity.sourceIp": "173.252.127.118",
    "requestTime": "06/Dec/2026:19:42:03 +0000",
    "routeKey": "POST /webhook",
    "status": "200",
    "responseLength": "52",
    "responseLatency": "57",
    "integrationStatus": "200",
    "integrationErrorMessage": "-",
    "identity.userAgent": "facebookexternalua",
}


PRICES_TAKEN = "2026-11-21"
PRICES = [  # for docs/performance.md: (what, price, source)
    (
        "Lambda duration, arm64",
        f"${LAMBDA_ARM_PER_GB_SECOND:.10f} per GB-second",
        "https://aws.amazon.com/lambda/pricing/",
    ),
    ("Lambda requests", "$0.20 per million", "https://aws.amazon.com/lambda/pricing/"),
    ("API Gateway HTTP API", "$1.00 per million requests (512 KB each)", "https://aws.amazon.com/api-gateway/pricing/"),
    ("SQS FIFO", "$0.50 per million requests (64 KB each)", "https://aws.amazon.com/sqs/pricing/"),
    (
        "DynamoDB on-demand writes",
        "$0.625 per million write request units",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    (
        "DynamoDB on-demand reads",
        "$0.125 per million read request units",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    ("Secrets Manager", "$0.05 per 10,000 API calls", "https://aws.amazon.com/secrets-manager/pricing/"),
    (
        "CloudWatch Logs ingestion",
        "$0.50 per GB (+26 bytes per log event)",
        "https://aws.amazon.com/cloudwatch/pricing/",
    ),
]
ASSUMPTIONS = [
    f"CPU time measured on one core here is multiplied by {FULL_VCPU_MEMORY_MB} MB / MemorySize: Lambda gives a "
    f"function CPU in proportion to its memory, one vCPU at {FULL_VCPU_MEMORY_MB} MB; this machine's core is taken "
    "to be as fast as a Graviton core.",
    f"Each DynamoDB, SQS or Secrets Manager request adds {AWS_ROUND_TRIP_MS:g} ms, an in-region round trip (the bench "
    "answers AWS on loopback, so this is not measured).",
    f"Meta's Send API answers in {LATENCY_SECONDS * 1000:.0f} ms (the Graph sandbox's setting in this run).",
    f"Each invocation adds Lambda's START, END and REPORT lines, about {PLATFORM_LOG_BYTES} bytes.",
    f"The outbound queue's event source mapping receives and deletes {MESSAGES_PER_BATCH} message per batch: a "
    "quiet queue, the dearest case (a busy one delivers up to 10, the template's BatchSize).",
    "No free tier, Savings Plans or volume tiers; fixed monthly costs (secrets at $0.40 each, custom metrics, "
    "alarms, storage) and the events queue's consumers (yours) are left out.",
]


@dataclass(frozen=True)
class Estimate:
    total: float  # dollars per million
    parts: dict[str, float]
    usage: str  # what was priced, per event or message

    def line(self) -> str:
        return "; ".join(f"{name} ${value:.2f}" for name, value in self.parts.items() if value >= 0.005)


def _duration_ms(cpu_ms: float, waiting_ms: float, aws_requests: float, memory_mb: int) -> float:
    """Billed duration: the CPU time at the function's CPU share, plus what it waits for."""
    return cpu_ms * max(1.0, FULL_VCPU_MEMORY_MB / memory_mb) + waiting_ms + aws_requests * AWS_ROUND_TRIP_MS


def _lambda(duration_ms: float, memory_mb: int, invocations: float) -> float:
    billed_ms = math.ceil(duration_ms)  # Lambda bills in 1 ms steps
    return invocations * (LAMBDA_PER_REQUEST + billed_ms / 1000 * memory_mb / 1024 * LAMBDA_ARM_PER_GB_SECOND)


def _logs(bytes_: float, lines: float) -> float:
    ingested = bytes_ + PLATFORM_LOG_BYTES + (lines + PLATFORM_LOG_LINES) * CLOUDWATCH_BYTES_PER_LOG_EVENT
    return ingested / 1e9 * CLOUDWATCH_LOGS_PER_GB


def webhook_endpoint() -> str:
    """The URL the template's WebhookUrl output gives Meta by default: FunctionUrl or HttpApi."""
    return str(template()["Parameters"]["WebhookEndpoint"]["Default"])


def _access_log_bytes() -> int:
    """One access log line of the HTTP API, as the template's Format writes it for a POST of Meta's."""
    line = " ".join(str(template()["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]["Format"]).split())
    for variable in sorted(ACCESS_LOG_SAMPLE, key=len, reverse=True):  # longest first: no prefix eats another
        line = line.replace(f"$context.{variable}", ACCESS_LOG_SAMPLE[variable])
    if "$context." in line:
        raise ValueError(f"no sample value for a variable of the access log format: {line}")
    return len(line.encode())


def inbound(single: SinglePosts, endpoint: str) -> Estimate:
    """Per event, from the webhook's one-event POSTs (bench.webhook), for Meta posting to ``endpoint``: the
    function's URL (FunctionUrl) or the HTTP API's /webhook route (HttpApi, which adds its request charge and
    its access log line)."""
    ledger, events = single.ledger, single.events
    requests = ledger["requests"]
    aws_requests = sum(requests.values()) / events
    memory = memory_size_mb("WebhookFunction")
    duration = _duration_ms(single.cpu_ms, max(0.0, single.wall_ms - single.cpu_ms), aws_requests, memory)
    secret_calls = sum(n for k, n in requests.items() if k.startswith("secretsmanager.")) / events
    via_api = endpoint == "HttpApi"
    access_log = _access_log_bytes() + CLOUDWATCH_BYTES_PER_LOG_EVENT if via_api else 0
    parts = {
        "API Gateway": math.ceil(single.body_bytes / HTTP_API_METERED_BYTES) * HTTP_API_PER_REQUEST if via_api else 0,
        "Lambda": _lambda(duration, memory, 1),
        "DynamoDB": ledger["write_units"] / events * DYNAMODB_PER_WRITE_UNIT
        + ledger["read_units"] / events * DYNAMODB_PER_READ_UNIT,
        "SQS": ledger["sqs_billed"] / events * SQS_FIFO_PER_REQUEST,
        "Secrets Manager": secret_calls * SECRETS_MANAGER_PER_CALL,
        "CloudWatch Logs": _logs(single.log_bytes, single.log_lines) + access_log / 1e9 * CLOUDWATCH_LOGS_PER_GB,
    }
    usage = _usage(requests, ledger, events, duration)
    return Estimate(sum(parts.values()) * 1e6, {k: v * 1e6 for k, v in parts.items()}, usage)


def outbound(sender: InstanceRun) -> Estimate:
    """Per text message, from one sender instance's warm batches (bench.instance): the sender's own part."""
    ledger = sender.ledger
    requests = ledger["requests"]
    aws_requests = sum(requests.values()) / sender.units
    memory = memory_size_mb("SenderFunction")
    graph_wait_ms = LATENCY_SECONDS * 1000
    duration_per_message = _duration_ms(sender.cpu_ms_per_unit, graph_wait_ms, aws_requests, memory)
    invocations = 1 / MESSAGES_PER_BATCH
    queue_requests = 1 + 2 / MESSAGES_PER_BATCH  # the producer's SendMessage; the mapping's receive and delete
    secret_calls = sum(n for k, n in requests.items() if k.startswith("secretsmanager.")) / sender.units
    parts = {
        "Lambda": _lambda(duration_per_message * MESSAGES_PER_BATCH, memory, invocations),
        "DynamoDB": ledger["write_units"] / sender.units * DYNAMODB_PER_WRITE_UNIT
        + ledger["read_units"] / sender.units * DYNAMODB_PER_READ_UNIT,
        "SQS": (queue_requests + ledger["sqs_billed"] / sender.units) * SQS_FIFO_PER_REQUEST,
        "Secrets Manager": secret_calls * SECRETS_MANAGER_PER_CALL,
        "CloudWatch Logs": _logs(sender.log_bytes_per_unit, sender.log_lines_per_unit),
    }
    parts = {k: v * 1e6 for k, v in parts.items()}
    return Estimate(sum(parts.values()), parts, _usage(requests, ledger, sender.units, duration_per_message))


def _usage(requests: dict[str, int], ledger: dict[str, Any], units: int, duration_ms: float) -> str:
    calls = ", ".join(f"{n / units:g} {name}" for name, n in sorted(requests.items()))
    return (
        f"{calls}; {ledger['write_units'] / units:g} write and {ledger['read_units'] / units:g} read request "
        f"units; {ledger['sqs_billed'] / units:g} SQS requests billed; {duration_ms:.0f} ms billed duration"
    )


def floor_inbound() -> float:
    """The least any webhook-to-queue design pays per event: a 1 ms invocation behind a Lambda function URL (which
    costs nothing of its own) and one SQS request."""
    return (_lambda(1, memory_size_mb("WebhookFunction"), 1) + SQS_FIFO_PER_REQUEST) * 1e6


def floor_outbound() -> float:
    """The least any queue-to-Meta design pays per message: the queue's send, receive and delete, and an
    invocation that waits for Meta's answer."""
    wait = LATENCY_SECONDS * 1000
    return (3 * SQS_FIFO_PER_REQUEST + _lambda(wait, memory_size_mb("SenderFunction"), 1)) * 1e6


INBOUND_TARGET = 4.50
OUTBOUND_TARGET = 5.00


def figures(single: SinglePosts, sender: InstanceRun) -> list[Figure]:
    endpoint = webhook_endpoint()
    other_endpoint = "HttpApi" if endpoint == "FunctionUrl" else "FunctionUrl"
    event, otherwise = inbound(single, endpoint), inbound(single, other_endpoint)
    message = outbound(sender)
    return [
        Figure(
            "cost_inbound",
            "Cost per million inbound events",
            event.total,
            floor_inbound(),
            "$",
            f"<= ${INBOUND_TARGET:.2f}",
            event.total <= INBOUND_TARGET,
            method=(
                "Inbound: from the webhook's one-event POSTs (figure 2's child process): the measured duration "
                "and CPU, the AWS requests counted at botocore with their DynamoDB request units (estimated "
                "from the items written and read: 1 per KB written, twice that in a transaction, plus 1 for the "
                "AccountCustomer index entry of an item written with an account and a customer, which for an "
                "update is an upper bound; 1 per 4 KB read strongly, half that eventually) and SQS 64 KB chunks, "
                "and the bytes the function "
                "logged, priced for the configured MemorySize "
                f"({memory_size_mb('WebhookFunction')} MB, arm64). Meta posts to the URL the template's WebhookUrl "
                f"output gives by default (WebhookEndpoint={endpoint}): the webhook function's own Lambda function "
                "URL costs nothing of its own; the HTTP API's /webhook route (WebhookEndpoint=HttpApi) adds $1.00 "
                f"per million requests and an access log line of {_access_log_bytes()} bytes, in the details. The "
                "floor is the least any webhook-to-queue design pays: a 1 ms invocation behind a Lambda function "
                "URL and one SQS request. "
                "Inbound events are priced one per POST, as Meta mostly delivers them. "
                f"Target <= ${INBOUND_TARGET:.2f}."
            ),
            target_value=INBOUND_TARGET,
            details=[
                f"by service: {event.line()}",
                f"priced per event: {event.usage}",
                f"with WebhookEndpoint={other_endpoint}: ${otherwise.total:.2f} per million ({otherwise.line()})",
            ],
        ),
        Figure(
            "cost_outbound",
            "Cost per million outbound messages",
            message.total,
            floor_outbound(),
            "$",
            f"<= ${OUTBOUND_TARGET:.2f}",
            message.total <= OUTBOUND_TARGET,
            method=(
                "Outbound: the sender's own part, from one sender instance's warm batches against moto and the Graph "
                "sandbox (figure 5's child process): CPU, AWS requests and their units, and log bytes per message; "
                "plus the outbound queue's SendMessage and the event source mapping's receive and delete. The "
                "message's echo webhook is priced apart, as one inbound event (the DELIVERED update the echo leads "
                "to, about three more requests, is left out). The floor is the least any queue-to-Meta design "
                "pays: the queue's three requests and an invocation that waits for Meta's answer. "
                f"Target <= ${OUTBOUND_TARGET:.2f}."
            ),
            target_value=OUTBOUND_TARGET,
            details=[
                f"by service: {message.line()}",
                f"priced per message (the sender's own part): {message.usage}",
                f"its echo webhook, apart: ${event.total:.2f} per million (as an inbound event), so "
                f"${message.total + event.total:.2f} per million with it",
            ],
        ),
    ]

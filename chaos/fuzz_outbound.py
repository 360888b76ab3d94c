"""Scenario f: outbound messages from Hypothesis, valid ones of every kind (local/samples/outbound.py) and
mutated ones, through the sender.

  contract  most messages: the sender's own parsing (sender.service._parse, the first thing process() does)
            and, for the valid ones, the Send API requests it would make (sender.graph_requests). Never an
            exception; an invalid message has a reason that names its field; every request a valid message
            makes passes the Graph sandbox's rules for Send API bodies (Meta's documented limits).
  sender    a subset on the outbound queue, through the real sender (poller, moto, the sandbox as Meta):
            an invalid message ends FAILED invalid_message, its reason naming the field, with a FAILED
            message_status event, and Meta gets no request for it; no message makes the sender fail
            unexpectedly (an error logged with a traceback, a message left on the queue).
"""

import contextlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from hypothesis import HealthCheck
from hypothesis import strategies as st

from chaos.fuzz_webhook import mutate
from chaos.properties import check_property, expect, logged_errors
from chaos.report import Result
from chaos.stacks import outbound_stack, sender_poller
from igdm.contracts.outbound import IDEMPOTENCY_KEY_PATTERN, OutboundMessage
from igdm.store import outbound_records as records
from igdm.store.outbound_records import OutboundRecords
from local.aws.template import REGION
from local.harnesses.outbound import Loop
from local.meta.answers import GraphError
from local.meta.send_validation import validate_send, validate_thread_control
from local.samples import outbound as out
from local.samples.strategies import any_text, json_values
from sender.graph_requests import build_requests
from sender.service import _parse  # the sender's parsing itself: what process() runs on a queue body

_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
_FIELDS = frozenset(OutboundMessage.model_fields)

texts = st.one_of(
    st.text(min_size=1, max_size=300),
    any_text,
    st.sampled_from(["\U0001f600" * 300, "a" * 20_001, " ", "\x00", "\ud83d", "x" * 1001]),
)
urls = st.one_of(
    st.sampled_from(
        [
            f"{out.HTTPS}/a.jpg",
            "http://cdn.example.com/a.jpg",
            "https://",
            "ftp://x/y",
            "https://cdn.example.com/" + "a" * 2100,
            "javascript:alert(1)",
        ]
    ),
    any_text,
)
ids = st.one_of(st.from_regex(r"[0-9]{1,20}", fullmatch=True), any_text, st.sampled_from(["", "1" * 257]))
recipients = st.one_of(
    st.just({"id": out.CUSTOMER}),
    st.builds(lambda i: {"id": i}, ids),
    st.builds(lambda i: {"comment_id": i}, ids),
    st.just({"id": out.CUSTOMER, "comment_id": "1"}),
    st.just({}),
)


def _message(kind: str, key: str, recipient: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any]:
    return out.outbound(kind, key=key, recipient=recipient, **extras)


extras = st.fixed_dictionaries(
    {},
    optional={
        "human_agent": st.booleans(),
        "correlation_id": texts,
        "callback_data": texts,
        "reply_to_message_id": ids,
        "schema_version": st.sampled_from(["1", "2", 1]),
        "callback_url": st.one_of(urls, st.just("https://producer.example.com/statuses")),
        "account_id": st.one_of(st.just(out.ACCOUNT), ids, st.none()),
    },
)
generated = st.one_of(
    st.builds(
        _message, st.sampled_from(sorted(out.KINDS)), st.from_regex(r"[!-~]{1,60}", fullmatch=True), recipients, extras
    ),
    st.builds(lambda key: out.private_reply(key), st.from_regex(r"[!-~]{1,60}", fullmatch=True)),
    st.builds(
        lambda kind, text: out.outbound(kind, message={**out.KINDS[kind], "text": text}),
        st.sampled_from(["text", "quick_replies", "choice", "button_template", "text_with_media"]),
        texts,
    ),
    st.builds(
        lambda kind, url: out.outbound(kind, message={**out.KINDS[kind], "url": url}),
        st.sampled_from(["image", "audio", "video"]),
        urls,
    ),
)
STRUCTURAL = ("drop", "duplicate", "retype", "huge", "nest", "unicode")
documents = st.one_of(
    generated,
    st.builds(
        mutate,
        generated,
        st.lists(st.tuples(st.sampled_from(STRUCTURAL), st.integers(0, 10**6), json_values), min_size=1, max_size=3),
    ),
    json_values,
)


def _text_mutation(body: str, operation: str, pick: int) -> str:
    at = pick % (len(body) + 1)
    return {
        "truncate": body[:at],
        "duplicate_key": body.replace("{", '{"idempotency_key":"dup",', 1),
        "nan": body.replace(":", ':NaN,"x":', 1),
        "trailing": body + "}",
        "insert": body[:at] + '"' + body[at:],
        "empty": "",
    }[operation]


bodies = st.one_of(
    st.builds(json.dumps, documents),
    st.builds(
        _text_mutation,
        st.builds(json.dumps, generated),
        st.sampled_from(["truncate", "duplicate_key", "nan", "trailing", "insert", "empty"]),
        st.integers(0, 10**6),
    ),
)


def names_a_field(reason: str, document: Any) -> bool:
    """The reason starts with the path of what is wrong (message.text: ...), whose first step is a field of
    the contract or a key of the message, or names a field of the contract in its words; or it is about
    the body as a whole (not JSON, not an object)."""
    if reason.startswith(("body is not JSON", "body must be a JSON object")):
        return True
    path, separator, _ = reason.partition(": ")
    first = path.split(".")[0]
    if separator and (first in _FIELDS or (isinstance(document, dict) and first in document)):
        return True
    return bool(set(re.findall(r"[a-z_]+", reason)) & _FIELDS)


def _document(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def contract_checker() -> Callable[[str], None]:
    def check(body: str) -> None:
        message, problem, _ = _parse(body)
        if message is None:
            if not problem:
                raise AssertionError("invalid without a reason")
            expect(names_a_field(problem, _document(body)), f"a reason that names no field: {problem!r}")
            return
        for human_agent_tag in (False, True):
            for send in build_requests(message, human_agent_tag=human_agent_tag):
                try:
                    if send.endpoint == "messages":
                        validate_send(send.body)
                    else:
                        validate_thread_control(send.endpoint, send.body)
                except GraphError as refused:  # the contract let through what Meta's rules refuse
                    raise AssertionError(f"{refused.message} in {send.body}") from None

    return check


def sender_checker(loop: Loop) -> Callable[[str], None]:
    table = OutboundRecords(boto3.client("dynamodb", region_name=REGION), loop.stack.refs["GatewayTable"], 1)
    numbered = {"n": 0}
    batches: list[list[str]] = []
    poller = sender_poller(loop, batches)

    def check(body: str) -> None:
        numbered["n"] += 1
        body = _sqs_safe(_unique_key(body, numbered["n"]))
        if len(body.encode()) + ATTRIBUTE_ROOM > SQS_MAX_BYTES:
            return  # no producer can enqueue it: SQS refuses it, and the sender never sees it
        message, _, _ = _parse(body)
        requests_before = len(loop.sandbox.requests)
        sent = loop.sqs.send_message(
            QueueUrl=loop.outbound_url,
            MessageBody=body,
            MessageGroupId=f"fuzz-{numbered['n']}",
            MessageDeduplicationId=f"fuzz-{numbered['n']}",
        )
        try:
            # One delivery, as the event source mapping makes it. A valid message may rightly wait (its
            # rate slot, a retry): only its first handling is looked at; an invalid one ends there.
            poller.poll_once()
            if message is None:
                _check_invalid(body, sent["MessageId"], requests_before)
        finally:
            for handle in (h for batch in batches for h in batch):  # left hidden for a retry: not for the next
                with contextlib.suppress(Exception):
                    loop.sqs.delete_message(QueueUrl=loop.outbound_url, ReceiptHandle=handle)
            batches.clear()

    def _check_invalid(body: str, message_id: str, requests_before: int) -> None:
        document = _document(body)
        key = document.get("idempotency_key") if isinstance(document, dict) else None
        key = key if isinstance(key, str) and _KEY.fullmatch(key) else f"sqs-{message_id}"
        record = table.get(key)
        if record is None:
            raise AssertionError(f"no record for the invalid message {key}")
        expect(
            (record.status, record.reason) == (records.FAILED, "invalid_message"), f"{record.status} {record.reason}"
        )
        if not record.detail:
            raise AssertionError("FAILED without a reason")
        expect(names_a_field(record.detail, document), f"reason names no field: {record.detail!r}")
        expect(len(loop.sandbox.requests) == requests_before, "Meta got a request for an invalid message")
        expect("FAILED" in [s["status"] for s in loop.statuses(key)], "no FAILED message_status event")

    return check


def _unique_key(body: str, number: int) -> str:
    """A usable idempotency key is made unique per example, so each message gets its own record (a key
    seen before would be a redelivery, answered from its first record)."""
    document = _document(body)
    if (
        isinstance(document, dict)
        and isinstance(document.get("idempotency_key"), str)
        and _KEY.fullmatch(document["idempotency_key"])
    ):
        document["idempotency_key"] = f"{document['idempotency_key'][:100]}-{number}"
        return json.dumps(document)
    return body


SQS_MAX_BYTES = 1_048_576  # SQS's largest message (AWS raised it from 256 KiB in 2025; moto has the same)
ATTRIBUTE_ROOM = 1024  # the group and deduplication ids count against it too


def _sqs_safe(body: str) -> str:
    """SQS takes only these characters in a message body: a producer cannot send the others."""
    allowed = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
    return allowed.sub("\ufffd", body) or "{}"


@dataclass(frozen=True)
class OutboundFuzzPlan:
    contract: int = 3000
    sender: int = 600
    sender_round: int = 150  # messages per fresh stack (moto's tables slow down as they grow)


def run(plan: OutboundFuzzPlan, seed: int) -> Result:
    started = time.monotonic()
    failures: list[str] = []
    counts = {"contract": 0, "sender": 0}
    # Justified: 20,000-byte texts and thousand-deep nesting are the point (data_too_large, too_slow), and
    # a sender example is a queue round trip through moto and the sandbox (too_slow).
    suppress = (HealthCheck.data_too_large, HealthCheck.too_slow, HealthCheck.large_base_example)
    with logged_errors() as logged:
        found = check_property(contract_checker(), bodies, examples=plan.contract, run_seed=seed, suppress=suppress)
        counts["contract"] = found.examples
        if found.failure:
            failures.append(f"contract: {found.failure}")
        done = 0
        while done < plan.sender:
            size = min(plan.sender_round, plan.sender - done)
            with outbound_stack() as loop:
                loop.say()  # the sample customer wrote: valid messages to them go to Meta
                found = check_property(
                    sender_checker(loop), bodies, examples=size, run_seed=seed + done + 1, suppress=suppress
                )
            counts["sender"] += found.examples
            done += size
            if found.failure:
                failures.append(f"sender: {found.failure}")
                break
    failures.extend(f"logged with a traceback: {r}" for r in sorted(set(logged.records))[:10])
    summary = (
        f"{sum(counts.values())} messages (seed {seed}): {counts['contract']} through the sender's parsing "
        f"and request building, {counts['sender']} through the real sender and moto; failures {len(failures)}"
    )
    return Result(
        "outbound fuzzing",
        summary,
        violations=failures,
        seconds=time.monotonic() - started,
        figures={"messages": sum(counts.values()), **counts},
    )

"""Scenario e: webhook bodies from Hypothesis, Meta-shaped and mutated, signed and not.

Three layers, each a property with its own share of the examples:
  parsing   most bodies: webhook.service.verify_and_parse and ingest (the handler's logic, with the
            in-memory store and queue of local/harnesses/webhook_in_memory.py). Signed: a Rejected with a
            4xx and a reason, or every item becomes an event (none dropped, none crashing the normaliser) that fits the
            queue and the table and parses back. Unsigned or wrongly signed: Rejected 401, nothing kept.
  handler   a subset through the real handler (webhook.handler.lambda_handler) against moto, as API
            Gateway delivers them (text or base64, any content type): 200, or a 4xx with an error.
  unsigned  unsigned and wrongly signed bodies through the real handler: a 4xx each, and afterwards not
            one item in the table nor one message on the events queue.
The strategies build on tests/unit/webhook/test_parsing_never_crashes.py's (its JSON values, Meta-like keys and
sample items), adding whole Meta bodies of every kind, structural mutations and byte mutations.
"""

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck
from hypothesis import strategies as st

from chaos.properties import check_property, expect, logged_errors
from chaos.report import Result
from chaos.stacks import webhook_stack
from igdm.contracts.serialized import MAX_EVENT_BYTES, SerializedEvent
from igdm.inbound.ingest import ingest
from igdm.inbound.normalize import normalize
from local.aws.apigw import http_api_event
from local.harnesses.webhook import APP_SECRET, INSTAGRAM_APP_SECRET, Harness
from local.harnesses.webhook_in_memory import MemoryQueue, MemoryStore
from local.samples import meta as m
from local.samples.strategies import any_text, items_in, json_values, meta_like, mutate_sample, samples
from webhook.service import Rejected, verify_and_parse
from webhook.signature import sign

NOW_MS = 1735689601000
MAX_BODY_BYTES = 1_048_576  # the template's MAX_BODY_BYTES, for the parsing layer

# --- Meta-shaped bodies ---------------------------------------------------------------------------------

ids = st.one_of(
    st.from_regex(r"[0-9]{1,20}", fullmatch=True),
    st.integers(-(2**64), 2**64),
    any_text,
    st.sampled_from([m.ACCOUNT, m.CUSTOMER, "", " ", "1" * 257]),
)
mids = st.one_of(st.from_regex(r"m_[A-Za-z0-9_-]{1,60}", fullmatch=True), ids)
times = st.one_of(
    st.integers(-(2**40), 2**62),
    st.sampled_from([m.T0, m.T0 // 1000, str(m.T0), "1527459824.5", "NaN", "-1", 253_402_300_800_000]),
    st.floats(allow_nan=True, allow_infinity=True),
    any_text,
    st.none(),
)
texts = st.one_of(
    st.text(max_size=200),
    any_text,
    st.sampled_from(["\U0001f600" * 5000, "\x00", "\ud83d", "a" * 150_000, "\u202e\u0301" * 50]),
)
attachment_kinds = st.sampled_from(
    [
        "image",
        "video",
        "audio",
        "file",
        "share",
        "ig_reel",
        "story_mention",
        "reel",
        "ig_post",
        "fallback",
        "unsupported_type",
        "template",
    ]
)


def _set(document: dict[str, Any], **values: Any) -> dict[str, Any]:
    return {**document, **values}


messaging_items = st.one_of(
    st.builds(
        lambda mid, words, customer, ts: m.text(mid=mid, words=words, customer=customer, ts=ts), mids, texts, ids, times
    ),
    st.builds(
        lambda kind, mid, payload: m.attachment(kind, mid=mid, payload=payload),
        attachment_kinds,
        mids,
        st.one_of(
            st.none(),
            st.dictionaries(
                st.sampled_from(["url", "title", "id", "media_id", "reel_video_id"]), json_values, max_size=3
            ),
        ),
    ),
    st.builds(m.post_share, mids),
    st.builds(m.story_reply, mids),
    st.builds(m.reply, mids, mids),
    st.builds(m.quick_reply, mids),
    st.builds(m.postback, mids),
    st.builds(m.reaction, mids, st.sampled_from(["react", "unreact", "", "other"])),
    st.builds(m.read, mids),
    st.builds(m.deleted, mids),
    st.builds(m.edited, mids),
    st.builds(m.echo, mids, texts),
    st.just(m.referral()),
    st.builds(m.ad_message, mids),
    st.just(m.optin()),
    st.just(m.handover()),
    st.builds(m.unsupported, mids),
    st.builds(lambda item, ts: _set(item, timestamp=ts), samples, times),
    st.builds(
        mutate_sample,
        samples,
        st.sampled_from(
            ["mid", "text", "attachments", "is_echo", "is_deleted", "reply_to", "quick_reply", "sender", "recipient"]
        ),
        json_values,
    ),
)
changes = st.one_of(
    st.builds(m.comment_change, ids),
    st.just(m.mention_change()),
    st.builds(
        lambda field, value: {"field": field, "value": value},
        st.sampled_from(
            [
                "comments",
                "live_comments",
                "mentions",
                "messages",
                "message_reactions",
                "messaging_seen",
                "story_insights",
                "unknown_field",
            ]
        ),
        st.one_of(messaging_items, json_values),
    ),
)
entries = st.builds(
    lambda account, at, messaging, standby, changed, unwrapped: {
        "id": account,
        "time": at,
        **({"messaging": messaging} if messaging is not None else {}),
        **({"standby": standby} if standby else {}),
        **({"changes": changed} if changed else {}),
        **(unwrapped or {}),
    },
    ids,
    times,
    st.one_of(st.none(), st.lists(messaging_items, max_size=6)),
    st.lists(messaging_items, max_size=2),
    st.lists(changes, max_size=3),
    st.one_of(st.none(), changes),
)
meta_bodies = st.builds(
    lambda listed: {"object": "instagram", "entry": listed}, st.lists(entries, min_size=0, max_size=4)
)

# --- mutations --------------------------------------------------------------------------------------------

HUGE = ("x" * 300_000, "\U0001f600" * 70_000, "\ud83d" * 1000)  # each under 1.1 MB as escaped JSON
STRUCTURAL = ("drop", "duplicate", "retype", "huge", "nest", "unicode")
BYTEWISE = (
    "truncate",
    "invalid_utf8",
    "duplicate_key",
    "lone_surrogate",
    "nan",
    "bom",
    "trailing",
    "deep",
    "digit",
    "utf16",
)


def _paths(value: Any) -> list[tuple[Any, ...]]:
    """Every path into ``value`` down to depth 40 (iterative: the values may be nested thousands deep)."""
    found: list[tuple[Any, ...]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while stack:
        here, inner = stack.pop()
        found.append(here)
        if len(here) < 40 and isinstance(inner, dict):
            stack.extend(((*here, key), item) for key, item in inner.items())
        elif len(here) < 40 and isinstance(inner, list):
            stack.extend(((*here, index), item) for index, item in enumerate(inner))
    return sorted(found, key=repr)


def mutate(document: Any, operations: list[tuple[str, int, Any]]) -> Any:
    """Apply structural mutations, each at the path its number picks among the document's paths; nesting
    last, so no other mutation has to walk a thousand-deep value."""
    document = json.loads(json.dumps(document))
    for operation, pick, value in sorted(operations, key=lambda o: o[0] == "nest"):
        paths = [p for p in _paths(document) if p]
        if not paths:
            return value if operation == "retype" else document
        path = paths[pick % len(paths)]
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if operation == "drop":
            del parent[last]
        elif operation == "duplicate":
            if isinstance(parent, list):
                parent.insert(last, json.loads(json.dumps(parent[last])))
            else:
                parent[f"{last}_copy"] = parent[last]
        elif operation == "retype":
            parent[last] = value
        elif operation == "huge":
            # Bounded whatever came before: a huge value is replaced, never multiplied (a list of 5000 copies
            # of a 300 kB string is 1.5 GB).
            parent[last] = HUGE[pick % len(HUGE)] if pick % 4 else ["x"] * 5000
        elif operation == "nest":
            nested: Any = parent[last]
            for _ in range(pick % 1200):
                nested = [nested]
            parent[last] = nested
        else:
            parent[last] = "\u0000\ud800\uffff\U0010ffff\u200b" + str(value)[:100]
    return document


def mutate_bytes(body: bytes, operations: list[tuple[str, int]]) -> bytes:
    for operation, pick in operations:
        at = pick % (len(body) + 1)
        if operation == "truncate":
            body = body[:at]
        elif operation == "invalid_utf8":
            invalid = (b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80")[pick % 5]
            body = body[:at] + invalid + body[at:]
        elif operation == "duplicate_key":
            body = body.replace(b"{", (b'{"object":"page",', b'{"entry":null,', b'{"id":"1","id":2,')[pick % 3], 1)
        elif operation == "lone_surrogate":
            body = body.replace(b'":"', b'":"\\ud83d', 1) if pick % 2 else body.replace(b'":"', b'":"\\udc00x', 1)
        elif operation == "nan":
            body = body.replace(b":1", (b":NaN", b":Infinity", b":-Infinity", b":1e999")[pick % 4], 1)
        elif operation == "bom":
            body = b"\xef\xbb\xbf" + body
        elif operation == "trailing":
            body = body + (b" ", b"garbage", b"\x00", b"}")[pick % 4]
        elif operation == "deep":
            depth = 1 + pick % 200_000
            body = b'{"object":"instagram","entry":' + b"[" * depth + b"]" * depth + b"}"
        elif operation == "digit":
            body = body.replace(b"1", b"9", 1 + pick % 3)
        else:
            try:
                body = body.decode("utf-8").encode("utf-16")
            except UnicodeDecodeError:
                body = body[::-1]
    return body


documents = st.one_of(
    meta_bodies,
    st.builds(
        mutate,
        meta_bodies,
        st.lists(st.tuples(st.sampled_from(STRUCTURAL), st.integers(0, 10**6), json_values), min_size=1, max_size=3),
    ),
    st.builds(
        lambda entry: {"object": "instagram", "entry": [entry]},  # the existing property's generator
        st.dictionaries(
            st.sampled_from(["id", "time", "messaging", "standby", "changes", "field", "value"]), meta_like, max_size=5
        ),
    ),
    json_values,
)


def _encode(document: Any) -> bytes:
    # As Meta sends it (ASCII with escapes) or with raw UTF-8; lone surrogates escaped either way.
    return json.dumps(document, ensure_ascii=True).encode()


raw_bodies = st.one_of(
    st.builds(_encode, documents),
    st.builds(
        mutate_bytes,
        st.builds(_encode, meta_bodies),
        st.lists(st.tuples(st.sampled_from(BYTEWISE), st.integers(0, 10**7)), min_size=1, max_size=3),
    ),
    st.binary(max_size=300),
)

# --- the properties ---------------------------------------------------------------------------------------

SECRET = APP_SECRET


def parsing_checker() -> Callable[[bytes], None]:
    def check(body: bytes) -> None:
        """The handler's logic on a signed body: a 4xx with a reason, or every item as a portable event."""
        store, queue = MemoryStore(), MemoryQueue()
        try:
            verified = verify_and_parse(body, sign(body, SECRET), [SECRET], MAX_BODY_BYTES)
        except Rejected as rejected:
            expect(400 <= rejected.status < 500 and bool(rejected.reason), f"{rejected.status} {rejected.reason}")
            return
        events = normalize(verified.envelope, NOW_MS)
        result = ingest(verified.envelope, NOW_MS, store, queue)
        items = sum(items_in(entry) for entry in verified.envelope.entry)
        expect(len(events) == items, f"{items} items became {len(events)} events")
        crashed = [e.error for e in events if e.error and e.error.startswith("normaliser error")]
        expect(not crashed, f"the normaliser raised on an item: {crashed}")
        distinct = len({e.event_id for e in events})
        expect(
            result.published == distinct == len(queue.messages) == len(store.items),
            f"{distinct} distinct events: {result.published} published, {len(queue.messages)} queued, "
            f"{len(store.items)} stored",
        )
        for event in queue.messages:
            serialized = SerializedEvent.of(event)
            expect(serialized.body.isascii() and len(serialized.body) <= MAX_EVENT_BYTES, "not queue/table-safe")
            expect(json.loads(serialized.body)["event_id"] == event.event_id, "the event does not parse back")

    return check


def check_unsigned_parsing(case: tuple[bytes, str | None]) -> None:
    body, header = case
    try:
        verify_and_parse(body, header, [SECRET], MAX_BODY_BYTES)
    except Rejected as rejected:
        expect(rejected.status in (401, 413), f"{rejected.status} {rejected.reason}")
        return
    raise AssertionError(f"an unsigned body was accepted with header {header!r}")


def forged(body: bytes, how: str, other: bytes) -> str | None:
    """A header that does not sign ``body`` with a configured secret."""
    right = sign(body, SECRET)
    return {
        "missing": None,
        "empty": "",
        "wrong_secret": sign(body, "not-the-app-secret"),
        "other_body": sign(other, SECRET) if other != body else sign(body + b" ", SECRET),
        "truncated": right[:-2],
        "no_prefix": right.removeprefix("sha256="),
        "sha1": "sha1=" + right[7:47],
        "flipped": right[:-1] + ("0" if right[-1] != "0" else "1"),
        "garbage": "sha256=" + "zz" * 32,
        "twice": f"{right},{right}",
    }[how]


FORGERIES = (
    "missing",
    "empty",
    "wrong_secret",
    "other_body",
    "truncated",
    "no_prefix",
    "sha1",
    "flipped",
    "garbage",
    "twice",
)
unsigned_cases = st.builds(
    lambda body, how, other: (body, forged(body, how, other)), raw_bodies, st.sampled_from(FORGERIES), raw_bodies
)


@dataclass(frozen=True)
class Delivery:
    """How API Gateway hands the body over."""

    body: bytes
    header: str | None
    content_type: str | None
    base64: str  # "auto" (as API Gateway does for the type), "forced" (always), "broken" (not base64 at all)


def event_of(delivery: Delivery) -> dict[str, Any]:
    headers = {"content-type": delivery.content_type} if delivery.content_type else {}
    if delivery.header is not None:
        headers["X-Hub-Signature-256"] = delivery.header
    event = http_api_event("POST", "/webhook", headers=headers, body=delivery.body, now_ms=NOW_MS)
    if delivery.base64 == "forced" and not event["isBase64Encoded"]:
        event["body"], event["isBase64Encoded"] = base64.b64encode(delivery.body).decode(), True
    elif delivery.base64 == "broken":
        event["body"], event["isBase64Encoded"] = "***" + event.get("body", ""), True
    return event


content_types = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/octet-stream",
        "application/x-www-form-urlencoded",
    ]
)
base64_modes = st.sampled_from(["auto", "auto", "forced", "broken"])
signed_deliveries = st.builds(
    lambda body, secret, ctype, mode, upper: Delivery(
        body, (lambda h: h.upper().replace("SHA256=", "sha256=") if upper else h)(sign(body, secret)), ctype, mode
    ),
    raw_bodies,
    st.sampled_from([APP_SECRET, INSTAGRAM_APP_SECRET]),
    content_types,
    base64_modes,
    st.booleans(),
)
unsigned_deliveries = st.builds(
    lambda case, ctype, mode: Delivery(case[0], case[1], ctype, mode), unsigned_cases, content_types, base64_modes
)


def answer_checker(harness: Harness, *, signed: bool) -> Callable[[Delivery], None]:
    def check(delivery: Delivery) -> None:
        response = harness.invoke(event_of(delivery))  # an exception out of it is a failure: Lambda's 500
        status = int(response["statusCode"])
        expect(status < 500, f"{status} {response.get('body')}")
        if status >= 400:
            error = json.loads(response["body"]).get("error")
            expect(isinstance(error, str) and bool(error), f"a {status} without a reason: {response.get('body')}")
        if not signed:
            expect(status >= 400, f"an unsigned body was answered {status}")

    return check


@dataclass(frozen=True)
class WebhookFuzzPlan:
    parsing: int = 8000
    unsigned_parsing: int = 600
    handler: int = 1000  # through the real handler and moto
    unsigned_handler: int = 600
    handler_round: int = 100  # handler examples per fresh stack (moto's tables slow down as they grow)


def run(plan: WebhookFuzzPlan, seed: int) -> Result:
    started = time.monotonic()
    failures: list[str] = []
    counts: dict[str, int] = {}
    # Justified suppressions: bodies of hundreds of kB and 200,000-deep nesting are the point (data_too_large,
    # too_slow); a handler example costs moto round trips (too_slow).
    big = (HealthCheck.data_too_large, HealthCheck.too_slow, HealthCheck.large_base_example)
    with logged_errors() as logged:
        for name, check, strategy, examples in (
            ("parsing", parsing_checker(), raw_bodies, plan.parsing),
            ("unsigned parsing", check_unsigned_parsing, unsigned_cases, plan.unsigned_parsing),
        ):
            found = check_property(check, strategy, examples=examples, run_seed=seed, suppress=big)
            counts[name] = found.examples
            if found.failure:
                failures.append(f"{name}: {found.failure}")
        done = 0
        while done < plan.handler:
            size = min(plan.handler_round, plan.handler - done)
            with webhook_stack() as harness:
                found = check_property(
                    answer_checker(harness, signed=True),
                    signed_deliveries,
                    examples=size,
                    run_seed=seed + done + 1,
                    suppress=big,
                )
            counts["handler"] = counts.get("handler", 0) + found.examples
            done += size
            if found.failure:
                failures.append(f"handler: {found.failure}")
                break
        with webhook_stack() as harness:
            found = check_property(
                answer_checker(harness, signed=False),
                unsigned_deliveries,
                examples=plan.unsigned_handler,
                run_seed=seed,
                suppress=big,
            )
            counts["unsigned handler"] = found.examples
            if found.failure:
                failures.append(f"unsigned handler: {found.failure}")
            kept = len(harness.items()), len(harness.drain())
        if kept != (0, 0):
            failures.append(f"unsigned bodies left {kept[0]} items in the table and {kept[1]} queue messages")
    unexplained = sorted(set(logged.records))
    failures.extend(f"logged with a traceback: {r}" for r in unexplained[:10])
    total = sum(counts.values())
    summary = (
        f"{total} bodies (seed {seed}): {counts.get('parsing', 0)} signed and "
        f"{counts.get('unsigned parsing', 0)} unsigned through the parsing layer (verify_and_parse + ingest), "
        f"{counts.get('handler', 0)} signed and {counts.get('unsigned handler', 0)} unsigned through the real "
        f"handler and moto; unsigned ones stored {kept[0]} items, queued {kept[1]} messages; "
        f"failures {len(failures)}"
    )
    return Result(
        "webhook fuzzing",
        summary,
        violations=failures,
        seconds=time.monotonic() - started,
        figures={"bodies": total, **{name.replace(" ", "_"): n for name, n in counts.items()}},
    )

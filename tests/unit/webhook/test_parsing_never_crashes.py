"""Property: whatever signed JSON arrives, parsing answers Rejected (4xx) or events, never an exception."""

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from igdm.contracts.events import InboundEvent
from igdm.contracts.serialized import MAX_EVENT_BYTES, SerializedEvent
from local import meta_samples as m
from webhook.meta_payload import Entry
from webhook.normalize import normalize
from webhook.service import Rejected, verify_and_parse
from webhook.signature import sign

SECRET = "s"
# Any code point, lone surrogate halves and U+FFFF included: customers' text can hold them.
any_text = st.text(alphabet=st.characters(codec=None, categories=None), max_size=8)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    any_text,
    st.sampled_from(["1735689599876", "1527459824", "17841400000000001", "\ud83d", "\U0001f600" * 40_000]),
)  # 480 kB escaped: must be cut
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(any_text, inner, max_size=4)),
    max_leaves=12,
)
known_keys = st.sampled_from(
    [
        "sender",
        "recipient",
        "timestamp",
        "message",
        "reaction",
        "read",
        "postback",
        "referral",
        "optin",
        "message_edit",
        "pass_thread_control",
        "mid",
        "text",
        "attachments",
        "payload",
        "type",
        "is_echo",
        "is_deleted",
        "reply_to",
        "story",
        "quick_reply",
        "field",
        "value",
        "from",
        "id",
        "media",
        "changes",
        "time",
    ]
)
meta_like = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(known_keys, inner, max_size=5)),
    max_leaves=20,
)


def mutate_sample(item: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    mutated: dict[str, Any] = json.loads(json.dumps(item))
    target = mutated.get("message", mutated)
    target[key] = value
    return mutated


samples = st.sampled_from(
    [
        m.text(),
        m.attachment("image"),
        m.post_share(),
        m.story_reply(),
        m.reaction(),
        m.read(),
        m.postback(),
        m.echo(),
        m.handover(),
        m.optin(),
        m.edited(),
    ]
)


def check(document: Any) -> None:
    body = json.dumps(document).encode()
    try:
        envelope = verify_and_parse(body, sign(body, SECRET), [SECRET], 10_000_000).envelope
    except Rejected as rejected:
        assert 400 <= rejected.status < 500
        return
    events = normalize(envelope, 1735689601000)
    assert len(events) == sum(items_in(entry) for entry in envelope.entry)  # nothing dropped
    for event in events:
        serialized = SerializedEvent.of(event)
        assert serialized.body.isascii() and len(serialized.body) <= MAX_EVENT_BYTES  # SQS- and DynamoDB-safe
        assert InboundEvent.model_validate_json(serialized.body).event_id == event.event_id  # consumers can parse


def items_in(raw_entry: Any) -> int:
    try:
        entry = Entry.model_validate(raw_entry)
    except ValidationError:
        return 1  # an unusable entry is kept whole as one unknown event
    return len(entry.messaging) + len(entry.standby) + len(entry.changes) + (entry.field is not None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entry=st.dictionaries(
        st.sampled_from(["id", "time", "messaging", "standby", "changes", "field", "value"]), meta_like, max_size=5
    )
)
def test_arbitrary_entries(entry: dict[str, Any]) -> None:
    check({"object": "instagram", "entry": [entry]})


@settings(max_examples=300, deadline=None)
@given(item=samples, key=known_keys, value=json_values)
def test_realistic_items_with_one_field_replaced(item: dict[str, Any], key: str, value: Any) -> None:
    check(m.envelope(mutate_sample(item, key, value)))


@settings(max_examples=100, deadline=None)
@given(document=json_values)
def test_arbitrary_json(document: Any) -> None:
    check(document)

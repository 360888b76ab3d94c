"""The webhook's pydantic-free path (igdm.inbound.text_messages, igdm.contracts.plain_event) against the pydantic
one (igdm.inbound.normalize, InboundEvent): the same events, byte for byte the same JSON, for every payload
shape; and every event the webhook produces valid against the published JSON Schema."""

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from igdm.contracts.events import InboundEvent
from igdm.contracts.plain_event import PlainEvent, as_model
from igdm.contracts.serialized import MAX_EVENT_BYTES, SerializedEvent
from igdm.contracts.stored_events import expanded
from igdm.inbound.meta_payload import Envelope
from igdm.inbound.normalize import normalize
from igdm.inbound.text_messages import SignedBody, normalize_entries
from igdm.runtime.unicode import without_lone_surrogates
from local.samples import meta as m
from local.samples.strategies import json_values, known_keys, meta_like, mutate_sample, samples

RECEIVED_MS = 1735689601000
SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "inbound-event.v1.json"


@cache
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def same_events(document: dict[str, Any], received_at_ms: int = RECEIVED_MS) -> list[PlainEvent | InboundEvent]:
    """Both paths' events for a body the webhook accepted: equal, with equal JSON, each valid against the schema."""
    document = without_lone_surrogates(document)  # as the webhook hands it on (webhook.service)
    entries = document["entry"] if isinstance(document["entry"], list) else [document["entry"]]
    fast = normalize_entries(SignedBody("instagram", entries), received_at_ms)
    reference = normalize(Envelope.model_validate(document), received_at_ms)
    assert len(fast) == len(reference)
    for plain, model in zip(fast, reference, strict=True):
        assert as_model(plain) == model
        body = SerializedEvent.of(plain).body
        assert body == SerializedEvent.of(model).body
        # The item keeps the event without its default fields; the readers get the published JSON back.
        assert expanded(SerializedEvent.of(plain).stored()) == body == expanded(SerializedEvent.of(model).stored())
        assert body.isascii() and len(body) <= MAX_EVENT_BYTES
        validator().validate(json.loads(body))
    return fast


def message(content: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return m.inbound({"message": content}, **kw)


def plain_count(events: list[PlainEvent | InboundEvent]) -> int:
    return sum(isinstance(e, PlainEvent) for e in events)


TEXTS = [
    "Hi, is this in stock?",
    "",
    " ",
    "caf\u00e9 \u00fcber na\u00efve",
    "\U0001f600\U0001f44d\U0001f3fd family: \U0001f468\u200d\U0001f469\u200d\U0001f467",
    "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd \u4f60\u597d \u3053\u3093\u306b\u3061\u306f",
    'quotes " and \\ backslashes \\" and / slashes',
    "control \x00\x01\x1f\x7f\t\n\r characters",
    "line\u2028separator\u2029 and \ufeff bom \uffff noncharacter",
    "half an emoji \ud83d here",  # a lone surrogate: replaced before normalising, as the webhook does
    "x" * 1000,
    "\U0001f600" * 2000,
]


@pytest.mark.parametrize("text", TEXTS)
def test_a_text_message_takes_the_plain_path_and_gives_the_models_event(text: str) -> None:
    events = same_events(m.envelope(m.text(words=text)))
    assert plain_count(events) == 1


@pytest.mark.parametrize(
    "item",
    [
        message({"mid": 12345678901234567890, "text": "hi"}),  # ids may come as JSON numbers
        message({"mid": "m_1", "text": "hi"}, ts=1735689599),  # seconds
        message({"mid": "m_1", "text": "hi"}, ts=1735689599876543),  # microseconds
        message({"mid": "m_1", "text": "hi"}, ts=0),
        message({"mid": "m_1", "text": "hi"}, customer=str(2**70)),
        {  # the account writing to a customer without an echo flag: outbound
            "sender": {"id": m.ACCOUNT},
            "recipient": {"id": m.CUSTOMER},
            "timestamp": m.T0,
            "message": {"mid": "m_out", "text": "hello"},
        },
        {  # neither side the account (Facebook Login's Page id on the entry): inbound
            "sender": {"id": "1"},
            "recipient": {"id": "2"},
            "timestamp": m.T0,
            "message": {"mid": "m_x", "text": "hello"},
        },
    ],
)
def test_text_messages_of_every_shape_meta_uses(item: dict[str, Any]) -> None:
    assert plain_count(same_events(m.envelope(item))) == 1


def test_a_text_on_the_standby_channel_too() -> None:
    document = {"object": "instagram", "entry": [{"id": m.ACCOUNT, "time": m.T0, "standby": [m.text()]}]}
    events = same_events(document)
    assert plain_count(events) == 1 and events[0].source == "standby"


def test_a_text_too_large_for_the_queue_is_cut_as_the_models_is() -> None:
    events = same_events(m.envelope(m.text(words="\U0001f600" * 30_000)))
    serialized = SerializedEvent.of(events[0])
    assert serialized.event.truncated and not serialized.event.raw


@pytest.mark.parametrize(
    "item",
    [
        m.attachment("image"),
        m.post_share(),
        m.story_reply(),
        m.reply(),
        m.quick_reply(),
        m.postback(),
        m.reaction(),
        m.reaction(action="unreact"),
        m.read(),
        m.deleted(),
        m.edited(),
        m.echo(),
        m.referral(),
        m.ad_message(),
        m.optin(),
        m.handover(),
        m.unsupported(),
        m.comment_change(),
        m.mention_change(),
        message({"mid": "m_1", "text": None}),
        message({"mid": "m_1", "text": 5}),
        message({"mid": "m_1", "text": "hi", "is_self": True}),
        message({"mid": "m_1", "text": "hi", "is_echo": False}),
        message({"mid": "", "text": "hi"}),
        message({"mid": "m \u00e9", "text": "hi"}),
        message({"mid": True, "text": "hi"}),
        message({"mid": "m_1", "text": "hi"}, ts="1735689599876"),
        message({"mid": "m_1", "text": "hi"}, ts=1.5e12),
        message({"mid": "m_1", "text": "hi"}, ts=-5),
        message({"mid": "m_1", "text": "hi"}, ts=True),
        message({"mid": "m_1", "text": "hi"}, ts=10**20),
        {**m.text(), "sender": {"id": m.CUSTOMER, "username": "someone"}},
        {**m.text(), "extra": 1.5},
        {**m.text(), "reaction": "not an object"},
        {"sender": {"id": m.CUSTOMER}, "recipient": {"id": m.ACCOUNT}, "message": {"mid": "m_1", "text": "hi"}},
        "not an object",
        None,
    ],
)
def test_every_other_item_falls_back_to_the_model_with_the_same_result(item: Any) -> None:
    assert plain_count(same_events(m.envelope(item))) == 0


@pytest.mark.parametrize(
    "entry",
    [
        {"id": True, "time": m.T0, "messaging": [m.text()]},
        {"id": "", "messaging": [m.text()]},
        {"id": 1.5, "messaging": [m.text()]},
        {"time": m.T0, "messaging": [m.text()]},
        "not an entry",
        {"id": m.ACCOUNT, "changes": [m.comment_change()], "messaging": [m.text()]},
        {"id": m.ACCOUNT, "changes": {}, "messaging": [m.text()]},
        {"id": m.ACCOUNT, "field": "comments", "value": {"id": "1"}, "messaging": [m.text()]},
    ],
)
def test_entries_the_plain_path_does_not_read_fall_back_whole(entry: Any) -> None:
    assert plain_count(same_events({"object": "instagram", "entry": [entry]})) == 0


def test_a_batch_mixing_texts_and_others_keeps_metas_order() -> None:
    items = [m.text(mid=f"m_{i}", ts=m.T0 + i) if i % 3 else m.reaction(mid=f"m_{i}") for i in range(12)]
    document: dict[str, Any] = {
        "object": "instagram",
        "entry": [
            {"id": m.ACCOUNT, "time": m.T0, "messaging": items[:6], "standby": items[6:]},
            {"id": int(m.ACCOUNT), "messaging": m.text(mid="m_lone")},  # a lone item, not a list
            {"id": m.ACCOUNT, "messaging": None},
        ],
    }
    events = same_events(document)
    assert plain_count(events) == 9


ids = st.one_of(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8), st.integers())
timestamps = st.one_of(
    st.integers(-(10**3), 10**18), st.sampled_from([m.T0, str(m.T0), 1735689599, 1735689599876543, 1.5, True])
)
texts = st.one_of(st.text(st.characters(codec=None, categories=None), max_size=30), st.none(), st.integers())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sender=ids, recipient=ids, timestamp=timestamps, mid=ids, text=texts, source=st.sampled_from(["m", "s"]))
def test_any_text_message_shaped_item(
    sender: Any, recipient: Any, timestamp: Any, mid: Any, text: Any, source: str
) -> None:
    item = {"sender": {"id": sender}, "recipient": {"id": recipient}, "timestamp": timestamp}
    item["message"] = {"mid": mid, "text": text}
    channel = "messaging" if source == "m" else "standby"
    same_events({"object": "instagram", "entry": [{"id": m.ACCOUNT, channel: [item]}]})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(item=samples, key=known_keys, value=json_values)
def test_realistic_items_with_one_field_replaced(item: dict[str, Any], key: str, value: Any) -> None:
    same_events(m.envelope(mutate_sample(item, key, value)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entry=st.dictionaries(
        st.sampled_from(["id", "time", "messaging", "standby", "changes", "field", "value"]), meta_like, max_size=5
    )
)
def test_arbitrary_entries(entry: dict[str, Any]) -> None:
    same_events({"object": "instagram", "entry": [entry]})


def test_the_plain_event_writes_every_field_of_the_model_in_its_order() -> None:
    [event] = same_events(m.envelope(m.text()))
    assert list(json.loads(SerializedEvent.of(event).body)) == list(InboundEvent.model_fields)

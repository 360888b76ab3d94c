"""Property: whatever signed JSON arrives, parsing answers Rejected (4xx) or events, never an exception."""

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from igdm.contracts.events import InboundEvent
from igdm.contracts.serialized import MAX_EVENT_BYTES, SerializedEvent
from igdm.inbound.normalize import normalize
from local.samples import meta as m
from local.samples.strategies import items_in, json_values, known_keys, meta_like, mutate_sample, samples
from webhook.service import Rejected, verify_and_parse
from webhook.signature import sign

SECRET = "s"


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

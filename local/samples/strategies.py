"""Hypothesis strategies for what Meta might send: any JSON, JSON shaped like Meta's (its keys, its ids and
timestamps as strings and numbers, a 480 kB value), and the sample payloads with one field replaced. Used by
the webhook's parsing property (tests/unit/webhook) and the chaos fuzzer."""

import json
from typing import Any

from hypothesis import strategies as st
from pydantic import ValidationError

from igdm.inbound.meta_payload import Entry
from local.samples import meta as m

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


def items_in(raw_entry: Any) -> int:
    try:
        entry = Entry.model_validate(raw_entry)
    except ValidationError:
        return 1  # an unusable entry is kept whole as one unknown event
    return len(entry.messaging) + len(entry.standby) + len(entry.changes) + (entry.field is not None)

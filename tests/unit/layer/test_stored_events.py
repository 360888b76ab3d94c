"""An event item's stored JSON (igdm.contracts.stored_events): without the fields at their defaults, and given
back by expanded() exactly as it was published, for every kind of item Meta sends."""

import json
from typing import Any

import pytest

from igdm.contracts.events import InboundEvent
from igdm.contracts.stored_events import expanded
from igdm.inbound.meta_payload import Envelope
from igdm.inbound.normalize import normalize
from local.samples import meta as m

ITEMS = {
    "text": m.text(),
    "emoji and escapes": m.text(words='Ça va? 👍 "quoted" \\ tab\t'),
    "image": m.attachment("image"),
    "post share": m.post_share(),
    "story reply": m.story_reply(),
    "reply": m.reply(),
    "quick reply": m.quick_reply(),
    "postback": m.postback(),
    "reaction": m.reaction(),
    "read": m.read(),
    "deleted": m.deleted(),
    "edited": m.edited(),
    "echo": m.echo(),
    "referral": m.referral(),
    "ad message": m.ad_message(),
    "optin": m.optin(),
    "handover": m.handover(),
    "unsupported": m.unsupported(),
}
CHANGES = {"comment": m.comment_change(), "mention": m.mention_change()}


def events() -> list[tuple[str, InboundEvent]]:
    found: list[tuple[str, InboundEvent]] = []
    documents: list[tuple[str, dict[str, Any]]] = [(name, m.envelope(item)) for name, item in ITEMS.items()]
    documents += [(name, m.envelope(change, key="changes")) for name, change in CHANGES.items()]
    for name, document in documents:
        found += [(name, e) for e in normalize(Envelope.model_validate(document), m.RECEIVED_MS)]
    return found


@pytest.mark.parametrize(("name", "event"), events(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_stored_form_is_smaller_and_expands_to_the_published_json(name: str, event: InboundEvent) -> None:
    published = event.model_dump_json(ensure_ascii=True)
    stored = event.model_dump_json(ensure_ascii=True, exclude_defaults=True)
    assert expanded(stored) == published
    assert expanded(published) == published  # an item written before holds the whole JSON
    assert len(stored) < len(published)
    defaults = {name: field.get_default(call_default_factory=True) for name, field in InboundEvent.model_fields.items()}
    assert [k for k, v in json.loads(stored).items() if v == defaults[k]] == []

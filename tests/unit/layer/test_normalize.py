"""Every kind of Instagram event, from a realistic payload, into the canonical schema."""

from datetime import UTC, datetime
from typing import Any

import pytest

from igdm.contracts.events import EventKind, InboundEvent
from igdm.inbound.meta_payload import Envelope
from igdm.inbound.normalize import normalize
from local.samples import meta as p

RECEIVED_MS = 1735689601000


def events_of(document: dict[str, Any]) -> list[InboundEvent]:
    return normalize(Envelope.model_validate(document), RECEIVED_MS)


def only(document: dict[str, Any]) -> InboundEvent:
    events = events_of(document)
    assert len(events) == 1
    return events[0]


def test_text_message_carries_ids_direction_times_and_raw() -> None:
    item = p.text()
    event = only(p.envelope(item))
    assert event.kind == EventKind.TEXT
    assert event.text == "Hi, is this in stock?"
    assert event.account_id == p.ACCOUNT
    assert event.customer_id == p.CUSTOMER
    assert event.conversation_id == f"{p.ACCOUNT}:{p.CUSTOMER}"
    assert event.direction == "inbound"
    assert event.user_initiated is True
    assert event.message_id == "m_text"
    assert event.occurred_at == datetime(2024, 12, 31, 23, 59, 59, 876000, tzinfo=UTC)
    assert event.received_at == datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert event.raw == item
    assert event.source == "messaging"


@pytest.mark.parametrize("kind", ["image", "video", "audio", "file", "ig_reel", "reel", "story_mention"])
def test_media_attachments_keep_type_and_cdn_url(kind: str) -> None:
    event = only(p.envelope(p.attachment(kind)))
    assert event.kind == EventKind.ATTACHMENTS
    assert [(a.type, a.url) for a in event.attachments] == [(kind, p.CDN.format("m_att"))]
    assert event.user_initiated is True


def test_post_share_keeps_both_share_and_ig_post_with_media_id() -> None:
    event = only(p.envelope(p.post_share()))
    assert [(a.type, a.media_id, a.title) for a in event.attachments] == [
        ("share", "18139494541428835", "Caption"),
        ("ig_post", "18139494541428835", "Caption"),
    ]


def test_unknown_attachment_type_is_kept_as_is() -> None:
    payload = {"future_field": {"x": 1}}
    event = only(p.envelope(p.attachment("ig_story_v9", payload=payload)))
    assert event.kind == EventKind.ATTACHMENTS
    assert event.attachments[0].type == "ig_story_v9"
    assert event.attachments[0].payload == payload
    assert event.attachments[0].url is None


def test_story_reply_keeps_the_story() -> None:
    event = only(p.envelope(p.story_reply()))
    assert event.kind == EventKind.STORY_REPLY
    assert event.text == "Love this!"
    assert event.reply_to is not None and event.reply_to.story is not None
    assert event.reply_to.story.id == "17900000000000000"
    assert event.user_initiated is True


def test_reply_to_a_message() -> None:
    event = only(p.envelope(p.reply()))
    assert event.kind == EventKind.REPLY
    assert event.reply_to is not None and event.reply_to.message_id == "m_6"


def test_quick_reply_tap() -> None:
    event = only(p.envelope(p.quick_reply()))
    assert event.kind == EventKind.QUICK_REPLY
    assert (event.text, event.quick_reply_payload) == ("Track order", "TRACK_ORDER")


def test_postback_opens_the_window() -> None:
    event = only(p.envelope(p.postback()))
    assert event.kind == EventKind.POSTBACK
    assert event.postback is not None and (event.postback.title, event.postback.payload) == ("Talk to a human", "HUMAN")
    assert event.message_id == "m_pb"
    assert event.user_initiated is True


def test_reaction_and_unreact() -> None:
    react = only(p.envelope(p.reaction()))
    unreact = only(p.envelope(p.reaction(action="unreact")))
    assert react.kind == EventKind.REACTION
    assert react.reaction is not None and (react.reaction.reaction, react.reaction.emoji) == ("love", "\u2764\ufe0f")
    assert react.message_id == "m_6"
    assert unreact.kind == EventKind.REACTION_REMOVED
    assert unreact.reaction is not None and unreact.reaction.action == "unreact"
    assert react.event_id != unreact.event_id
    assert not react.user_initiated


def test_read() -> None:
    event = only(p.envelope(p.read()))
    assert (event.kind, event.message_id, event.user_initiated) == (EventKind.READ, "m_6", False)


def test_message_deleted_carries_no_content() -> None:
    event = only(p.envelope(p.deleted()))
    assert (event.kind, event.message_id, event.text) == (EventKind.MESSAGE_DELETED, "m_text", None)
    assert event.event_id != only(p.envelope(p.text())).event_id


def test_message_edited() -> None:
    event = only(p.envelope(p.edited()))
    assert event.kind == EventKind.MESSAGE_EDITED
    assert (event.message_id, event.text, event.edit_count) == ("m_text", "Hi, is this in stock in blue?", 1)


def test_echo_is_outbound_with_the_customer_as_recipient() -> None:
    event = only(p.envelope(p.echo()))
    assert event.kind == EventKind.ECHO
    assert (event.direction, event.customer_id, event.user_initiated) == ("outbound", p.CUSTOMER, False)
    assert event.text == "Yes, size M is available"


def test_self_message_never_opens_a_window() -> None:
    item = p.inbound({"message": {"mid": "m_self", "text": "preview", "is_echo": True, "is_self": True}})
    event = only(p.envelope(item))
    assert event.is_self is True
    assert event.user_initiated is False


def test_referral_event_and_ad_referral_inside_a_message() -> None:
    ref = only(p.envelope(p.referral()))
    assert ref.kind == EventKind.REFERRAL
    assert ref.referral is not None and ref.referral.ref == "promo42"
    ad = only(p.envelope(p.ad_message()))
    assert ad.kind == EventKind.TEXT
    assert ad.referral is not None and ad.referral.ad_id == "120000000000"
    assert ad.referral.model_extra == {"ads_context_data": {"ad_title": "Summer sale"}}


def test_optin_kept_raw() -> None:
    event = only(p.envelope(p.optin()))
    assert event.kind == EventKind.OPTIN
    assert event.optin is not None and event.optin["payload"] == "DEALS"


def test_handover_ids_become_strings() -> None:
    event = only(p.envelope(p.handover()))
    assert event.kind == EventKind.HANDOVER
    assert event.handover is not None
    assert (event.handover.type, event.handover.previous_owner_app_id, event.handover.metadata) == (
        "pass_thread_control",
        "111111111111111",
        "escalated",
    )


def test_standby_items_are_marked_standby() -> None:
    event = only(p.envelope(p.text(mid="m_standby"), key="standby"))
    assert (event.kind, event.source, event.user_initiated) == (EventKind.TEXT, "standby", True)


def test_unsupported_message() -> None:
    event = only(p.envelope(p.unsupported()))
    assert event.kind == EventKind.UNSUPPORTED
    assert event.user_initiated is True


def test_comment_with_and_without_the_changes_wrapper() -> None:
    wrapped = only(
        {"object": "instagram", "entry": [{"id": p.ACCOUNT, "time": 1735690400, "changes": [p.comment_change()]}]}
    )
    unwrapped = only({"object": "instagram", "entry": [{"id": p.ACCOUNT, "time": 1735690400, **p.comment_change()}]})
    for event in (wrapped, unwrapped):
        assert event.kind == EventKind.COMMENT
        assert event.comment is not None
        assert (event.comment.comment_id, event.comment.username, event.comment.media_id) == (
            "17999999999999999",
            "jane",
            "18000000000000000",
        )
        assert event.customer_id == p.CUSTOMER
        assert event.user_initiated is False  # commenting gives no messaging consent
        assert event.occurred_at == datetime.fromtimestamp(1735690400, tz=UTC)  # entry.time in seconds
    assert wrapped.event_id == unwrapped.event_id


def test_mention() -> None:
    event = only(
        {"object": "instagram", "entry": [{"id": p.ACCOUNT, "time": 1520622968, "changes": [p.mention_change()]}]}
    )
    assert event.kind == EventKind.MENTION
    assert event.mention is not None and event.mention.media_id == "18000000000000001"
    assert event.conversation_id == p.ACCOUNT


def test_dashboard_test_payload_with_string_timestamps_in_changes() -> None:
    value = {
        "sender": {"id": "12334"},
        "recipient": {"id": "23245"},
        "timestamp": "1527459824",
        "message": {"mid": "random_mid", "text": "random_text"},
    }
    event = only(
        {
            "object": "instagram",
            "entry": [{"id": "0", "time": "1527459824", "changes": [{"field": "messages", "value": value}]}],
        }
    )
    assert event.kind == EventKind.TEXT
    assert event.occurred_at == datetime.fromtimestamp(1527459824, tz=UTC)
    assert event.source == "changes"


def test_numeric_ids_and_second_timestamps_are_normalised() -> None:
    item = {
        "sender": {"id": 6543210987654321},
        "recipient": {"id": 17841400000000001},
        "timestamp": 1735689599,
        "message": {"mid": "m_num", "text": "x"},
    }
    event = only(p.envelope(item, account=17841400000000001))  # type: ignore[arg-type]
    assert (event.account_id, event.customer_id) == ("17841400000000001", "6543210987654321")
    assert event.occurred_at == datetime.fromtimestamp(1735689599, tz=UTC)


def test_unrecognised_items_become_unknown_with_raw_and_reason() -> None:
    strange = p.inbound({"brand_new_event": {"x": 1}})
    broken = p.inbound({"message": {"text": "no mid"}})
    events = events_of(
        {
            "object": "instagram",
            "entry": [
                {
                    "id": p.ACCOUNT,
                    "messaging": [strange, broken, "not-an-object"],
                    "changes": [{"field": "story_insights", "value": {"impressions": 3}}],
                }
            ],
        }
    )
    assert [e.kind for e in events] == [EventKind.UNKNOWN] * 4
    assert events[0].raw == strange and events[0].customer_id == p.CUSTOMER
    assert events[1].error is not None and "message.mid" in events[1].error
    assert events[2].raw == {"item": "not-an-object"}
    assert events[3].error == "unrecognised field 'story_insights'"
    assert len({e.event_id for e in events}) == 4


def test_every_entry_and_item_of_a_batch_is_kept_with_distinct_ids() -> None:
    document = {
        "object": "instagram",
        "entry": [
            {"id": p.ACCOUNT, "time": 1, "messaging": [p.text(mid=f"m{i}") for i in range(500)]},
            {"id": "17841400000000002", "time": 1, "messaging": [p.text(mid=f"m{i}") for i in range(500)]},
        ],
    }
    events = events_of(document)
    assert len(events) == 1000
    assert len({e.event_id for e in events}) == 1000


def test_event_ids_are_identical_on_redelivery() -> None:
    first = events_of(p.envelope(p.text(), p.reaction(), p.read(), p.referral(), p.optin()))
    again = normalize(
        Envelope.model_validate(p.envelope(p.text(), p.reaction(), p.read(), p.referral(), p.optin())),
        RECEIVED_MS + 60_000,
    )
    assert [e.event_id for e in first] == [e.event_id for e in again]


def test_mentions_without_ids_stay_distinct() -> None:
    events = events_of(
        {
            "object": "instagram",
            "entry": [
                {
                    "id": p.ACCOUNT,
                    "time": 1,
                    "changes": [
                        {"field": "mentions", "value": {"caption": "a"}},
                        {"field": "mentions", "value": {"caption": "b"}},
                    ],
                }
            ],
        }
    )
    assert len({e.event_id for e in events}) == 2


@pytest.mark.parametrize("bad_time", [2**70, 1e300, -5, "soon", None])
def test_unusable_timestamps_never_crash(bad_time: Any) -> None:
    events = events_of(p.envelope(p.text(ts=bad_time), time=bad_time))
    assert len(events) == 1
    event = events[0]
    if bad_time is None:
        assert event.kind == EventKind.TEXT and event.occurred_at == event.received_at
    else:
        assert event.kind == EventKind.UNKNOWN and "timestamp" in (event.error or "")
        assert event.occurred_at == event.received_at  # entry.time was unusable too


def test_a_comment_by_the_account_itself_has_no_customer() -> None:
    change = p.comment_change()
    change["value"]["from"] = {"id": p.ACCOUNT, "username": "ourbrand"}
    event = only({"object": "instagram", "entry": [{"id": p.ACCOUNT, "time": 1735690400, "changes": [change]}]})
    assert (event.direction, event.customer_id, event.conversation_id) == ("outbound", None, p.ACCOUNT)


def test_direction_when_entry_id_is_a_page_id_matching_neither_side() -> None:
    page_id = "105000000000001"
    inbound_text = only(p.envelope(p.text(), account=page_id))
    echo = only(p.envelope(p.echo(), account=page_id))
    assert (inbound_text.direction, inbound_text.customer_id) == ("inbound", p.CUSTOMER)
    assert (echo.direction, echo.customer_id) == ("outbound", p.CUSTOMER)


def test_ids_that_are_not_meta_ids_make_the_item_unknown() -> None:
    for bad in ("", "with space", "\u00e9t\u00e9", "x" * 300):
        event = only(p.envelope(p.text(mid=bad)))
        assert event.kind == EventKind.UNKNOWN and event.message_id is None


def test_a_self_message_is_outbound_to_the_account_itself() -> None:
    item = {
        "sender": {"id": p.ACCOUNT},
        "recipient": {"id": p.ACCOUNT},
        "timestamp": p.T0,
        "message": {"mid": "m_self2", "text": "preview", "is_self": True},
    }
    event = only(p.envelope(item))
    assert (event.direction, event.is_self, event.user_initiated) == ("outbound", True, False)

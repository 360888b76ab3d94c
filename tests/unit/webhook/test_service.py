"""Webhook logic with in-memory adapters: handshake, edge rejections, idempotent ingestion."""

import json
from typing import Any, cast

import pytest

from igdm.contracts.events import EventKind
from igdm.contracts.serialized import MAX_EVENT_BYTES, SerializedEvent
from igdm.inbound.ingest import EventKey, StorageUnavailable, ingest
from igdm.inbound.meta_payload import Envelope
from igdm.inbound.normalize import message_event_id
from local.harnesses.webhook_in_memory import MemoryQueue, MemoryStore, Secret, StaticSecrets
from local.samples import meta as p
from webhook.api import lag_sample
from webhook.service import Rejected, handshake, receive
from webhook.signature import sign

APP_SECRET = "app-secret"
SECRETS = StaticSecrets(Secret([APP_SECRET], "verify-me"))
NOW_MS = 1735689601000


def post(
    document: Any,
    store: MemoryStore,
    queue: MemoryQueue,
    *,
    raw: bytes | None = None,
    signature: str | None = "sign",
    secrets: StaticSecrets = SECRETS,
    max_bytes: int = 1_000_000,
) -> Any:
    body = raw if raw is not None else p.body(document)
    header = sign(body, APP_SECRET) if signature == "sign" else signature
    return receive(body, header, NOW_MS, secrets, max_bytes, store, queue)


# ---- handshake


def test_handshake_echoes_the_challenge() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    assert handshake(params, "verify-me") == "1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "verify-me", "hub.challenge": "1"},
        {"hub.verify_token": "verify-me", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "<script>alert(1)</script>"},
        {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "9" * 65},
        {"hub.mode": "subscribe", "hub.verify_token": "verify-me"},
    ],
)
def test_handshake_refuses_anything_else_with_403(params: dict[str, str]) -> None:
    with pytest.raises(Rejected) as caught:
        handshake(params, "verify-me")
    assert caught.value.status == 403


def test_handshake_fails_closed_without_a_configured_token() -> None:
    with pytest.raises(Rejected):
        handshake({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}, None)


# ---- edge rejections store nothing


@pytest.mark.parametrize(
    ("raw", "signature", "status", "reason"),
    [
        (b'{"object":"instagram","entry":[]}', None, 401, "missing X-Hub-Signature-256"),
        (b'{"object":"instagram","entry":[]}', "sha256=" + "0" * 64, 401, "does not match"),
        (b"", "sign", 400, "empty body"),
        (b"{not json", "sign", 400, "not valid JSON"),
        (b"[1,2]", "sign", 400, "JSON object"),
        (b'{"object":"page","entry":[]}', "sign", 400, "object must be 'instagram'"),
        (b'{"object":"instagram","entry":[1,2,{"x":[1e400]}]}', "sign", 400, "not a finite number"),
        (b'{"object":"instagram"}', "sign", 400, "entry"),
        (b'{"object":"instagram","entry":[]}' + b" " * 2000, "sign", 413, "limit is 1024"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_reason_and_store_nothing(
    raw: bytes, signature: str | None, status: int, reason: str
) -> None:
    store, queue = MemoryStore(), MemoryQueue()
    with pytest.raises(Rejected) as caught:
        post(None, store, queue, raw=raw, signature=signature, max_bytes=1024)
    assert caught.value.status == status
    assert reason in caught.value.reason
    assert store.items == {} and queue.messages == []


def test_signature_checked_after_refetching_a_rotated_secret() -> None:
    secrets = StaticSecrets(Secret(["old-secret"]), rotated=Secret([APP_SECRET]))
    store, queue = MemoryStore(), MemoryQueue()
    result = post(p.envelope(p.text()), store, queue, secrets=secrets)
    assert result.published == 1 and secrets.refreshes == 1


# ---- ingestion


def test_every_event_is_published_and_stored_in_occurrence_order() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    late, early = p.text(mid="late", ts=p.T0 + 10), p.text(mid="early", ts=p.T0)
    result = post(p.envelope(late, early, p.reaction()), store, queue)
    assert (result.received, result.published, result.duplicates) == (3, 3, 0)
    assert [e.message_id for e in queue.messages] == ["early", "late", "m_6"]
    assert set(store.items) == {e.event_id for e in queue.messages}


def test_redelivery_publishes_and_stores_nothing_new() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    document = p.envelope(p.text(), p.read(), p.postback())
    post(document, store, queue)
    again = post(document, store, queue)
    assert (again.published, again.duplicates) == (0, 3)
    assert len(queue.messages) == 3 and len(store.items) == 3


def test_duplicate_items_inside_one_post_become_one_event() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    result = post(p.envelope(p.text(), p.text()), store, queue)
    assert result.received == 1 and len(queue.messages) == 1


def test_queue_failure_raises_and_only_published_events_are_stored() -> None:
    store, queue = MemoryStore(), MemoryQueue(fail_after=2)
    document = p.envelope(*(p.text(mid=f"m{i}", ts=p.T0 + i) for i in range(5)))
    with pytest.raises(StorageUnavailable):
        post(document, store, queue)
    assert set(store.items) == {e.event_id for e in queue.messages} and len(store.items) == 2
    queue.fail_after = None  # Meta retries once the queue is back
    result = post(document, store, queue)
    assert (result.published, result.duplicates) == (3, 2)
    assert [e.message_id for e in queue.messages] == [f"m{i}" for i in range(5)]


def test_window_tracks_the_latest_user_initiated_message_only() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    post(p.envelope(p.text(mid="first", ts=p.T0), p.postback(), p.echo(), p.read(), p.reaction()), store, queue)
    window = store.windows[(p.ACCOUNT, p.CUSTOMER)]
    assert (window.message_id, window.kind) == ("m_pb", "postback")  # echo/read/reaction come later but don't count
    post(p.envelope(p.text(mid="older", ts=p.T0 - 5000)), store, queue)
    assert store.windows[(p.ACCOUNT, p.CUSTOMER)].message_id == "m_pb"


def test_deleted_message_loses_its_content_in_the_same_post() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    post(p.envelope(p.text(mid="gone"), p.deleted(mid="gone")), store, queue)
    original = next(e for e in queue.messages if e.kind == EventKind.TEXT)
    assert (original.text, original.content_deleted) == (None, True)
    assert "Hi, is this" not in json.dumps(original.raw)


def test_deleted_message_loses_its_stored_content_and_edits_later() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    post(p.envelope(p.text(mid="m_text")), store, queue)
    post(p.envelope(p.edited(mid="m_text")), store, queue)
    post(p.envelope(p.deleted(mid="m_text")), store, queue)
    stored = {e.kind: e for e in store.items.values()}
    assert stored[EventKind.TEXT].text is None and stored[EventKind.TEXT].content_deleted
    assert stored[EventKind.MESSAGE_EDITED].text is None
    assert EventKind.MESSAGE_DELETED in stored


def test_unconfigured_app_secret_is_named_and_picked_up_once_set() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    with pytest.raises(Rejected) as caught:
        post(p.envelope(p.text()), store, queue, secrets=StaticSecrets(Secret([])))
    assert (caught.value.status, caught.value.metric) == (401, "AppSecretMissing")
    configured_later = StaticSecrets(Secret([]), rotated=Secret([APP_SECRET]))
    assert post(p.envelope(p.text()), store, queue, secrets=configured_later).published == 1


def test_handshake_names_a_missing_verify_token() -> None:
    with pytest.raises(Rejected) as caught:
        handshake({"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "1"}, None)
    assert caught.value.reason == "no verify token is configured in the app secret"


def test_non_json_constants_are_a_400() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    with pytest.raises(Rejected) as caught:
        post(None, store, queue, raw=b'{"object":"instagram","entry":[{"id":"1","time":Infinity}]}')
    assert caught.value.status == 400 and "Infinity is not JSON" in caught.value.reason


# ---- what customers can type, and what Meta can send, never blocks a batch


def test_half_an_emoji_becomes_a_replacement_character_and_the_body_stays_ascii() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    raw = p.body(p.envelope(p.text(words="cut \ud83d"), p.text(mid="m2", words="non-character \uffff")))
    result = post(None, store, queue, raw=raw)
    assert result.published == 2
    assert [e.text for e in queue.messages] == ["cut \ufffd", "non-character \uffff"]
    for event in queue.messages:
        body = SerializedEvent.of(event).body
        assert body.isascii() and ("\\uffff" in body or "\\ufffd" in body)


def test_an_event_too_big_for_the_queue_is_cut_not_refused() -> None:
    huge = p.attachment("file", payload={"url": p.CDN.format(1), "blob": "x" * 500_000})
    serialized = SerializedEvent.of(only_event(p.envelope(huge)))
    assert len(serialized.body) <= MAX_EVENT_BYTES
    assert serialized.event.truncated and serialized.event.raw == {}
    assert serialized.event.attachments[0].url == p.CDN.format(1)


def test_one_unusable_entry_does_not_cost_the_others() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    document = {
        "object": "instagram",
        "entry": [
            {"id": p.ACCOUNT, "messaging": None},
            None,
            {"time": 1},
            {"id": p.ACCOUNT, "messaging": p.text(mid="lone-object")},  # an object where a list belongs
            p.envelope(p.text())["entry"][0],
        ],
    }
    result = post(document, store, queue)
    kinds = [e.kind for e in queue.messages]
    assert result.received == 4 and kinds.count(EventKind.TEXT) == 2 and kinds.count(EventKind.UNKNOWN) == 2
    unknown = next(e for e in queue.messages if e.kind == EventKind.UNKNOWN and e.raw == {"time": 1})
    assert unknown.account_id == "unknown" and unknown.error and "entry not understood" in unknown.error


def only_event(document: dict[str, Any]) -> Any:
    store, queue = MemoryStore(), MemoryQueue()
    post(document, store, queue)
    assert len(queue.messages) == 1
    return queue.messages[0]


def test_a_message_redelivered_after_its_deletion_stays_without_content() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    post(p.envelope(p.deleted(mid="m_late")), store, queue)  # the message's own POST failed earlier
    post(p.envelope(p.text(mid="m_late", words="my address is 1 Main St")), store, queue)  # Meta's retry
    original = next(e for e in queue.messages if e.kind == EventKind.TEXT)
    assert (original.text, original.content_deleted) == (None, True)
    assert "Main St" not in json.dumps(original.raw)


def test_a_deletion_before_its_message_leaves_a_tombstone_that_the_message_takes_the_place_of() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    post(p.envelope(p.deleted(mid="m_late")), store, queue)
    message = EventKey(p.ACCOUNT, p.CUSTOMER, message_event_id(p.ACCOUNT, "m_late"))
    assert store.tombstones == {message} and message not in store.by_key
    result = post(p.envelope(p.text(mid="m_late", words="my address is 1 Main St")), store, queue)
    assert (result.published, result.duplicates) == (1, 0)
    assert store.tombstones == set() and store.by_key[message].content_deleted
    post(p.envelope(p.deleted(mid="m_late")), store, queue)  # Meta delivers the deletion again: nothing new
    assert store.tombstones == set() and len(queue.messages) == 2


def test_a_deletion_in_the_same_post_as_its_message_leaves_no_tombstone() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    post(p.envelope(p.text(mid="gone"), p.deleted(mid="gone")), store, queue)
    assert store.tombstones == set() and len(store.items) == 2


def test_a_late_queue_failure_keeps_the_chunks_already_through() -> None:
    store, queue = MemoryStore(), MemoryQueue(fail_after=150)
    document = p.envelope(*(p.text(mid=f"m{i}", ts=p.T0 + i) for i in range(250)))
    with pytest.raises(StorageUnavailable):
        post(document, store, queue)
    assert len(store.items) == 150 == len(queue.messages)  # recorded as they went
    queue.fail_after = None
    assert post(document, store, queue).published == 100
    assert [e.message_id for e in queue.messages] == [f"m{i}" for i in range(250)]


def test_a_forged_request_stays_401_when_refetching_the_secret_fails() -> None:
    class FailingRefresh(StaticSecrets):
        def refreshed(self) -> Secret | None:
            raise RuntimeError("Secrets Manager unreachable")

    with pytest.raises(Rejected) as caught:
        post(
            p.envelope(p.text()),
            MemoryStore(),
            MemoryQueue(),
            signature="sha256=" + "0" * 64,
            secrets=FailingRefresh(Secret([APP_SECRET])),
        )
    assert caught.value.status == 401


def test_upper_case_escapes_of_half_an_emoji_are_replaced_too() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    raw = p.body(p.envelope(p.reaction())).replace(b'"love"', b'"\\uD83D"')
    post(None, store, queue, raw=raw)
    assert queue.messages[0].kind == EventKind.REACTION
    assert queue.messages[0].reaction is not None and queue.messages[0].reaction.reaction == "\ufffd"


@pytest.mark.parametrize("huge_field", ["comment", "quick_reply", "postback", "metadata", "title", "emoji"])
def test_no_field_can_make_an_event_too_big_for_the_queue(huge_field: str) -> None:
    big = "\U0001f600" * 60_000  # 720 kB once escaped
    items = {
        "comment": None,
        "quick_reply": p.inbound({"message": {"mid": "m1", "text": "t", "quick_reply": {"payload": big}}}),
        "postback": p.inbound({"postback": {"mid": "m1", "title": "t", "payload": big}}),
        "metadata": {**p.echo(), "message": {"mid": "m1", "text": "t", "is_echo": True, "metadata": big}},
        "title": p.attachment("share", payload={"url": p.CDN.format(1), "title": big}),
        "emoji": p.inbound({"reaction": {"mid": "m1", "action": "react", "emoji": big}}),
    }
    if huge_field == "comment":
        change = p.comment_change()
        change["value"]["text"] = big
        document: dict[str, Any] = {"object": "instagram", "entry": [{"id": p.ACCOUNT, "time": 1, "changes": [change]}]}
    else:
        document = p.envelope(cast(dict[str, Any], items[huge_field]))
    serialized = SerializedEvent.of(only_event(document))
    assert len(serialized.body) <= MAX_EVENT_BYTES and serialized.event.truncated
    assert serialized.event.event_id and serialized.event.kind != EventKind.UNKNOWN


def test_content_of_a_message_not_understood_is_removed_on_deletion() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    broken = p.inbound({"message": {"mid": "m_odd", "text": "call 555-0100", "attachments": "oops"}})
    post(p.envelope(broken), store, queue)
    post(p.envelope(p.deleted(mid="m_odd")), store, queue)
    unknown = next(e for e in store.items.values() if e.kind == EventKind.UNKNOWN)
    assert unknown.message_id == "m_odd" and "555-0100" not in json.dumps(unknown.raw)


def test_ingestion_reports_how_late_meta_delivered_each_new_message() -> None:
    store, queue = MemoryStore(), MemoryQueue()
    body = p.envelope(p.text(mid="m1", ts=1_800_000_000_000), p.text(mid="m2", ts=1_800_000_001_000))
    result = ingest(Envelope.model_validate(body), 1_800_000_003_000, store, queue)
    assert sorted(result.lags_ms) == [2000, 3000]
    again = ingest(Envelope.model_validate(body), 1_800_000_009_000, store, queue)
    assert again.lags_ms == ()  # a redelivery is not a new message: no lag counted twice
    comment = ingest(
        Envelope.model_validate(p.envelope(p.comment_change(), time=1_800_000_000_000, key="changes")),
        1_800_000_009_000,
        store,
        queue,
    )
    assert comment.published == 1 and comment.lags_ms == ()  # its time is the notification's, not Meta's item's


def test_the_lag_metric_keeps_every_value_or_an_even_sample_of_a_hundred() -> None:
    assert lag_sample((5, 1, 3)) == [5, 1, 3]
    many = tuple(range(1000, 0, -1))
    sample = lag_sample(many)
    assert len(sample) == 100 and sample == sorted(sample) and sample[0] == 1 and sample[-1] == 991

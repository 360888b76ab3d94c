"""Status callbacks through the whole loop: the sender and the webhook queue them, the callback
function signs and POSTs them to the producer's URL (a callback inbox on 127.0.0.1), retries with
backoff, and moves what can never be delivered to the dead-letter queue with its reason."""

import json
from dataclasses import replace

import pytest

from igdm.contracts.callbacks import signature
from igdm.queues.status_publisher import StatusPublisher
from igdm.store.outbound_records import OutboundRecord, _error_json
from local.harnesses.outbound import SIGNING_SECRET, Loop
from local.samples import outbound as out


def with_callback(loop: Loop, kind: str = "text", key: str = "cb-1", **fields: object) -> dict[str, object]:
    return out.outbound(kind, key=key, callback_url=loop.inbox.url, callback_data="customer-42|order-9", **fields)


def test_each_status_reaches_the_callback_url_signed_in_order_and_equal_to_the_event(loop: Loop) -> None:
    loop.say()
    loop.enqueue(with_callback(loop))
    loop.run()
    loop.run_callbacks()
    received = loop.inbox.wait_for(2)
    assert [r.document["status"]["status"] for r in received] == ["SENT", "DELIVERED"]
    events = {s["status"]: s for s in loop.statuses("cb-1")}
    for r in received:
        assert r.signature_ok and r.path == "/callbacks"
        timestamp = r.headers["x-gateway-timestamp"]
        assert r.headers["x-gateway-signature-256"] == signature(SIGNING_SECRET, int(timestamp), r.body)
        assert r.event_id == r.document["event_id"]
        status = r.document["status"]
        assert status == events[status["status"]]  # the same status event as on the events queue
        assert status["callback_data"] == "customer-42|order-9"
        assert status["correlation_id"] == "order-123-text"
    assert loop.dead_callbacks() == []


def test_a_failing_receiver_is_retried_with_backoff_until_it_accepts(loop: Loop) -> None:
    loop.say()
    loop.inbox.fail_next(3, status=503)
    loop.enqueue(with_callback(loop))
    loop.run()
    loop.run_callbacks(seconds=1)
    received = loop.inbox.wait_for(2)
    assert [r.document["status"]["status"] for r in received] == ["SENT", "DELIVERED"]
    assert loop.inbox.attempts == 5  # SENT failed three times; DELIVERED waited behind it, in its group
    assert len({r.event_id for r in received}) == 2
    assert loop.dead_callbacks() == []


def test_a_receiver_that_answers_gone_gets_nothing_more_and_the_job_waits_in_the_dead_letter_queue(loop: Loop) -> None:
    loop.say()
    loop.inbox.fail_next(1, status=410)
    loop.enqueue(with_callback(loop))
    loop.run()
    loop.run_callbacks()
    (dead,) = loop.dead_callbacks()
    assert dead["reason"] == "gone" and "410" in dead["detail"]
    assert json.loads(dead["job"]["body"])["status"]["status"] == "SENT"
    assert [r.document["status"]["status"] for r in loop.inbox.wait_for(1)] == ["DELIVERED"]


def test_retries_end_in_the_dead_letter_queue_with_the_reason(loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBACK_MAX_RECEIVE_COUNT", "3")
    loop.say()
    loop.inbox.fail_next(3, status=500)
    loop.enqueue(with_callback(loop, kind="typing_on"))  # one status (SENT), no echo
    loop.run()
    loop.run_callbacks(seconds=1)
    (dead,) = loop.dead_callbacks()
    assert dead["reason"] == "retries_exhausted" and dead["detail"].startswith("3 attempts")
    assert loop.inbox.received == [] and loop.inbox.attempts == 3


def test_a_deployed_stack_refuses_private_and_plain_http_callback_urls_before_sending(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLOW_LOCAL_CALLBACKS", "false")
    loop.say()
    for key, url in [
        ("to-loopback", "https://127.0.0.1/cb"),
        ("to-metadata", "https://169.254.169.254/latest"),
        ("plain-http", "http://hooks.example.com/cb"),
        ("to-localhost", "https://localhost:8443/cb"),
    ]:
        loop.enqueue(out.outbound("text", key=key, callback_url=url))
    loop.run()
    assert loop.sent_to_meta() == []
    for key in ("to-loopback", "to-metadata", "plain-http", "to-localhost"):
        (failed,) = loop.statuses(key)
        assert failed["status"] == "FAILED" and failed["reason"] == "invalid_message", key
        assert failed["detail"].startswith("callback_url: "), failed["detail"]
    assert loop._in_flight(loop.callback_url) == 0  # nothing queued for those URLs


def test_delivered_is_always_preceded_by_sent_on_the_queue_and_at_the_callback(loop: Loop) -> None:
    # The webhook can settle DELIVERED before the sender has published SENT; the publisher puts SENT first.
    record = OutboundRecord(
        idempotency_key="raced",
        status="DELIVERED",
        account_id=out.ACCOUNT,
        customer_id=out.CUSTOMER,
        kind="text",
        payload_hash="-",
        parts_total=1,
        parts_sent=1,
        inflight_part=None,
        message_ids=["m_raced"],
        callback_url=loop.inbox.url,
    )
    publisher = StatusPublisher(loop.sqs, loop.events_url, loop.callback_url)
    publisher.publish(record)
    publisher.publish(replace(record, status="SENT"))  # the sender's own SENT, later: a repeat, dropped
    assert loop.status_names("raced") == ["SENT", "DELIVERED"]
    loop.run_callbacks()
    assert [r.document["status"]["status"] for r in loop.inbox.wait_for(2)] == ["SENT", "DELIVERED"]
    assert loop.inbox.attempts == 2


def test_a_long_meta_error_is_kept_as_valid_json() -> None:
    error = {
        "http_status": 400,
        "code": 100,
        "subcode": 2018001,
        "type": "OAuthException",
        "message": "x" * 5000,
        "fbtrace_id": "AbC",
    }
    text = _error_json(error) or ""
    stored = json.loads(text)
    assert len(text) <= 2000
    assert {k: stored[k] for k in ("code", "subcode", "fbtrace_id")} == {
        "code": 100,
        "subcode": 2018001,
        "fbtrace_id": "AbC",
    }
    assert stored["message"].startswith("xxx") and stored["message"].endswith("…")

"""The webhook handler against moto: durable writes, idempotent redelivery, failures answered 5xx."""

import io
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from igdm.contracts.stored_events import expanded
from igdm.inbound.ingest import PUBLISH_CHUNK
from igdm.inbound.normalize import message_event_id
from igdm.runtime import aws
from igdm.runtime.observability import logger
from igdm.store.accounts import AccountTable
from igdm.store.event_items import EventItem, Tombstone
from igdm.store.keys import CONVERSATION_STATE_SK, conversation_pk, event_sk, key
from local.aws.template import ROOT
from local.harnesses.webhook import APP_SECRET, INSTAGRAM_APP_SECRET, VERIFY_TOKEN, Harness
from local.samples import meta as p
from local.stack import DEFAULT_APP_SECRET, DEFAULT_VERIFY_TOKEN
from tools.accounts import register_account
from webhook.signature import sign


def test_handshake_answers_the_challenge_as_plain_text(harness: Harness) -> None:
    response = harness.get(f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444")
    assert response["statusCode"] == 200
    assert response["body"] == "1158201444"
    assert response["headers"]["Content-Type"] == "text/plain"
    assert harness.get("hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")["statusCode"] == 403


def test_signed_post_lands_in_the_table_and_on_the_queue(harness: Harness) -> None:
    response = harness.post(p.envelope(p.text(), p.reaction()))
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"received": 2, "published": 2, "duplicates": 0, "stale": 0}

    messages = harness.drain()
    events = [json.loads(m["Body"]) for m in messages]
    assert [e["kind"] for e in events] == ["text", "reaction"]
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {f"{p.ACCOUNT}:{p.CUSTOMER}"}
    assert [m["Attributes"]["MessageDeduplicationId"] for m in messages] == [e["event_id"] for e in events]
    assert messages[0]["MessageAttributes"]["kind"]["StringValue"] == "text"

    stored = harness.event_items()
    assert sorted(i["event_id"] for i in stored) == sorted(e["event_id"] for e in events)
    text_item = next(i for i in stored if i["kind"] == "text")
    assert text_item["pk"] == conversation_pk(p.ACCOUNT, p.CUSTOMER)
    assert json.loads(text_item["event"])["text"] == "Hi, is this in stock?"
    assert text_item["expires_at"] > Decimal(0)


def test_conversation_state_keeps_the_last_user_message_time(harness: Harness) -> None:
    harness.post(p.envelope(p.text(ts=p.T0), p.echo()))
    state = next(i for i in harness.items() if i["sk"] == CONVERSATION_STATE_SK)
    assert state["last_user_message_at"] == p.T0
    assert state["last_user_message_id"] == "m_text"
    harness.post(p.envelope(p.text(mid="older", ts=p.T0 - 60_000)))  # arrives late: must not move back
    state = next(i for i in harness.items() if i["sk"] == CONVERSATION_STATE_SK)
    assert state["last_user_message_at"] == p.T0


def test_the_same_post_twice_leaves_one_item_and_one_message_per_event(harness: Harness) -> None:
    document = p.envelope(p.text(), p.read(), p.postback(), p.attachment("image"))
    first = harness.post(document)
    harness.drain()  # the consumer has taken them; a later redelivery must not publish again
    second = harness.post(document)
    assert json.loads(first["body"])["published"] == 4
    assert json.loads(second["body"]) == {"received": 4, "published": 0, "duplicates": 4, "stale": 0}
    assert harness.drain() == []
    assert len(harness.event_items()) == 4


def test_bad_signature_stores_nothing(harness: Harness) -> None:
    response = harness.post(p.envelope(p.text()), secret="forged")
    assert response["statusCode"] == 401
    assert "does not match" in json.loads(response["body"])["error"]
    assert harness.post(p.envelope(p.text()), signature=None)["statusCode"] == 401
    assert harness.items() == [] and harness.drain() == []


def test_either_configured_app_secret_is_accepted_and_the_one_used_is_logged(harness: Harness) -> None:
    with captured_logs() as logged:
        assert harness.post(p.envelope(p.text()), secret=INSTAGRAM_APP_SECRET)["statusCode"] == 200
    accepted = next(json.loads(line) for line in logged.getvalue().splitlines() if "webhook accepted" in line)
    assert accepted["app_secret_index"] == 1


def test_base64_encoded_body_is_verified_on_its_decoded_bytes(harness: Harness) -> None:
    raw = p.body(p.envelope(p.text(words="äöå")))  # json.dumps escapes it as Meta does: \\u00e4
    response = harness.post(raw=raw, base64_body=True)
    assert response["statusCode"] == 200
    assert json.loads(harness.drain()[0]["Body"])["text"] == "äöå"


@pytest.mark.parametrize(("raw", "status"), [(b"", 400), (b"{oops", 400), (b'{"object":"page","entry":[]}', 400)])
def test_bad_input_is_a_4xx_with_a_reason_and_nothing_written(harness: Harness, raw: bytes, status: int) -> None:
    response = harness.post(raw=raw)
    assert response["statusCode"] == status
    assert json.loads(response["body"])["error"]
    assert harness.items() == [] and harness.drain() == []


def test_queue_failure_answers_503_then_the_retry_delivers_each_event_once(harness: Harness) -> None:
    document = p.envelope(*(p.text(mid=f"m{i}", ts=p.T0 + i) for i in range(12)))
    harness.fail("sqs", "SendMessageBatch", times=3)  # the first batch fails through all its attempts
    response = harness.post(document)
    assert response["statusCode"] == 503
    assert harness.event_items() == []  # nothing stored that was not published
    assert harness.post(document)["statusCode"] == 200
    assert [json.loads(m["Body"])["message_id"] for m in harness.drain()] == [f"m{i}" for i in range(12)]
    assert len(harness.event_items()) == 12


def test_table_failure_after_publishing_answers_503_and_the_retry_adds_no_duplicate(harness: Harness) -> None:
    document = p.envelope(p.text(), p.quick_reply())
    harness.fail("dynamodb", "TransactWriteItems", times=1)
    assert harness.post(document)["statusCode"] == 503
    assert harness.event_items() == []
    assert harness.post(document)["statusCode"] == 200  # Meta retries at once: FIFO dedup drops the repeat
    assert len(harness.drain()) == 2
    assert len(harness.event_items()) == 2


def test_table_lookup_failure_answers_503_with_nothing_published(harness: Harness) -> None:
    harness.fail("dynamodb", "BatchGetItem", times=1)
    assert harness.post(p.envelope(p.text()))["statusCode"] == 503
    assert harness.drain() == [] and harness.items() == []


def test_deletion_removes_the_stored_content_of_the_message_and_its_edits(harness: Harness) -> None:
    harness.post(p.envelope(p.text(mid="m_gone", words="my phone is 555-0100")))
    harness.post(p.envelope(p.edited(mid="m_gone")))
    harness.post(p.envelope(p.deleted(mid="m_gone")))
    for kind in ("text", "message_edited"):
        item = next(i for i in harness.event_items() if i["kind"] == kind)
        assert "555-0100" not in item["event"] and "in blue" not in item["event"]
        assert json.loads(item["event"])["content_deleted"] is True


def test_a_message_redelivered_after_its_deletion_is_stored_without_content(harness: Harness) -> None:
    harness.post(p.envelope(p.deleted(mid="m_late")))
    harness.post(p.envelope(p.text(mid="m_late", words="my phone is 555-0100")))
    item = next(i for i in harness.event_items() if i["kind"] == "text")
    assert "555-0100" not in item["event"]
    assert all("555-0100" not in m["Body"] for m in harness.drain())


def retention_seconds(harness: Harness) -> int:
    return int(harness.stack.function_environment("WebhookFunction")["EVENT_RETENTION_DAYS"]) * 86_400


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it, for the string and number attributes an event item has: each
    attribute's name and value (a number's digits, about; exact for the sizes asked here)."""
    return sum(len(name.encode()) + len(str(next(iter(value.values()))).encode()) for name, value in item.items())


def stored_at(harness: Harness, event_id: str) -> dict[str, Any] | None:
    """The item, as DynamoDB holds it, at the key of an event of the samples' conversation."""
    item_key = key(conversation_pk(p.ACCOUNT, p.CUSTOMER), event_sk(event_id))
    found: dict[str, Any] = harness.clients["dynamodb"].get_item(
        TableName=harness.table, Key=item_key, ConsistentRead=True
    )
    return found.get("Item")


def test_a_message_deleted_before_it_came_is_published_without_content_in_place_of_its_tombstone(
    harness: Harness,
) -> None:
    message_id = message_event_id(p.ACCOUNT, "m_late")
    deletion = harness.post(p.envelope(p.deleted(mid="m_late")))  # the message's own POST failed before
    assert json.loads(deletion["body"])["published"] == 1
    assert [json.loads(m["Body"])["kind"] for m in harness.drain()] == ["message_deleted"]
    received = datetime.fromtimestamp(p.RECEIVED_MS / 1000, UTC)
    assert (
        stored_at(harness, message_id)
        == Tombstone(
            event_id=message_id,
            account_id=p.ACCOUNT,
            customer_id=p.CUSTOMER,
            received_at=received.isoformat(),
            expires_at=int(received.timestamp()) + retention_seconds(harness),
        ).to_item()
    )

    retry = p.envelope(p.text(mid="m_late", words="my phone is 555-0100"))  # Meta's retry of that POST
    assert json.loads(harness.post(retry)["body"]) == {"received": 1, "published": 1, "duplicates": 0, "stale": 0}
    [published] = [json.loads(m["Body"]) for m in harness.drain()]
    assert (published["event_id"], published["kind"], published["text"]) == (message_id, "text", None)
    assert published["content_deleted"] is True and "555-0100" not in json.dumps(published)
    stored = stored_at(harness, message_id)
    assert stored is not None and "tombstone" not in stored  # the event took the tombstone's place
    assert json.loads(expanded(stored["event"]["S"])) == published
    assert sorted(i["kind"] for i in harness.event_items()) == ["message_deleted", "text"]

    again = harness.post(retry)  # stored now: a duplicate like any other
    assert json.loads(again["body"])["duplicates"] == 1 and harness.drain() == []


def test_an_edit_of_a_message_deleted_earlier_comes_without_its_content(harness: Harness) -> None:
    harness.post(p.envelope(p.deleted(mid="m_gone")))
    harness.post(p.envelope(p.edited(mid="m_gone")))  # the edit's own POST failed before: Meta's retry
    [edit] = [e for e in (json.loads(m["Body"]) for m in harness.drain()) if e["kind"] == "message_edited"]
    assert edit["content_deleted"] is True and edit["text"] is None and "in blue" not in json.dumps(edit)


def calls_from_now(harness: Harness) -> list[str]:
    """The AWS operations the handler calls from now on, in order, as "service.Operation"."""
    called: list[str] = []

    def note(model: Any, **_: Any) -> None:
        called.append(f"{model.service_model.endpoint_prefix}.{model.name}")

    for service in ("dynamodb", "sqs", "secretsmanager"):
        aws.client(service).meta.events.register("before-call", note)
    return called


def test_a_one_event_post_writes_with_plain_conditional_requests_not_transactions(harness: Harness) -> None:
    harness.post(p.envelope(p.text(mid="m_first", ts=p.T0 - 60_000)))  # warm: the app secret is read and kept
    harness.drain()
    called = calls_from_now(harness)
    assert json.loads(harness.post(p.envelope(p.text()))["body"])["published"] == 1
    # The lookup, the publication, the event's conditional PutItem, the window's conditional UpdateItem.
    assert called == ["dynamodb.BatchGetItem", "sqs.SendMessageBatch", "dynamodb.PutItem", "dynamodb.UpdateItem"]

    [published] = [m["Body"] for m in harness.drain()]
    event = json.loads(published)
    received = datetime.fromtimestamp(p.RECEIVED_MS / 1000, UTC)
    stored = stored_at(harness, event["event_id"])
    assert stored is not None
    item = EventItem.from_item(stored)
    assert item._replace(event=expanded(item.event)) == EventItem(
        event_id=event["event_id"],
        kind="text",
        account_id=p.ACCOUNT,
        customer_id=p.CUSTOMER,
        message_id="m_text",
        occurred_at=p.T0,
        received_at=received.isoformat(),
        event=published,  # kept without its default fields, given back whole
        expires_at=int(received.timestamp()) + retention_seconds(harness),
    )
    # DynamoDB bills a write by the kilobyte of item (names and values): the text message's is one.
    assert item_bytes(stored) < 1024 < item_bytes(stored) - len(item.event) + len(published)
    state = next(i for i in harness.items() if i["sk"] == CONVERSATION_STATE_SK)
    assert (state["last_user_message_id"], state["last_user_message_at"]) == ("m_text", p.T0)
    assert state["expires_at"] == p.T0 // 1000 + retention_seconds(harness)

    harness.post(p.envelope(p.text(mid="m_older", ts=p.T0 - 1000)))  # an older message: the window stays
    state = next(i for i in harness.items() if i["sk"] == CONVERSATION_STATE_SK)
    assert state["last_user_message_id"] == "m_text"
    called.clear()
    again = harness.post(p.envelope(p.text()))  # stored: found by the lookup, nothing written again
    assert json.loads(again["body"])["duplicates"] == 1
    assert called == ["dynamodb.BatchGetItem", "dynamodb.UpdateItem"]


@pytest.mark.usefixtures("transactions_at_aws_cost")
def test_a_1000_event_post_is_batched(harness: Harness) -> None:
    customers = [f"90000000000{i:05d}" for i in range(100)]
    items = [p.text(mid=f"m{i}", ts=p.T0 + i, customer=customers[i % 100]) for i in range(1000)]
    requests = harness.count_requests()
    response = harness.post(p.envelope(*items))
    assert json.loads(response["body"])["published"] == 1000
    # 10 lookups (1000 event keys) + 100 queue batches + 10 event transactions + 1 window transaction
    # (100 conversations) + 1 secret read + 1 account heartbeat (last_webhook_at)
    assert requests() <= 123
    assert harness.queue_depth() == 1000
    assert harness.count_event_items() == 1000


def test_events_stay_in_order_within_each_conversation(harness: Harness) -> None:
    customers = [f"90000000000{i:05d}" for i in range(10)]
    # Meta's batch lists them out of order; each conversation must come out by timestamp.
    items = [p.text(mid=f"m{i}", ts=p.T0 + i, customer=customers[i % 10]) for i in reversed(range(200))]
    assert harness.post(p.envelope(*items))["statusCode"] == 200
    per_customer: dict[str, list[int]] = {}
    for message in harness.drain():
        event = json.loads(message["Body"])
        per_customer.setdefault(event["customer_id"], []).append(int(event["message_id"][1:]))
    assert sorted(per_customer) == customers
    assert all(ids == sorted(ids) and len(ids) == 20 for ids in per_customer.values())


def test_logs_hold_no_secret_token_or_signature(harness: Harness) -> None:
    raw = p.body(p.envelope(p.text()))
    signature = sign(raw, APP_SECRET)
    with captured_logs() as logged:
        harness.post(raw=raw, signature=signature)
        harness.post(raw=raw, signature="sha256=" + "f" * 64)
        harness.get(f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1")
        harness.get("hub.mode=subscribe&hub.verify_token=a-wrong-guess&hub.challenge=1")
    output = logged.getvalue()
    assert "webhook accepted" in output and "webhook request rejected" in output
    for secret in (APP_SECRET, INSTAGRAM_APP_SECRET, VERIFY_TOKEN, "a-wrong-guess", signature[7:], "f" * 64):
        assert secret not in output


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Everything the function logs, formatted exactly as Lambda would write it."""
    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(logger.registered_formatter)
    logger.addHandler(capture)
    try:
        yield stream
    finally:
        logger.removeHandler(capture)  # type: ignore[attr-defined]  # Powertools passes it on to its logging.Logger


def test_base64_flagged_garbage_is_a_400(harness: Harness) -> None:
    from local.aws.apigw import http_api_event

    event = http_api_event("POST", "/webhook", headers={"X-Hub-Signature-256": "sha256=00"}, body=b"x")
    event["body"], event["isBase64Encoded"] = "***", True
    assert harness.invoke(event)["statusCode"] == 400


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "events").glob("apigw_webhook_*.json")))
def test_every_sample_event_gets_the_expected_answer(harness: Harness, name: str) -> None:
    # The sample events are signed with the local stack's defaults, as `make invoke` uses them.
    harness.clients["secretsmanager"].put_secret_value(
        SecretId=harness.stack.refs["AppSecret"],
        SecretString=json.dumps({"app_secrets": [DEFAULT_APP_SECRET], "verify_token": DEFAULT_VERIFY_TOKEN}),
    )
    event = json.loads((ROOT / "events" / name).read_text(encoding="utf-8"))
    response = harness.invoke(event)
    assert response["statusCode"] == (401 if "bad_signature" in name else 200)
    if name == "apigw_webhook_every_kind.json":
        kinds = {json.loads(m["Body"])["kind"] for m in harness.drain()}
        assert kinds >= {
            "text",
            "attachments",
            "story_reply",
            "reply",
            "quick_reply",
            "postback",
            "reaction",
            "reaction_removed",
            "read",
            "message_edited",
            "echo",
            "referral",
            "optin",
            "handover",
            "unsupported",
            "message_deleted",
        }


def test_comment_redelivered_with_a_new_send_time_is_still_one_event(harness: Harness) -> None:
    def comment_at(entry_time: int) -> dict[str, object]:
        return {
            "object": "instagram",
            "entry": [{"id": p.ACCOUNT, "time": entry_time, "changes": [p.comment_change()]}],
        }

    harness.post(comment_at(1735690400))
    harness.drain()
    again = harness.post(comment_at(1735690460))  # Meta's retry a minute later, entry.time renewed
    assert json.loads(again["body"])["duplicates"] == 1
    assert harness.drain() == [] and len(harness.event_items()) == 1


def test_conversation_state_expires_after_the_retention_period(harness: Harness) -> None:
    harness.post(p.envelope(p.text(ts=p.T0)))
    state = next(i for i in harness.items() if i["sk"] == CONVERSATION_STATE_SK)
    retention_days = int(harness.stack.function_environment("WebhookFunction")["EVENT_RETENTION_DAYS"])
    assert state["expires_at"] == p.T0 // 1000 + retention_days * 86_400


def test_a_secret_that_is_not_json_is_a_clear_500(harness: Harness) -> None:
    harness.clients["secretsmanager"].put_secret_value(
        SecretId=harness.stack.refs["AppSecret"], SecretString="not json"
    )
    response = harness.post(p.envelope(p.text()))
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {"error": "gateway misconfigured"}
    assert harness.items() == []


def test_an_unreadable_secret_is_a_503_so_meta_retries(harness: Harness) -> None:
    harness.fail("secretsmanager", "GetSecretValue", times=5, code="ThrottlingException")
    response = harness.post(p.envelope(p.text()))
    assert response["statusCode"] == 503
    assert harness.items() == []


def test_an_unreadable_secret_is_logged_with_the_aws_error_code(harness: Harness) -> None:
    harness.fail("secretsmanager", "GetSecretValue", times=5, code="ThrottlingException")
    with captured_logs() as logged:
        harness.post(p.envelope(p.text()))
    assert "ThrottlingException" in logged.getvalue()


def test_after_a_failure_at_most_one_chunk_is_published_but_not_stored(harness: Harness) -> None:
    document = p.envelope(*(p.text(mid=f"m{i}", ts=p.T0 + i) for i in range(250)))
    harness.fail("dynamodb", "TransactWriteItems", times=1, after=1)  # the second chunk's store fails
    assert harness.post(document)["statusCode"] == 503
    published, stored = harness.queue_depth(), harness.count_event_items()
    assert published - stored <= PUBLISH_CHUNK and stored == 100  # what Meta's retry could republish
    state = next(i for i in harness.items() if i["sk"] == CONVERSATION_STATE_SK)
    assert state["last_user_message_id"] == "m99"  # the stored events moved the window on
    assert json.loads(harness.post(document)["body"])["published"] == 150
    assert [json.loads(m["Body"])["message_id"] for m in harness.drain()] == [f"m{i}" for i in range(250)]
    assert harness.count_event_items() == 250


@pytest.mark.parametrize(
    "event",
    [
        {
            "routeKey": "POST /webhook",
            "requestContext": {"timeEpoch": 1},
            "headers": None,
            "queryStringParameters": None,
            "isBase64Encoded": None,
            "body": None,
        },
        {"routeKey": "GET /webhook"},
        {"hello": "world"},
    ],
)
def test_odd_invocation_events_get_a_4xx_not_an_error(harness: Harness, event: dict[str, object]) -> None:
    assert 400 <= harness.invoke(event)["statusCode"] < 500


def test_a_webhook_records_when_its_account_last_heard_from_meta_and_creates_no_unknown_account(
    harness: Harness,
) -> None:
    register_account(
        harness.clients["dynamodb"],
        harness.clients["secretsmanager"],
        table=harness.stack.refs["GatewayTable"],
        secret_prefix=f"{harness.stack.name}/accounts/",
        account_id=p.ACCOUNT,
        access_token="IGAA-heartbeat",
    )
    accounts = AccountTable(harness.clients["dynamodb"], harness.stack.refs["GatewayTable"])
    before = accounts.get(p.ACCOUNT)
    assert before is not None and before.last_webhook_at is None
    assert harness.post(p.envelope(p.text()))["statusCode"] == 200
    after = accounts.get(p.ACCOUNT)
    heard = after.last_webhook_at if after else None
    assert heard is not None and abs(datetime.fromisoformat(heard).timestamp() - time.time()) < 60

    other = "17841499999999999"  # Meta delivers for an account this stack never registered
    assert harness.post(p.envelope(p.text(mid="m_other"), account=other))["statusCode"] == 200
    assert [a.account_id for a in accounts.all()] == [p.ACCOUNT]


DAY_MS = 86_400_000


def test_a_captured_body_replayed_once_its_items_expired_publishes_nothing(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    document = p.envelope(p.text(), p.reaction())
    assert json.loads(harness.post(document)["body"])["published"] == 2
    harness.drain()
    for item in harness.items():  # the retention period went by: DynamoDB's TTL removed every item
        harness.clients["dynamodb"].delete_item(
            TableName=harness.table, Key={"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}}
        )
    retention_days = int(harness.stack.function_environment("WebhookFunction")["EVENT_RETENTION_DAYS"])
    capsys.readouterr()
    replayed = harness.post(document, now_ms=p.RECEIVED_MS + retention_days * DAY_MS + 60_000)
    assert replayed["statusCode"] == 200  # answered, so it is not sent again, and ignored
    assert json.loads(replayed["body"]) == {"received": 2, "published": 0, "duplicates": 0, "stale": 2}
    assert harness.drain() == [] and harness.items() == []
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [d["EventsStale"] for d in emitted if "EventsStale" in d] == [[2.0]]


def test_an_event_younger_than_the_retention_period_is_taken(harness: Harness) -> None:
    retention_days = int(harness.stack.function_environment("WebhookFunction")["EVENT_RETENTION_DAYS"])
    late = harness.post(p.envelope(p.text(), p.reaction()), now_ms=p.RECEIVED_MS + (retention_days - 1) * DAY_MS)
    assert json.loads(late["body"]) == {"received": 2, "published": 2, "duplicates": 0, "stale": 0}

"""The fan-out's decisions on stream records (fanout.service): which events a record carries, which registrations
get them, and what a failure part-way leaves for Lambda to give again. The whole path, stream included, is
tests/integration/test_event_webhooks.py's."""

import json
from datetime import UTC, datetime
from typing import Any

from moto.events.models import EventPattern

from fanout.service import Fanout, events_of
from igdm.contracts.events import EventKind, InboundEvent, conversation_id
from igdm.contracts.serialized import SerializedEvent
from igdm.store.attributes import to_attributes
from igdm.store.event_items import Tombstone
from igdm.store.outbound_records import OutboundRecord
from igdm.store.webhooks import Delivery, Webhook
from local.aws.template import load

ACCOUNT, CUSTOMER = "17841400000000001", "7947908538583264"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def stored(n: int, account: str = ACCOUNT) -> dict[str, Any]:
    event = InboundEvent(
        event_id=f"{n:032x}",
        kind=EventKind.TEXT,
        account_id=account,
        customer_id=CUSTOMER,
        conversation_id=conversation_id(account, CUSTOMER),
        direction="inbound",
        source="messaging",
        user_initiated=True,
        occurred_at=NOW,
        received_at=NOW,
        message_id=f"m_{n}",
        text=f"message {n}",
        raw={},
    )
    keys = {"pk": {"S": f"CONV#{account}#{CUSTOMER}"}, "sk": {"S": f"EVT#{event.event_id}"}}
    return {
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": 1796560000.5 + n,
            "Keys": keys,
            "NewImage": {**keys, "event": {"S": SerializedEvent.of(event).body}},
            "SequenceNumber": str(100 + n),
        },
    }


def status_change(before: str, after: str) -> dict[str, Any]:
    def image(status: str) -> dict[str, Any]:
        record = OutboundRecord(
            idempotency_key="k-1",
            status=status,
            account_id=ACCOUNT,
            customer_id=CUSTOMER,
            kind="text",
            payload_hash="h",
            parts_total=1,
            parts_sent=1 if status != "PENDING" else 0,
            inflight_part=None,
            message_ids=["m_out_1"] if status != "PENDING" else [],
        )
        return record.to_item(created_at=NOW, expires_at=1)

    keys = {"pk": {"S": "OUT#k-1"}, "sk": {"S": "MESSAGE"}}
    return {
        "eventName": "MODIFY",
        "dynamodb": {
            "ApproximateCreationDateTime": 1796560100.0,
            "Keys": keys,
            "OldImage": image(before),
            "NewImage": image(after),
            "SequenceNumber": "900",
        },
    }


class Hooks:
    def __init__(self, *hooks: Webhook, fail_on: str | None = None) -> None:
        self.hooks, self.fail_on = list(hooks), fail_on
        self.recorded: list[Delivery] = []
        self.scrubbed: list[str] = []

    def all(self) -> list[Webhook]:
        return self.hooks

    def record(self, delivery: Delivery, now: datetime) -> bool:
        if self.fail_on and delivery.event_id == self.fail_on:
            raise RuntimeError("ProvisionedThroughputExceededException")
        self.recorded.append(delivery)
        return True

    def scrub_message(self, account_id: str, customer_id: str, message_id: str) -> int:
        self.scrubbed.append(message_id)
        return 1


class Jobs:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.fail = fail

    def send(self, jobs: list[tuple[str, str, str]]) -> None:
        if self.fail:
            raise RuntimeError("AWS.SimpleQueueService.NonExistentQueue")
        self.sent.extend(jobs)


class Metrics:
    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        pass


def hook(
    kinds: tuple[str, ...] = ("text", "message_status"), account: str | None = None, dialect: str | None = None
) -> Webhook:
    return Webhook("0123456789ab", "https://hooks.example.com/in", kinds, dialect, account, NOW.isoformat(), "key")


def test_each_stored_event_goes_to_the_registrations_that_want_it_in_stream_order() -> None:
    hooks, jobs = Hooks(hook(), hook(kinds=("reaction",)), hook(account="17841499999999999")), Jobs()
    answer = Fanout(hooks, jobs, Metrics()).handle([stored(1), stored(2)])
    assert answer == {"batchItemFailures": []}
    bodies = [json.loads(json.loads(body)["body"]) for body, _, _ in jobs.sent]
    assert [b["text"] for b in bodies] == ["message 1", "message 2"]  # one registration wants them
    assert [d.delivery_id for d in hooks.recorded] == [
        f"1796560001500-{1:032x}",
        f"1796560002500-{2:032x}",
    ]
    groups = {group for _, group, _ in jobs.sent}
    assert len(groups) == 1 and next(iter(groups)).startswith("hook:0123456789ab:")  # one conversation, in order


def test_a_status_change_is_its_message_status_event_sent_first_when_the_echo_came_first() -> None:
    jobs = Jobs()
    Fanout(Hooks(hook()), jobs, Metrics()).handle([status_change("PENDING", "DELIVERED")])
    statuses = [json.loads(json.loads(body)["body"])["status"]["status"] for body, _, _ in jobs.sent]
    assert statuses == ["SENT", "DELIVERED"]
    unchanged = Jobs()
    Fanout(Hooks(hook()), unchanged, Metrics()).handle([status_change("SENT", "SENT")])
    assert unchanged.sent == []


def test_records_an_event_webhook_cannot_be_sent_cost_no_read_of_the_registrations() -> None:
    class NoHooks(Hooks):
        def all(self) -> list[Webhook]:
            raise AssertionError("read the registrations for nothing")

    state = {"eventName": "MODIFY", "dynamodb": {"Keys": to_attributes({"pk": "CONV#a#b", "sk": "STATE"})}}
    assert Fanout(NoHooks(), Jobs(), Metrics()).handle([state]) == {"batchItemFailures": []}
    assert events_of(state) == []


def test_a_failure_part_way_queues_what_was_recorded_and_reports_the_first_record_not_done() -> None:
    hooks, jobs = Hooks(hook(), fail_on=f"{2:032x}"), Jobs()
    answer = Fanout(hooks, jobs, Metrics()).handle([stored(1), stored(2), stored(3)])
    assert answer == {"batchItemFailures": [{"itemIdentifier": "102"}]}
    assert [json.loads(json.loads(b)["body"])["text"] for b, _, _ in jobs.sent] == ["message 1"]


def test_a_refused_send_gives_the_whole_batch_again() -> None:
    answer = Fanout(Hooks(hook()), Jobs(fail=True), Metrics()).handle([stored(1), stored(2)])
    assert answer == {"batchItemFailures": [{"itemIdentifier": "101"}]}


def test_a_sinch_registration_gets_sinchs_shape_and_one_delivery_per_part() -> None:
    jobs, hooks = Jobs(), Hooks(hook(dialect="sinch"))
    Fanout(hooks, jobs, Metrics()).handle([stored(1)])
    [body] = [json.loads(json.loads(b)["body"]) for b, _, _ in jobs.sent]
    assert body["message"]["contact_message"] == {"text_message": {"text": "message 1"}}
    assert body["message"]["direction"] == "TO_APP" and body["app_id"] == ACCOUNT


def test_each_part_of_a_delivery_in_parts_has_its_own_id_on_the_wire() -> None:
    event = json.loads(stored(1)["dynamodb"]["NewImage"]["event"]["S"])
    event["attachments"] = [
        {"type": "image", "url": "https://cdn.example/a.jpg"},
        {"type": "image", "url": "https://cdn.example/b.jpg"},
    ]
    record = stored(1)
    record["dynamodb"]["NewImage"]["event"]["S"] = json.dumps(event)
    jobs = Jobs()
    Fanout(Hooks(hook(dialect="sinch")), jobs, Metrics()).handle([record])
    ids = [json.loads(body)["event_id"] for body, _, _ in jobs.sent]
    assert ids == [f"{1:032x}.1", f"{1:032x}.2", f"{1:032x}.3"]  # the text, then each attachment
    assert len({dedup for _, _, dedup in jobs.sent}) == 3


def tombstone_of(record: dict[str, Any]) -> dict[str, Any]:
    """What a deletion that came first leaves at a stored record's event key: a tombstone (igdm.store.event_items)."""
    event_id = record["dynamodb"]["Keys"]["sk"]["S"].removeprefix("EVT#")
    return Tombstone(event_id, ACCOUNT, CUSTOMER, NOW.isoformat(), 1).to_item()


def written(name: str, keys: dict[str, Any], new: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    change = {"ApproximateCreationDateTime": 1796560200.0, "Keys": keys, "NewImage": new, "SequenceNumber": "950"}
    return {"eventName": name, "dynamodb": change if old is None else {**change, "OldImage": old}}


def test_a_tombstone_is_no_event_and_the_event_stored_in_its_place_is_one() -> None:
    record = stored(7)
    keys, image = record["dynamodb"]["Keys"], record["dynamodb"]["NewImage"]
    tombstone = tombstone_of(record)
    laid = written("INSERT", keys, tombstone)
    replaced = written("MODIFY", keys, image, old=tombstone)
    scrubbed = written("MODIFY", keys, image, old=image)  # a deleted message's stored event, scrubbed
    assert events_of(laid) == [] and events_of(scrubbed) == []
    assert [event["event_id"] for _, event, _ in events_of(replaced)] == [f"{7:032x}"]
    hooks, jobs = Hooks(hook()), Jobs()
    assert Fanout(hooks, jobs, Metrics()).handle([laid, replaced, scrubbed]) == {"batchItemFailures": []}
    assert [d.event_id for d in hooks.recorded] == [f"{7:032x}"] and len(jobs.sent) == 1


def test_the_streams_filter_passes_events_and_status_changes_never_a_tombstone_or_a_scrub() -> None:
    """The template's FilterCriteria, matched as the local stack's stream poller matches them (moto's EventBridge
    patterns, as Lambda's): Lambda is not even invoked for a tombstone."""
    stream = load()["Resources"]["FanoutFunction"]["Properties"]["Events"]["TableStream"]["Properties"]
    patterns = [EventPattern.load(f["Pattern"]) for f in stream["FilterCriteria"]["Filters"]]

    def passes(record: dict[str, Any]) -> bool:
        return any(pattern.matches_event(record) for pattern in patterns)  # type: ignore[arg-type]

    record = stored(8)
    keys, image = record["dynamodb"]["Keys"], record["dynamodb"]["NewImage"]
    tombstone = tombstone_of(record)
    assert passes(record) and passes(written("MODIFY", keys, image, old=tombstone))
    assert passes(status_change("PENDING", "SENT"))
    assert not passes(written("INSERT", keys, tombstone))
    assert not passes(written("MODIFY", keys, image, old=image))
    assert not passes({"eventName": "REMOVE", "dynamodb": {"Keys": keys, "OldImage": tombstone}})

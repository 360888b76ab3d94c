"""The local stack's AWS emulator (moto in server mode, as `make run` starts it) behaves like AWS where a
long run notices: FIFO deduplication ids outlive their messages for 5 minutes, TransactWriteItems stays
all-or-nothing, and neither its cost nor the emulator's memory grows with the table (local/aws/emulator_fixes.py).

Every client here is given the emulator's endpoint on 127.0.0.1 explicitly; the handler gets it from
AWS_ENDPOINT_URL, as in the local stack.
"""

import dataclasses
import gc
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import moto.sqs.models
import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models.dynamo_type import Item
from moto.sqs.models import Message

from local.aws import emulator_fixes
from local.aws.apigw import LambdaContext, http_api_event
from local.aws.template import REGION, Stack, provision
from local.harnesses.webhook import reset_function_state
from local.stack import LocalConfig, start_emulator
from webhook import handler
from webhook.signature import sign

APP_SECRET = "emulator-test-app-secret"
ACCOUNT = "17841400000000001"


@dataclass
class Emulator:
    endpoint: str
    stack: Stack
    clients: dict[str, Any]


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """moto in server mode on a free port of 127.0.0.1, started as `make run` starts it, with the
    template's resources. Port 0, the port the system gives it: one picked before could be taken meanwhile by
    another process (pytest-xdist's other worker), and moto's server thread would then die before it is ready."""
    config = dataclasses.replace(LocalConfig.from_environment(), aws_port=0)
    server = start_emulator(config)
    config = dataclasses.replace(config, aws_port=server.get_host_and_port()[1])
    for key, value in config.aws_environment().items():
        monkeypatch.setenv(key, value)
    try:
        clients = {
            s: boto3.client(
                s,
                endpoint_url=config.endpoint,
                region_name=REGION,
                aws_access_key_id="local",
                aws_secret_access_key="local",
            )
            for s in ("dynamodb", "sqs", "secretsmanager")
        }
        stack = provision(
            clients,
            "emulator-test",
            {"AppSecret": json.dumps({"app_secrets": [APP_SECRET], "verify_token": "t"})},
            streams=True,  # as make run provisions it: the fan-out reads the table's stream
        )
        yield Emulator(config.endpoint, stack, clients)
    finally:
        # moto's backends are this process's: leave them empty for the tests that follow.
        reset = urllib.request.Request(f"{config.endpoint}/moto-api/reset", method="POST")  # noqa: S310 - loopback
        urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310  # nosec B310 - http://127.0.0.1
        server.stop()
        emulator_fixes.revert()


# FIFO deduplication ------------------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Moves the emulator's SQS clock forward (send times, visibility, deduplication): ``advance(seconds)``."""
    offset = {"ms": 0.0}
    real = vars(moto.sqs.models)["unix_time_millis"]
    monkeypatch.setattr(moto.sqs.models, "unix_time_millis", lambda *a: real(*a) + offset["ms"])

    def advance(seconds: float) -> None:
        offset["ms"] += seconds * 1000

    return advance


def _send(sqs: Any, url: str, group: str, deduplication_id: str, body: str) -> None:
    sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=deduplication_id)


def _take_all(sqs: Any, url: str) -> list[str]:
    """Receive and delete what the queue holds (bounded), as the callback poller does; the bodies."""
    bodies: list[str] = []
    for _ in range(20):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            break
        bodies.extend(m["Body"] for m in got)
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        )
    return bodies


def _depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_a_deduplication_id_is_kept_five_minutes_after_its_message_was_deleted(
    emulator: Emulator, clock: Callable[[float], None]
) -> None:
    sqs, url = emulator.clients["sqs"], emulator.stack.refs["CallbackQueue"]
    _send(sqs, url, "message-1", "status-SENT", "SENT, first")
    assert _take_all(sqs, url) == ["SENT, first"]  # received and deleted

    clock(60)
    _send(sqs, url, "message-1", "status-SENT", "SENT, repeated")  # accepted, as SQS does ...
    assert _depth(sqs, url) == 0  # ... but not delivered
    assert _take_all(sqs, url) == []

    clock(4 * 60 + 1)  # 5 minutes and 1 second after the first send (the repeat does not extend the window)
    _send(sqs, url, "message-1", "status-SENT", "SENT, after the window")
    assert _take_all(sqs, url) == ["SENT, after the window"]


def test_deduplication_is_per_message_group_where_the_queue_says_so(emulator: Emulator) -> None:
    # The template's FIFO queues have DeduplicationScope messageGroup: the same id in another group is
    # another message, whether the first is still on the queue or not.
    sqs, url = emulator.clients["sqs"], emulator.stack.refs["CallbackQueue"]
    _send(sqs, url, "message-1", "same-id", "in group 1")
    _send(sqs, url, "message-2", "same-id", "in group 2")
    _send(sqs, url, "message-1", "same-id", "in group 1 again")
    assert sorted(_take_all(sqs, url)) == ["in group 1", "in group 2"]


# TransactWriteItems ----------------------------------------------------------------------------------


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _items(emulator: Emulator) -> dict[tuple[str, str], dict[str, Any]]:
    table = emulator.stack.refs["GatewayTable"]
    items = emulator.clients["dynamodb"].scan(TableName=table, ConsistentRead=True)["Items"]
    return {(i["pk"]["S"], i["sk"]["S"]): i for i in items}


def _seed(emulator: Emulator) -> dict[tuple[str, str], dict[str, Any]]:
    table, dynamodb = emulator.stack.refs["GatewayTable"], emulator.clients["dynamodb"]
    dynamodb.put_item(TableName=table, Item={**_key("c", "STATE"), "n": {"N": "1"}})
    dynamodb.put_item(TableName=table, Item={**_key("c", "EVT#old"), "body": {"S": "kept"}})
    dynamodb.put_item(TableName=table, Item={**_key("c", "EVT#doomed"), "body": {"S": "kept too"}})
    return _items(emulator)


def _writes_that_succeed(table: str) -> list[dict[str, Any]]:
    return [
        {
            "Put": {
                "TableName": table,
                "Item": {**_key("c", "EVT#new"), "body": {"S": "new"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
        {
            "Update": {
                "TableName": table,
                "Key": _key("c", "STATE"),
                "UpdateExpression": "SET n = :n",
                "ConditionExpression": "n < :n",
                "ExpressionAttributeValues": {":n": {"N": "2"}},
            }
        },
        {
            "Update": {
                "TableName": table,
                "Key": _key("other", "STATE"),
                "UpdateExpression": "SET n = :n",
                "ExpressionAttributeValues": {":n": {"N": "1"}},
            }
        },
        {"Delete": {"TableName": table, "Key": _key("c", "EVT#doomed")}},
    ]


def test_a_transaction_with_one_failing_condition_writes_nothing(emulator: Emulator) -> None:
    table, dynamodb = emulator.stack.refs["GatewayTable"], emulator.clients["dynamodb"]
    before = _seed(emulator)
    # The failing condition comes last, after moto has applied the other four.
    failing = {
        "Put": {
            "TableName": table,
            "Item": {**_key("c", "EVT#old"), "body": {"S": "overwritten"}},
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(TransactItems=[*_writes_that_succeed(table), failing])
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons: Any = cancelled.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "None", "None", "None", "ConditionalCheckFailed"]
    assert reasons[4]["Item"]["body"] == {"S": "kept"}
    assert _items(emulator) == before


def test_a_condition_check_that_fails_cancels_the_writes_before_it(emulator: Emulator) -> None:
    table, dynamodb = emulator.stack.refs["GatewayTable"], emulator.clients["dynamodb"]
    before = _seed(emulator)
    check = {
        "ConditionCheck": {
            "TableName": table,
            "Key": _key("c", "STATE"),
            "ConditionExpression": "n > :n",
            "ExpressionAttributeValues": {":n": {"N": "5"}},
        }
    }
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[*_writes_that_succeed(table)[:1], check, *_writes_that_succeed(table)[2:]]
        )
    assert [r["Code"] for r in cancelled.value.response["CancellationReasons"]] == [
        "None",
        "ConditionalCheckFailed",
        "None",
        "None",
    ]
    assert _items(emulator) == before


def test_a_transaction_naming_an_item_twice_writes_nothing(emulator: Emulator) -> None:
    table, dynamodb = emulator.stack.refs["GatewayTable"], emulator.clients["dynamodb"]
    before = _seed(emulator)
    twice = {"Delete": {"TableName": table, "Key": _key("c", "STATE")}}  # the second action on c/STATE
    with pytest.raises(ClientError) as rejected:
        dynamodb.transact_write_items(TransactItems=[*_writes_that_succeed(table), twice])
    assert rejected.value.response["Error"]["Code"] == "ValidationException"
    assert _items(emulator) == before


def test_an_action_with_two_operations_rejects_the_whole_transaction(emulator: Emulator) -> None:
    # moto 5.2.5 raises this one without its rollback, keeping the writes of the actions before it.
    table, dynamodb = emulator.stack.refs["GatewayTable"], emulator.clients["dynamodb"]
    before = _seed(emulator)
    two = {
        "ConditionCheck": {
            "TableName": table,
            "Key": _key("c", "EVT#old"),
            "ConditionExpression": "attribute_exists(pk)",
        },
        "Delete": {"TableName": table, "Key": _key("c", "EVT#old")},
    }
    with pytest.raises(ClientError) as rejected:
        dynamodb.transact_write_items(TransactItems=[*_writes_that_succeed(table), two])
    assert rejected.value.response["Error"]["Code"] == "ValidationException"
    assert _items(emulator) == before


def test_a_transaction_that_succeeds_writes_everything(emulator: Emulator) -> None:
    table, dynamodb = emulator.stack.refs["GatewayTable"], emulator.clients["dynamodb"]
    before = _seed(emulator)
    dynamodb.transact_write_items(TransactItems=_writes_that_succeed(table))
    after = _items(emulator)
    assert set(after) == set(before) - {("c", "EVT#doomed")} | {("c", "EVT#new"), ("other", "STATE")}
    assert after[("c", "STATE")]["n"] == {"N": "2"}
    assert after[("c", "EVT#old")] == before[("c", "EVT#old")]


# A long run ------------------------------------------------------------------------------------------

EVENTS = 5000
EVENTS_PER_POST = 50  # Meta batches events too; 100 POSTs keep the test well under a minute
CONVERSATIONS = 100
# Per event, a transaction copies at most the item it writes (the rollback journal) and moto's
# update_item its own copy of a conversation's state: a few copies, whatever the table holds.
COPIES_PER_EVENT = 4
# Sending looks at no message already on the queue (the events queue here keeps every event: nothing
# consumes it, as in `make run`); one per event is a generous bound.
MESSAGES_LOOKED_AT_PER_EVENT = 1
LIVE_ITEMS_SLACK = 1000  # moto's items alive besides the table's own, between requests
RSS_GROWTH_BOUND_MB = 400  # 5000 events take about 40 MB; without the fixes, gigabytes


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0  # not Linux: the deterministic bounds below still hold


def _post(document: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(document, separators=(",", ":")).encode()
    event = http_api_event(
        "POST",
        "/webhook",
        body=body,
        headers={"content-type": "application/json", "X-Hub-Signature-256": sign(body, APP_SECRET)},
    )
    result: dict[str, Any] = handler.lambda_handler(event, LambdaContext("WebhookFunction"))
    return result


def _messages(first: int, count: int, since_ms: int) -> dict[str, Any]:
    return {
        "object": "instagram",
        "entry": [
            {
                "id": ACCOUNT,
                "time": since_ms + first * 1000,
                "messaging": [
                    {
                        "sender": {"id": str(6543210987654000 + n % CONVERSATIONS)},
                        "recipient": {"id": ACCOUNT},
                        "timestamp": since_ms + n * 1000,
                        "message": {"mid": f"m_long_run_{n}", "text": f"message {n}"},
                    }
                    for n in range(first, first + count)
                ],
            }
        ],
    }


def test_5000_webhook_events_cost_the_same_per_post_and_memory_stays_bounded(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in emulator.stack.function_environment("WebhookFunction").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint)
    reset_function_state()
    # The work a POST makes the emulator do, counted rather than timed: every moto item it deep-copies
    # (its transactions' rollback copies among them).
    copies = {"n": 0, "most": 0}
    deepcopy_item = Item.__deepcopy__

    def counted(self: Any, memo: dict[int, Any]) -> Any:
        copies["n"] += 1
        return deepcopy_item(self, memo)

    monkeypatch.setattr(Item, "__deepcopy__", counted)
    # ... and every SQS message it looks at (whether visible, whether delayed) while sending.
    looked_at = {"n": 0}
    for name in ("visible", "delayed"):
        check = vars(Message)[name].fget

        def counted_check(self: Any, check: Callable[[Any], bool] = check) -> bool:
            looked_at["n"] += 1
            return check(self)

        monkeypatch.setattr(Message, name, property(counted_check))
    gc.collect()
    rss_before = _rss_mb()
    started = time.monotonic()
    since_ms = int(time.time() * 1000) - (EVENTS + 3600) * 1000  # one event a second, all in the past hours
    try:
        for first in range(0, EVENTS, EVENTS_PER_POST):
            copies["n"] = looked_at["n"] = 0
            response = _post(_messages(first, EVENTS_PER_POST, since_ms))
            assert response["statusCode"] == 200, response
            assert json.loads(response["body"])["published"] == EVENTS_PER_POST
            # Without the fix this is actions x table size: 2,500 in the first POST, and growing with the table.
            assert copies["n"] <= COPIES_PER_EVENT * EVENTS_PER_POST, (
                f"POST {first // EVENTS_PER_POST + 1} deep-copied {copies['n']} items, "
                f"with {first} events stored before it"
            )
            copies["most"] = max(copies["most"], copies["n"])
            # Without the fix, each send walks the queue 5 times: 22,700 looks in the first POST, then more.
            assert looked_at["n"] <= MESSAGES_LOOKED_AT_PER_EVENT * EVENTS_PER_POST, (
                f"POST {first // EVENTS_PER_POST + 1} looked at {looked_at['n']} queued messages, "
                f"with {first} events queued before it"
            )
    finally:
        reset_function_state()
    elapsed = time.monotonic() - started

    stored = sum(
        page["Count"]
        for page in emulator.clients["dynamodb"]
        .get_paginator("scan")
        .paginate(TableName=emulator.stack.refs["GatewayTable"], Select="COUNT")
    )
    assert stored >= EVENTS + CONVERSATIONS
    gc.collect()
    live_items = len(list(vars(Item)["instances_tracked"]))  # what moto keeps for its dashboard, no more
    assert live_items <= stored + LIVE_ITEMS_SLACK, f"{live_items} moto items alive for {stored} stored"
    growth = _rss_mb() - rss_before
    assert growth < RSS_GROWTH_BOUND_MB, f"the process grew {growth:.0f} MB over {EVENTS} events"
    print(
        f"{EVENTS} events in {elapsed:.1f} s, at most {copies['most']} items copied per POST, {stored} items "
        f"stored, {live_items} moto items alive, RSS +{growth:.0f} MB"
    )


# The table's stream ------------------------------------------------------------------------------------


def test_a_stream_keeps_its_latest_records_and_every_sequence_number_still_names_its_record(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(emulator_fixes, "STREAM_RECORDS_KEPT", 5)
    ddb, table = emulator.clients["dynamodb"], emulator.stack.refs["GatewayTable"]
    streams = boto3.client(
        "dynamodbstreams",
        endpoint_url=emulator.endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    arn = emulator.stack.attributes[("GatewayTable", "StreamArn")]
    [shard] = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]

    def iterator() -> str:
        return str(
            streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST")[
                "ShardIterator"
            ]
        )

    before = iterator()
    for n in range(8):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"STREAM#{n}"}, "sk": {"S": "X"}})
    kept = streams.get_records(ShardIterator=before)["Records"]  # its first three records are gone
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in kept] == [f"STREAM#{n}" for n in range(3, 8)]
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in kept]
    assert numbers == list(range(numbers[0], numbers[0] + 5))
    after = iterator()
    ddb.put_item(TableName=table, Item={"pk": {"S": "STREAM#8"}, "sk": {"S": "X"}})
    [latest] = streams.get_records(ShardIterator=after)["Records"]
    assert int(latest["dynamodb"]["SequenceNumber"]) == numbers[-1] + 1

"""The AWS requests the real sender makes for one message: each is a round trip the message waits for and a
line of the bill (docs/performance.md, the cost section), so the list is pinned, request by request."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from igdm.runtime import aws
from local.harnesses.outbound import Loop
from local.samples import outbound as out
from tests.integration.table_access import calling_function

SENDER = "SenderFunction"


@contextmanager
def sender_requests() -> Iterator[list[str]]:
    """Each AWS request the sender's code makes while the block runs, named by its operation and, for
    DynamoDB, the key families of the items it touches (the echo webhook shares the clients: its requests,
    made by the webhook's code, are left out)."""
    made: list[str] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        if calling_function() == SENDER:
            made.append(" ".join([model.name, *_families(params)]))

    clients = [aws.client(service) for service in ("dynamodb", "sqs", "secretsmanager")]
    for client in clients:
        client.meta.events.register("before-parameter-build", record)
    try:
        yield made
    finally:
        for client in clients:
            client.meta.events.unregister("before-parameter-build", record)


def _families(params: dict[str, Any]) -> list[str]:
    """``OUT#/MESSAGE`` for an outbound record's key: the partition key up to its first ``#``, and the sort
    key's (the items of a transaction, in its order)."""
    keys = [params.get("Key") or params.get("Item")]
    for action in params.get("TransactItems", []):
        (request,) = action.values()
        keys.append(request.get("Key") or request.get("Item"))
    return [f"{key['pk']['S'].split('#')[0]}#/{key['sk']['S'].split('#')[0]}" for key in keys if key and "pk" in key]


def test_a_text_message_to_an_idle_account_costs_five_aws_requests(loop: Loop) -> None:
    loop.say()
    # A warm instance: the account list and the token are cached, as for every message but a cold start's first.
    loop.enqueue(out.outbound("text", key="warm-up"))
    loop.run()
    time.sleep(0.1)  # the account's rate slot is long free again: it is idle
    with sender_requests() as made:
        loop.enqueue(out.outbound("text", key="counted"))
        loop.run()
    assert loop.status_names("counted") == ["SENT", "DELIVERED"]
    # Before, eight: the claim, the window, two rate updates (the busy account's refused, then the idle
    # one's), the part in flight, the part sent, the mid's link, the status.
    assert made == [
        "GetItem CONV#/STATE",  # the window and the conversation's owner
        "UpdateItem RATE#/RATE",  # the idle account's slot: the update this instance's last look called for
        "PutItem OUT#/MESSAGE",  # the record, created with part 1 in flight: the claim is the mark
        "TransactWriteItems OUT#/MESSAGE MID#/MID",  # Meta accepted part 1: SENT, and its mid points at it
        "SendMessageBatch",  # the SENT status event
    ]

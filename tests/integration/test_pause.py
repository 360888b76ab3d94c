"""Pausing an account with tools.accounts: nothing is sent for it until it is resumed, then its messages go in
their order; inbound keeps flowing; each change is announced with an account_status event."""

from typing import Any

import pytest

from igdm.runtime import aws
from igdm.store.outbound_records import OutboundRecords
from local.harnesses.outbound import ACCOUNT, Loop, reset_function_state
from local.samples import outbound as out
from sender import service as sender_service
from tools.accounts import Target, set_paused


def target(loop: Loop) -> Target:
    clients = {name: aws.client(name) for name in ("dynamodb", "sqs", "secretsmanager")}
    return Target(clients, loop.stack.refs["GatewayTable"], loop.events_url, "", "", "", "", "v24.0", [])


def changes(loop: Loop) -> list[Any]:
    return [e["account"]["change"] for e in loop.events() if e["kind"] == "account_status"]


def test_a_paused_account_sends_nothing_until_it_is_resumed_then_its_messages_go_in_order(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender_service, "PAUSED_RECHECK_SECONDS", 0.2)  # here, a held message looks again soon
    loop.say()
    assert set_paused(target(loop), ACCOUNT, True).startswith(f"paused {ACCOUNT}")
    reset_function_state()  # the sender's account cache (a minute in a deployed stack)
    for n in (1, 2):
        loop.enqueue(out.outbound("text", key=f"held-{n}", message={"type": "text", "text": f"answer {n}"}))
    assert loop.poller.poll_once() >= 1  # the sender took the first message (FIFO: the second waits behind it)
    record = OutboundRecords(aws.client("dynamodb"), loop.stack.refs["GatewayTable"], 1).get("held-1")
    assert record is not None and record.status == "PENDING"  # held, not sent, not failed
    assert loop.sandbox.sent == [] and loop.statuses() == []
    loop.say("still there?")  # inbound goes on while sending is paused
    assert [e["text"] for e in loop.events() if e["kind"] == "text"][-1] == "still there?"

    assert set_paused(target(loop), ACCOUNT, False).startswith(f"resumed {ACCOUNT}")
    reset_function_state()
    loop.run(seconds=1)
    assert [s.body["message"]["text"] for s in loop.sandbox.sent] == ["answer 1", "answer 2"]
    assert changes(loop) == ["paused", "resumed"]
    assert "already sending" in set_paused(target(loop), ACCOUNT, False)


def test_pausing_an_unknown_account_creates_nothing(loop: Loop) -> None:
    with pytest.raises(SystemExit, match="no account 17841499999999999"):
        set_paused(target(loop), "17841499999999999", True)

"""Handover end to end, on the real handlers, moto and the Graph sandbox: a customer's HUMAN_AGENT tap passes
the conversation to the Instagram Inbox once, automated replies are refused while a person has it, and a reply
that takes control back is sent after the take."""

import time
from typing import Any

from local.harnesses.outbound import ACCOUNT, CUSTOMER, Loop
from local.samples import meta as m
from local.samples import outbound as out

INBOX = "1217981644879628"


def tap(mid: str = "m_tap") -> dict[str, Any]:
    payload = {"message": {"mid": mid, "text": "Talk to a person", "quick_reply": {"payload": "HUMAN_AGENT"}}}
    return m.inbound(payload, ts=int(time.time() * 1000), customer=CUSTOMER)


def handovers(loop: Loop) -> list[dict[str, Any]]:
    return [e for e in loop.events() if e["kind"] == "handover"]


def test_a_human_agent_tap_passes_the_conversation_to_the_inbox_once_and_the_gateway_stands_aside(
    loop: Loop,
) -> None:
    loop.say()
    loop.webhook(tap())
    loop.webhook(tap())  # Meta delivers the tap again
    loop.run()
    assert [(s.endpoint, s.body.get("target_app_id")) for s in loop.sandbox.sent] == [("pass_thread_control", INBOX)]
    [handover] = [e for e in handovers(loop) if e["source"] == "gateway"]
    assert (handover["customer_id"], handover["handover"]["new_owner_app_id"]) == (CUSTOMER, INBOX)

    loop.enqueue(out.outbound("text", key="bot-reply"))  # automation, while a person has the conversation
    loop.run()
    [refused] = loop.statuses("bot-reply")
    assert (refused["status"], refused["reason"]) == ("FAILED", "thread_owned_by_inbox")
    assert len(loop.sandbox.sent) == 1

    loop.enqueue(out.outbound("text", key="back", take_control=True))
    loop.run()
    assert [s.endpoint for s in loop.sandbox.sent] == ["pass_thread_control", "take_thread_control", "messages"]
    assert loop.status_names("back") == ["SENT", "DELIVERED"]
    assert [e["handover"]["type"] for e in handovers(loop) if e["source"] == "gateway"] == [
        "pass_thread_control",
        "take_thread_control",
    ]


def test_the_inbox_handing_the_conversation_back_by_webhook_lets_automation_send_again(loop: Loop) -> None:
    loop.say()
    loop.enqueue(out.outbound("text", key="to-inbox", message={"type": "pass_thread_control"}))
    loop.run()
    back = {"pass_thread_control": {"previous_owner_app_id": INBOX, "new_owner_app_id": "1122334455667788"}}
    loop.webhook(m.inbound(back, ts=int(time.time() * 1000) + 1000, customer=CUSTOMER))  # the person is done
    loop.enqueue(out.outbound("text", key="bot-again"))
    loop.run()
    assert loop.status_names("bot-again") == ["SENT", "DELIVERED"]
    assert ACCOUNT in {e["account_id"] for e in handovers(loop)}


def test_the_sandboxs_inbox_takes_and_hands_back_by_webhook_and_the_sender_follows(loop: Loop) -> None:
    loop.say()
    loop.sandbox.inbox_hands_over(ACCOUNT, CUSTOMER, "take")  # a person picks the conversation up in the app
    loop.sandbox.drain_webhooks()
    loop.enqueue(out.outbound("text", key="while-taken"))
    loop.run()
    assert [s["reason"] for s in loop.statuses("while-taken")] == ["thread_owned_by_inbox"]
    time.sleep(0.01)  # the hand-back's webhook is stamped after the take's
    loop.sandbox.inbox_hands_over(ACCOUNT, CUSTOMER, "pass_back")
    loop.sandbox.drain_webhooks()
    loop.enqueue(out.outbound("text", key="after"))
    loop.run()
    assert loop.status_names("after") == ["SENT", "DELIVERED"]
    assert [e["handover"]["type"] for e in handovers(loop) if e["source"] == "messaging"] == [
        "take_thread_control",
        "pass_thread_control",
    ]


def test_a_tap_the_sandbox_plays_passes_the_conversation_as_a_webhooked_one_does(loop: Loop) -> None:
    loop.sandbox.customer_says(ACCOUNT, CUSTOMER, "Talk to a person", quick_reply_payload="HUMAN_AGENT")
    loop.sandbox.drain_webhooks()
    loop.run()
    assert [s.endpoint for s in loop.sandbox.sent] == ["pass_thread_control"]
    [tapped] = [e for e in loop.events() if e["kind"] == "quick_reply"]
    assert tapped["quick_reply_payload"] == "HUMAN_AGENT"

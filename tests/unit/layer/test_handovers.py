"""What handovers change once their events are durable (igdm.inbound.handovers): the conversation's thread owner
from Meta's handover webhooks, and the pass to the Instagram Inbox a customer's HUMAN_AGENT tap asks for."""

from dataclasses import dataclass, field
from typing import Any

from igdm.contracts.events import InboundEvent
from igdm.contracts.outbound import OutboundMessage, ThreadControl
from igdm.inbound.handovers import Handovers
from igdm.inbound.meta_payload import Envelope
from igdm.inbound.normalize import normalize
from local.samples import meta as m

GATEWAY_APP = "1122334455667788"


@dataclass
class Owners:
    recorded: list[tuple[str, str, str | None, int]] = field(default_factory=list)

    def record_owner(self, account_id: str, customer_id: str, owner: str | None, at_ms: int) -> bool:
        self.recorded.append((account_id, customer_id, owner, at_ms))
        return True


@dataclass
class Outbound:
    queued: list[OutboundMessage] = field(default_factory=list)

    def enqueue(self, message: OutboundMessage) -> None:
        self.queued.append(message)


def events(*items: dict[str, Any], standby: bool = False) -> list[InboundEvent]:
    document = m.envelope(*items)
    if standby:
        document["entry"][0]["standby"] = document["entry"][0].pop("messaging")
    return normalize(Envelope.model_validate(document), m.T0 + 1000)


def tap(payload: str, *, postback: bool = False, mid: str = "m_tap") -> dict[str, Any]:
    if postback:
        return m.inbound({"postback": {"mid": mid, "title": "Talk to a person", "payload": payload}})
    return m.inbound({"message": {"mid": mid, "text": "A person, please", "quick_reply": {"payload": payload}}})


def handovers() -> tuple[Handovers, Owners, Outbound]:
    owners, outbound = Owners(), Outbound()
    return Handovers(owners, outbound, "HUMAN_AGENT"), owners, outbound


def test_metas_pass_webhook_records_the_new_owner_at_its_time() -> None:
    h, owners, outbound = handovers()
    assert h.apply(events(m.handover())) == 1
    assert owners.recorded == [(m.ACCOUNT, m.CUSTOMER, "222222222222222", m.T0 + 900)]
    assert outbound.queued == []


def test_a_handover_to_the_gateways_own_app_records_the_gateway() -> None:
    h, owners, _ = handovers()
    take = m.inbound(
        {"take_thread_control": {"previous_owner_app_id": "1217981644879628", "new_owner_app_id": GATEWAY_APP}}
    )
    h.apply(events(take), frozenset({GATEWAY_APP}))
    assert [r[2] for r in owners.recorded] == ["gateway"]


def test_a_request_for_control_changes_no_owner() -> None:
    h, owners, _ = handovers()
    h.apply(events(m.inbound({"request_thread_control": {"requested_owner_app_id": "123", "metadata": "x"}})))
    assert owners.recorded == []


def test_a_human_agent_tap_asks_for_one_pass_to_the_instagram_inbox_keyed_by_the_tap() -> None:
    h, _, outbound = handovers()
    for postback in (False, True):
        h.apply(events(tap("HUMAN_AGENT", postback=postback, mid=f"m_tap_{postback}")))
    assert len(outbound.queued) == 2
    first = outbound.queued[0]
    assert isinstance(first.message, ThreadControl) and first.message.type == "pass_thread_control"
    assert first.message.target_app_id is None  # the sender's default: the Instagram Inbox
    assert (first.account_id, first.recipient.id) == (m.ACCOUNT, m.CUSTOMER)
    [tapped] = events(tap("HUMAN_AGENT", mid="m_tap_False"))
    assert first.idempotency_key == f"handover-{tapped.event_id}"  # a redelivered tap: the same key, sent once


def test_other_payloads_standby_taps_and_a_disabled_trigger_pass_nothing() -> None:
    h, _, outbound = handovers()
    h.apply(events(tap("TRACK_ORDER"), m.postback()))
    h.apply(events(tap("HUMAN_AGENT"), standby=True))  # another app has the conversation already
    Handovers(Owners(), outbound, None).apply(events(tap("HUMAN_AGENT")))
    assert outbound.queued == []

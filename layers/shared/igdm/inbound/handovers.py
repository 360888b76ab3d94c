"""What handovers change, applied once their events are durable.

- Meta's handover webhooks (pass_thread_control, take_thread_control) name the conversation's new owner: it is
  recorded on the conversation's state (the gateway's own app as "gateway"), only ever forward, so the sender
  refuses automated messages while a person has the conversation.
- The CM.com trigger: a customer's tap on a quick reply or postback whose payload is the handover payload
  (HUMAN_AGENT by default) passes the conversation to the Instagram Inbox. The pass goes through the outbound
  queue like any message, keyed by the tap's event id, so however often Meta redelivers the tap it is sent
  once, in the conversation's order; the sender publishes the handover event once Meta took it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from igdm.contracts.event_kinds import EventKind
from igdm.store.conversation_state import GATEWAY_OWNER

if TYPE_CHECKING:  # the outbound contract's models cost the webhook's cold start ~15 ms; a tap is rare
    from igdm.contracts.outbound import OutboundMessage
    from igdm.contracts.plain_event import Event

OWNER_CHANGES = ("pass_thread_control", "take_thread_control")


class Owners(Protocol):
    def record_owner(self, account_id: str, customer_id: str, owner: str | None, at_ms: int) -> bool: ...


class Outbound(Protocol):
    def enqueue(self, message: OutboundMessage) -> None: ...


# A plain class, not a dataclass: built several times faster, on the webhook's cold start.
class Handovers:
    def __init__(self, owners: Owners, outbound: Outbound | None = None, trigger_payload: str | None = None) -> None:
        self.owners = owners
        self.outbound = outbound
        self.trigger_payload = trigger_payload  # None or "": no trigger

    def apply(self, events: Iterable[Event], gateway_app_ids: frozenset[str] = frozenset()) -> int:
        """Returns how many handovers were recorded or enqueued."""
        done = 0
        for event in events:
            if event.customer_id is None:
                continue
            handover = event.handover
            if event.kind == EventKind.HANDOVER and handover and handover.type in OWNER_CHANGES:
                if handover.new_owner_app_id:
                    new = handover.new_owner_app_id
                    owner = GATEWAY_OWNER if new in gateway_app_ids else new
                    at = int(event.occurred_at.timestamp() * 1000)
                    done += self.owners.record_owner(event.account_id, event.customer_id, owner, at)
            elif self.outbound is not None and self._tapped(event):
                self.outbound.enqueue(self.pass_for(event))
                done += 1
        return done

    def _tapped(self, event: Event) -> bool:
        if not self.trigger_payload or event.source != "messaging":
            return False
        if event.kind == EventKind.QUICK_REPLY:
            return event.quick_reply_payload == self.trigger_payload
        return (
            event.kind == EventKind.POSTBACK
            and event.postback is not None
            and (event.postback.payload == self.trigger_payload)
        )

    def pass_for(self, tap: Event) -> OutboundMessage:
        from igdm.contracts.outbound import OutboundMessage, Recipient, ThreadControl

        return OutboundMessage(
            idempotency_key=f"handover-{tap.event_id}",
            account_id=tap.account_id,
            recipient=Recipient(id=tap.customer_id),
            message=ThreadControl(type="pass_thread_control", metadata=f"the customer tapped {self.trigger_payload}"),
            correlation_id=f"handover-trigger:{tap.event_id}",
        )

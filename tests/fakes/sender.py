"""In-memory stand-ins for the sender's ports (sender.service): the outbound records, the accounts and their
tokens, Meta's Send API, the rate limiter, the status publisher and the conversations' windows.

The records keep the conditions of igdm.store.outbound_records.OutboundRecords, since they are what makes a
message go out at most once: a status moves only from one of its PREDECESSORS, a part is begun only when
it is the next one and none is in flight, and only the part in flight can be recorded sent or refused.
"""

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from igdm.contracts.events import InboundEvent
from igdm.meta.echoes import Echo, Unsettled
from igdm.store.account_directory import AccountLookupFailed, AccountUnavailable
from igdm.store.accounts import NEEDS_REAUTHORISATION, Account
from igdm.store.comments import CommentItem
from igdm.store.conversation_state import ConversationView
from igdm.store.outbound_records import (
    DELIVERED,
    FAILED,
    MAX_TEXT_ATTRIBUTE,
    PENDING,
    PREDECESSORS,
    SENT,
    UNKNOWN,
    OutboundRecord,
    UnsettledMarker,
    in_conversation,
)
from igdm.store.rate_limits import Slot
from sender.errors import MetaError
from sender.graph import Accepted, Outcome, Refused


class MemoryRecords:
    """One OutboundRecord per idempotency key, Meta's mids, receipts, stored echoes and UNKNOWN messages
    waiting for theirs, with OutboundRecords' conditional semantics."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.records: dict[str, OutboundRecord] = {}
        self.mids: dict[str, dict[str, Any]] = {}  # the MID# items: idempotency_key, conversation_id, receipts
        self.waiting: dict[tuple[str, str], dict[str, Unsettled]] = {}
        self.echoes: dict[tuple[str, str], list[Echo]] = {}

    # --- the sender's side (sender.service.Records)

    def claim(
        self,
        *,
        idempotency_key: str,
        payload_hash: str,
        kind: str,
        account_id: str | None,
        customer_id: str | None,
        parts_total: int,
        correlation_id: str | None,
        callback_url: str | None,
        callback_data: str | None,
        dialect: str | None = None,
        inflight_at: str | None = None,
    ) -> tuple[OutboundRecord, bool]:
        existing = self.records.get(idempotency_key)
        if existing is not None:
            return existing, False
        record = OutboundRecord(
            idempotency_key=idempotency_key,
            status=PENDING,
            account_id=account_id,
            customer_id=customer_id,
            kind=kind,
            payload_hash=payload_hash,
            parts_total=parts_total,
            parts_sent=0,
            inflight_part=None if inflight_at is None else 0,  # with inflight_at, the claim also begins part 0
            inflight_at=inflight_at,
            correlation_id=correlation_id,
            callback_url=callback_url,
            callback_data=callback_data,
            dialect=dialect,
        )
        self.records[idempotency_key] = record
        return record, True

    def get(self, idempotency_key: str) -> OutboundRecord | None:
        return self.records.get(idempotency_key)

    def begin_part(self, idempotency_key: str, part: int) -> bool:
        began = self._update(
            idempotency_key,
            lambda r: r.status == PENDING and r.parts_sent == part and r.inflight_part is None,
            inflight_part=part,
            inflight_at=datetime.fromtimestamp(self._clock(), UTC).isoformat(),
        )
        return began is not None

    def part_sent(self, idempotency_key: str, part: int, message_id: str | None, last: bool) -> OutboundRecord | None:
        record = self.records.get(idempotency_key)
        if record is None or record.inflight_part != part:
            return None
        changes: dict[str, Any] = {
            "parts_sent": part + 1,
            "message_ids": [*record.message_ids, *([message_id] if message_id else [])],
            "inflight_part": None,
            "inflight_at": None,
            "refusals": 0,  # each part has its own tries
        }
        if last:
            changes["status"] = SENT
        return self._update(idempotency_key, lambda r: True, **changes)

    def part_sent_linked(self, record: OutboundRecord, part: int, message_id: str, last: bool) -> OutboundRecord | None:
        """part_sent and link_message_id at once, as OutboundRecords' transaction: both or neither, and neither
        once anything is recorded for the mid (a receipt that came first)."""
        stored = self.records.get(record.idempotency_key)
        if message_id in self.mids or stored is None or (stored.inflight_part, stored.parts_sent) != (part, part):
            return None
        self.link_message_id(message_id, record)
        return self.part_sent(record.idempotency_key, part, message_id, last)

    def part_not_sent(self, idempotency_key: str, part: int) -> int:
        record = self.records.get(idempotency_key)
        if record is None or record.inflight_part != part:
            return 0
        updated = self._update(
            idempotency_key, lambda r: True, refusals=record.refusals + 1, inflight_part=None, inflight_at=None
        )
        return updated.refusals if updated is not None else 0

    def part_released(self, idempotency_key: str, part: int) -> None:
        self._update(idempotency_key, lambda r: r.inflight_part == part, inflight_part=None)

    def settle(
        self,
        idempotency_key: str,
        status: str,
        *,
        reason: str | None = None,
        detail: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> OutboundRecord | None:
        changes: dict[str, Any] = {"status": status}
        # As the table's update: only what is given is written, and long texts are cut to the attribute's limit.
        if reason is not None:
            changes["reason"] = reason[:MAX_TEXT_ATTRIBUTE]
        if detail is not None:
            changes["detail"] = detail[:MAX_TEXT_ATTRIBUTE]
        if error:
            changes["error"] = error
        if status in (FAILED, UNKNOWN):
            changes.update(inflight_part=None, inflight_at=None)
        return self._update(idempotency_key, lambda r: r.status in PREDECESSORS[status], **changes)

    def settle_by_echo(self, idempotency_key: str) -> OutboundRecord | None:
        record = self.records.get(idempotency_key)
        if record is None or record.status != UNKNOWN or record.parts_sent + 1 >= record.parts_total:
            return self.settle(idempotency_key, DELIVERED)
        return self.settle(
            idempotency_key,
            FAILED,
            reason="partially_sent",
            detail=f"parts 1 to {record.parts_sent + 1} of {record.parts_total} reached Instagram "
            "(the last of them after an uncertain answer); the rest were not sent",
        )

    def link_message_id(self, message_id: str, record: OutboundRecord) -> dict[str, Any]:
        before = dict(self.mids.get(message_id, {}))
        item = self.mids.setdefault(message_id, {})
        item["idempotency_key"] = record.idempotency_key
        if record.customer_id:
            item["conversation_id"] = f"{record.account_id}:{record.customer_id}"
        scope = before.get("conversation_id")
        account, _, customer = (scope or "").partition(":")
        return before if scope is None or in_conversation(record, account, customer) else {}

    def add_unsettled(self, record: OutboundRecord, waiting: Unsettled) -> None:
        if record.account_id and record.customer_id:
            self.waiting.setdefault((record.account_id, record.customer_id), {})[record.idempotency_key] = waiting

    def unsettled(self, account_id: str, customer_id: str) -> list[Unsettled]:
        return list(self.waiting.get((account_id, customer_id), {}).values())

    def stored_echoes(self, account_id: str, customer_id: str, since_ms: int) -> list[Echo]:
        found = [e for e in self.echoes.get((account_id, customer_id), []) if e.occurred_ms >= since_ms]
        return sorted(found, key=lambda e: e.occurred_ms)

    def claim_echo(self, message_id: str, idempotency_key: str) -> bool:
        item = self.mids.setdefault(message_id, {})
        if item.get("idempotency_key") not in (None, idempotency_key):
            return False
        item["idempotency_key"] = idempotency_key
        return True

    def remove_unsettled(self, account_id: str, customer_id: str, idempotency_key: str) -> None:
        self.waiting.get((account_id, customer_id), {}).pop(idempotency_key, None)

    # --- the reconciler's side (reconciler.service.UnknownSends)

    def account_unsettled(self, account_id: str) -> list[UnsettledMarker]:
        found = [
            UnsettledMarker(account, customer, waiting, "", 0)
            for (account, customer), of_conversation in self.waiting.items()
            if account == account_id
            for waiting in of_conversation.values()
        ]
        return sorted(found, key=lambda m: m.unsettled.ended_ms)

    def owners(self, message_ids: list[str]) -> dict[str, str]:
        keys = {mid: self.mids.get(mid, {}).get("idempotency_key") for mid in message_ids}
        return {mid: key for mid, key in keys.items() if isinstance(key, str)}

    def still_unknown(self, idempotency_key: str, reason: str, detail: str) -> OutboundRecord | None:
        return self._update(idempotency_key, lambda r: r.status == UNKNOWN, reason=reason, detail=detail)

    # --- the webhook's side, which tests play

    def receipt(self, message_id: str, kind: str, at_ms: int, account_id: str, customer_id: str) -> str | None:
        """An echo (DELIVERED) or a read of ``message_id`` arriving by webhook, as OutboundRecords.receipt."""
        conversation = f"{account_id}:{customer_id}"
        item = self.mids.setdefault(message_id, {})
        if item.setdefault("conversation_id", conversation) != conversation:
            return None
        item.setdefault("delivered_at" if kind == DELIVERED else "read_at", at_ms)
        key = item.get("idempotency_key")
        return key if isinstance(key, str) else None

    def store_echo(self, account_id: str, customer_id: str, echo: Echo) -> None:
        """The webhook stored an echo of the gateway's app in the conversation."""
        self.echoes.setdefault((account_id, customer_id), []).append(echo)

    def _update(
        self, idempotency_key: str, condition: Callable[[OutboundRecord], bool], **changes: Any
    ) -> OutboundRecord | None:
        record = self.records.get(idempotency_key)
        if record is None or not condition(record):
            return None
        self.records[idempotency_key] = replace(record, **changes)
        return self.records[idempotency_key]


class MemoryAccounts:
    """The accounts the sender sends from, and their tokens: a cached copy, as the Powertools secret cache
    serves, and the secret itself, which a fresh read (after Meta answers 190) finds."""

    def __init__(self, *accounts: Account, tokens: dict[str, str]) -> None:
        self.accounts = {a.account_id: a for a in accounts}
        self.secrets = dict(tokens)
        self.cached = dict(tokens)
        self.unreadable_token_reads = 0  # how many token reads Secrets Manager fails before it answers

    def resolve(self, account_id: str | None) -> Account:
        if account_id is None:
            if len(self.accounts) == 1:
                return next(iter(self.accounts.values()))
            raise AccountUnavailable(
                "no_account", f"account_id is required: this stack has {len(self.accounts)} accounts"
            )
        account = self.accounts.get(account_id)
        if account is None:
            raise AccountUnavailable("no_account", f"account {account_id} is not registered in this stack")
        return account

    def token(self, account: Account, *, fresh: bool = False) -> str:
        if self.unreadable_token_reads > 0:
            self.unreadable_token_reads -= 1
            raise AccountLookupFailed("token secret unreadable: injected")
        if fresh or account.account_id not in self.cached:
            self.cached[account.account_id] = self.secrets[account.account_id]
        return self.cached[account.account_id]

    def mark_needs_reauthorisation(self, account_id: str, detail: str) -> None:
        self.accounts[account_id] = replace(
            self.accounts[account_id], status=NEEDS_REAUTHORISATION, status_detail=detail
        )


@dataclass(frozen=True)
class GraphRequest:
    token: str
    body: dict[str, Any]
    endpoint: str = "messages"


class ScriptedGraph:
    """Meta's Send API: records each request exactly as handed over, and answers with the next scripted
    outcome (an exception is raised, as a crash in the middle of the call), else accepts it."""

    def __init__(self, *script: Outcome | BaseException) -> None:
        self.script = list(script)
        self.requests: list[GraphRequest] = []

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests]

    def answer(self, *outcomes: Outcome | BaseException) -> None:
        self.script.extend(outcomes)

    def send(self, token: str, body: dict[str, Any], endpoint: str = "messages") -> Outcome:
        self.requests.append(GraphRequest(token, copy.deepcopy(body), endpoint))
        if self.script:
            outcome = self.script.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        if endpoint != "messages":
            return Accepted(None, None, None)  # thread control: {"success": true}
        recipient = body["recipient"].get("id")
        # Messages get a mid; sender actions and reactions answer with the recipient only (as Meta).
        mid = f"m_{len(self.requests)}" if "message" in body else None
        return Accepted(mid, recipient, None)


def refused(
    http_status: int,
    code: int | None,
    subcode: int | None = None,
    message: str = "refused",
    *,
    transient: bool = False,
    usage: dict[str, Any] | None = None,
) -> Refused:
    """Meta's error answer, as sender.graph builds it from the response."""
    return Refused(MetaError(http_status, code, subcode, "OAuthException", message, "trace-1", transient), usage)


class MemoryLimiter:
    """Per-account pauses on the test's clock: a slot is free unless Meta's throttling paused the account."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.paused_until: dict[str, float] = {}
        self.reserved: list[tuple[str, str]] = []

    def acquire(self, account_id: str, rate_class: str, max_wait: float = 0.0) -> Slot:
        wait = max(0.0, self.paused_until.get(account_id, 0.0) - self._clock())
        if wait > max_wait:
            return Slot(False, wait)
        self.reserved.append((account_id, rate_class))
        return Slot(True, wait)

    def pause(self, account_id: str, seconds: float) -> None:
        until = self._clock() + seconds
        self.paused_until[account_id] = max(self.paused_until.get(account_id, 0.0), until)


@dataclass
class PublishedStatuses:
    """The message_status events, as the record stood when each was published; and the other events the
    gateway raised (handovers)."""

    published: list[OutboundRecord] = field(default_factory=list)
    events: list[InboundEvent] = field(default_factory=list)

    def publish(self, record: OutboundRecord) -> None:
        self.published.append(record)

    def publish_event(self, event: InboundEvent) -> None:
        self.events.append(event)

    def names(self, idempotency_key: str) -> list[str]:
        return [r.status for r in self.published if r.idempotency_key == idempotency_key]

    def of(self, idempotency_key: str) -> list[OutboundRecord]:
        return [r for r in self.published if r.idempotency_key == idempotency_key]


@dataclass
class LastMessages:
    """Each conversation's last user-initiated message (epoch ms), which opens the messaging windows, and its
    thread owner with when it was recorded (only forward, as ConversationState.record_owner)."""

    at_ms: dict[tuple[str, str], int] = field(default_factory=dict)
    owners: dict[tuple[str, str], tuple[str | None, int]] = field(default_factory=dict)

    def said(self, account_id: str, customer_id: str, at_ms: int) -> None:
        self.at_ms[(account_id, customer_id)] = at_ms

    def view(self, account_id: str, customer_id: str) -> ConversationView:
        owner = self.owners.get((account_id, customer_id), (None, 0))[0]
        return ConversationView(self.at_ms.get((account_id, customer_id)), owner)

    def record_owner(self, account_id: str, customer_id: str, owner: str | None, at_ms: int) -> bool:
        if self.owners.get((account_id, customer_id), (None, -1))[1] >= at_ms:
            return False
        self.owners[(account_id, customer_id)] = (owner, at_ms)
        return True

    def owner(self, account_id: str, customer_id: str) -> str | None:
        return self.owners.get((account_id, customer_id), (None, 0))[0]


@dataclass
class MemoryComments:
    """The customers' comments the webhook recorded, and the private reply each got (igdm.store.comments)."""

    items: dict[tuple[str, str], CommentItem] = field(default_factory=dict)

    def seen(self, account_id: str, comment_id: str, at_ms: int, commenter: str = "5550001") -> None:
        self.items[(account_id, comment_id)] = CommentItem(account_id, comment_id, commenter, at_ms)

    def get(self, account_id: str, comment_id: str) -> CommentItem | None:
        return self.items.get((account_id, comment_id))

    def mark_replied(self, account_id: str, comment_id: str, idempotency_key: str) -> bool:
        item = self.items.get((account_id, comment_id))
        if item is None or item.replied_by not in (None, idempotency_key):
            return False
        self.items[(account_id, comment_id)] = replace(item, replied_by=idempotency_key)
        return True

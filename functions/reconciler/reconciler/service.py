"""The reconciler: what Instagram's Conversations API shows that no webhook brought, published as the
webhook would have published it.

For each account that can be read, from its watermark (the first run: its connection, or HistoryImportDays
back, whichever is later): the conversations updated since, oldest first; each one's message ids; which of
them are stored already (one lookup); the details of those that are not, each then ingested exactly as a
webhook's (igdm.inbound.ingest: the same normaliser and event id, `message|<mid>`, so whichever of the
webhook and the reconciler comes second is a duplicate and publishes nothing). Backfilled events carry
source "backfill" and their real occurred_at, and Meta's answer as raw. A message beyond its conversation's
20 most recent has no details any more: it becomes a `gap` event naming its id, never a silent skip.

Then the account's messages left UNKNOWN (the Send API's answer never came) that no echo settled within
UNKNOWN_SETTLE_AFTER_SECONDS are looked up in their conversation (igdm.meta.echoes.look_up): found, they end
DELIVERED with Meta's mid; shown never to have reached Instagram, FAILED (not_delivered); never resent. A
lookup that cannot tell leaves them UNKNOWN with the reason, and the next run tries again.

Every call waits for the account's share of Meta's 2 calls per second (the shared rate limiter) and counts
against the run's budget; the watermark moves only past conversations whose events are durable, so a run
cut short by its budget, its time or Meta resumes where it stopped. One account's failure never stops the
others; a 190 marks the account for re-authorisation, as the sender does.
"""

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from igdm.contracts.account_status import AccountChange
from igdm.contracts.events import EventKind, InboundEvent, conversation_id
from igdm.inbound.ingest import EventKey, EventPublisher, EventStore, IngestResult, Receipts, ingest_events
from igdm.inbound.meta_payload import Envelope
from igdm.inbound.normalize import event_id, normalize
from igdm.meta.echoes import CLOCK_SKEW_MS, Echo, Lookup, Unsettled, fingerprint, look_up
from igdm.meta.instagram_login import LoginError, missing_fields
from igdm.runtime.observability import logger
from igdm.store.accounts import Account
from igdm.store.outbound_records import FAILED, UNKNOWN, OutboundRecord, UnsettledMarker
from igdm.store.rate_limits import CONVERSATIONS, Slot
from reconciler.conversations import Conversation, MessageDetail, MessageGone, MessageRef

DAY = 86_400.0
# A run that read everything leaves its watermark this long before it started, so the next one reads those
# minutes again: Meta's clock and ours differ, and a message may be written a moment after its conversation's
# updated_time was read. (A run cut short leaves Meta's own updated_time of the last conversation it finished,
# which needs no margin.) What is read twice is found stored and costs no event.
OVERLAP_SECONDS = 120.0
THROTTLE_PAUSE_SECONDS = 60.0
TIME_RESERVE_SECONDS = 20.0
# A customer message still without its webhook this long after it was sent, with no webhook at all for the
# account since, means Meta stopped sending them (a dropped subscription, most often): not one late webhook.
SILENCE_SECONDS = 600.0  # stop reading this long before the invocation's end: what was read is ingested
GAP_REASON = (
    "its webhook never came, and Instagram no longer gives its content: Meta keeps the details of a "
    "conversation's 20 most recent messages only (or the message was deleted)"
)
NEWEST_TRIED = 3  # messages tried, newest first, to learn a conversation's customer
# An UNKNOWN message is looked up once its echo had this long to come by webhook: most come within seconds,
# and Meta's conversation shows a message a moment after the Send API took it.
UNKNOWN_SETTLE_AFTER_SECONDS = 300.0
SECOND_MS = 999  # Graph's created_time is to the second: the message was stamped up to this much later


class Accounts(Protocol):
    def all(self) -> list[Account]: ...

    def record_reconciled(self, account_id: str, until: float, *, history_imported_at: float | None = None) -> None: ...


class Tokens(Protocol):
    def token(self, account: Account, *, fresh: bool = False) -> str: ...

    def mark_needs_reauthorisation(self, account_id: str, detail: str, *, while_doing: str = "sending") -> None: ...


class ConversationsApi(Protocol):
    def conversations(
        self, token: str, account_id: str, *, since: float, pace: Callable[[], None]
    ) -> Iterable[Conversation]: ...

    def messages(
        self, token: str, conversation_id: str, *, pace: Callable[[], None], since: float | None = None
    ) -> list[MessageRef]: ...

    def conversation_with(
        self, token: str, account_id: str, customer_id: str, *, pace: Callable[[], None]
    ) -> str | None: ...

    def message(self, token: str, message_id: str, *, pace: Callable[[], None]) -> MessageDetail: ...


class Subscriptions(Protocol):
    """The account's webhook subscription (igdm.meta.instagram_login.InstagramLogin)."""

    def subscribed_fields(self, token: str) -> set[str]: ...

    def subscribe(self, token: str, wanted: list[str]) -> tuple[list[str], list[str]]: ...


class UnknownSends(Protocol):
    """The outbound records of messages left UNKNOWN (igdm.store.outbound_records.OutboundRecords)."""

    def account_unsettled(self, account_id: str) -> list[UnsettledMarker]: ...

    def get(self, idempotency_key: str) -> OutboundRecord | None: ...

    def owners(self, message_ids: list[str]) -> dict[str, str]: ...

    def claim_echo(self, message_id: str, idempotency_key: str) -> bool: ...

    def remove_unsettled(self, account_id: str, customer_id: str, idempotency_key: str) -> None: ...

    def settle_by_echo(self, idempotency_key: str) -> OutboundRecord | None: ...

    def settle(
        self, idempotency_key: str, status: str, *, reason: str | None = None, detail: str | None = None
    ) -> OutboundRecord | None: ...

    def still_unknown(self, idempotency_key: str, reason: str, detail: str) -> OutboundRecord | None: ...


class Statuses(Protocol):
    def publish(self, record: OutboundRecord) -> Any: ...


class AccountEvents(Protocol):
    def publish(self, changes: list[AccountChange], *, now: float) -> list[AccountChange]: ...


class Limiter(Protocol):
    def acquire(self, account_id: str, rate_class: str, max_wait: float = 0.0) -> Slot: ...

    def pause(self, account_id: str, seconds: float) -> None: ...


class _Stop(Exception):
    """The run's call budget or time is spent: what was read is kept, the rest waits for the next run."""


@dataclass
class RunReport:
    accounts: int = 0
    conversations: int = 0
    messages_checked: int = 0
    backfilled: dict[str, int] = field(default_factory=dict)  # per account
    gaps: int = 0
    calls: int = 0
    errors: list[str] = field(default_factory=list)  # "<account>: <what>"
    silent: list[str] = field(default_factory=list)  # accounts whose webhooks stopped (webhooks_silent)
    resubscribed: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)  # accounts the budget or time cut short
    unknown_delivered: int = 0  # UNKNOWN messages found in their conversation
    unknown_failed: int = 0  # UNKNOWN messages whose conversation shows they never reached Instagram
    unknown_left: int = 0  # UNKNOWN messages a lookup could not tell about: tried again next run

    def summary(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "conversations": self.conversations,
            "messages_checked": self.messages_checked,
            "backfilled": sum(self.backfilled.values()),
            "gaps": self.gaps,
            "calls": self.calls,
            "errors": len(self.errors),
            "webhooks_silent": len(self.silent),
            "unfinished": len(self.unfinished),
            "unknown_settled": self.unknown_delivered + self.unknown_failed,
            "unknown_left": self.unknown_left,
        }


@dataclass
class Reconciler:
    accounts: Accounts
    tokens: Tokens
    graph: ConversationsApi
    limiter: Limiter
    store: EventStore
    publisher: EventPublisher
    receipts: Receipts | None
    subscriptions: Subscriptions | None = None
    events: AccountEvents | None = None
    webhook_fields: list[str] = field(default_factory=list)
    silence_seconds: float = SILENCE_SECONDS
    history_seconds: float = 30 * DAY
    calls_per_run: int = 2000
    unknown: UnknownSends | None = None
    statuses: Statuses | None = None
    unknown_settle_after_seconds: float = UNKNOWN_SETTLE_AFTER_SECONDS
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    remaining_seconds: Callable[[], float] = lambda: 840.0  # the handler sets the invocation's
    _report: RunReport = field(default_factory=RunReport, init=False)
    _missed: list[float] = field(default_factory=list, init=False)  # this account's backfilled customer messages
    _progressed: bool = field(default=False, init=False)  # this account's run finished a conversation past the mark

    def run(self) -> RunReport:
        self._report = RunReport()
        # The account read longest ago first: a run its budget or time cuts short leaves the rest with older
        # watermarks, so the next run starts with them and consecutive runs go round every account however many
        # there are. Accounts still importing their history go after those that are caught up: an import may
        # take many runs' budgets, and a message Meta failed to deliver today matters more than last month's.
        for account in sorted(self.accounts.all(), key=_reading_order):
            if not account.can_send:
                continue  # nothing can be read until someone logs in again (or connects it again)
            self._report.accounts += 1
            try:
                self._account(account)
            except _Stop:
                self._report.unfinished.append(account.account_id)
            except LoginError as error:
                self._refused(account, error)
            except Exception as exc:  # isolation: the next account is read whatever this one raised
                logger.exception("reconciling an account failed", extra={"account_id": account.account_id})
                self._report.errors.append(f"{account.account_id}: {type(exc).__name__}")
        return self._report

    # ------------------------------------------------------------------ one account

    def _account(self, account: Account) -> None:
        started = self.clock()
        since = self._since(account, started)
        token = self.tokens.token(account)
        pace = self._pacer(account.account_id)
        # Newest first from Meta; read oldest first, so the watermark can follow the conversations done.
        found = list(self.graph.conversations(token, account.account_id, since=since, pace=pace))
        done_until: float | None = None
        self._missed, self._progressed = [], False
        try:
            for conversation in sorted(found, key=lambda c: c.updated_at):
                self._conversation(account, token, conversation, since, pace)
                done_until = conversation.updated_at
                self._progressed = self._progressed or done_until > since
        except (_Stop, LoginError):
            if done_until is not None:
                self.accounts.record_reconciled(account.account_id, done_until)
            raise
        importing = account.history_imported_at is None
        self.accounts.record_reconciled(
            account.account_id, started - OVERLAP_SECONDS, history_imported_at=self.clock() if importing else None
        )
        if importing:
            self._history_imported(account, started)
        self._check_silence(account, token, started)
        self._progressed = True  # the watermark is stored: from here the run's budget stops it at once
        self._settle_unknown(account, token, pace)

    def _since(self, account: Account, now: float) -> float:
        """The watermark; for an account never reconciled, HistoryImportDays back: its first runs import the
        history (messages from before it was connected included), bounded by the budget, and resumable."""
        earliest = now - self.history_seconds
        return max(_epoch(account.reconciled_until) or earliest, earliest)

    def _history_imported(self, account: Account, now: float) -> None:
        """The account's first complete run: its history is in."""
        if self.events is None:
            return
        backfilled = self._report.backfilled.get(account.account_id, 0)
        change = AccountChange(
            account.account_id,
            account.status,
            "history_imported",
            reason="first_reconciliation",
            detail=f"conversations of the last {self.history_seconds / DAY:g} days read; {backfilled} messages "
            "published in the run that finished it (more may have come in the runs before, cut short)",
            username=account.username,
        )
        if self.events.publish([change], now=now):
            logger.error("account_status event not published", extra={"account_id": account.account_id})

    def _conversation(
        self, account: Account, token: str, conversation: Conversation, since: float, pace: Callable[[], None]
    ) -> None:
        self._report.conversations += 1
        refs = self.graph.messages(token, conversation.conversation_id, pace=pace)
        candidates = [r for r in refs if r.created_at >= since]
        if not candidates:
            return
        # Message ids alone do not name the customer, whose partition holds the conversation's events: the
        # newest message's details do (and are needed anyway when it is the one missing).
        newest = self._newest_readable(token, refs, pace)
        customer = _customer(account.account_id, newest) if newest else None
        self._report.messages_checked += len(candidates)
        keys = {
            r.message_id: (
                _key(account.account_id, customer, "message", r),
                _key(account.account_id, customer, "gap", r),
            )
            for r in candidates
        }
        # A tombstone is no stored event: the message is read as missing, and its ingestion publishes it without
        # its content (the customer deleted it before its webhook came).
        stored = self.store.find([key for pair in keys.values() for key in pair]).stored
        missing = [r for r in candidates if not {k.event_id for k in keys[r.message_id]} & stored]
        events: list[InboundEvent] = []
        for ref in sorted(missing, key=lambda r: r.created_at):
            try:
                detail = (
                    newest
                    if newest is not None and ref.message_id == newest.message_id
                    else self.graph.message(token, ref.message_id, pace=pace)
                )
            except MessageGone:
                events.append(_gap(account.account_id, customer, conversation, ref, self.clock()))
                continue
            events.append(self._backfill(account.account_id, detail))
        if events:
            result = self._ingest(events)
            self._missed.extend(e.occurred_at.timestamp() for e in events if e.user_initiated)
            self._report.gaps += sum(1 for e in events if e.kind == EventKind.GAP)
            backfilled = result.published - sum(1 for e in events if e.kind == EventKind.GAP)
            if backfilled:
                self._report.backfilled[account.account_id] = (
                    self._report.backfilled.get(account.account_id, 0) + backfilled
                )
                logger.info(
                    "messages backfilled",
                    extra={
                        "account_id": account.account_id,
                        "conversation": conversation.conversation_id,
                        "count": backfilled,
                    },
                )

    def _newest_readable(self, token: str, refs: list[MessageRef], pace: Callable[[], None]) -> MessageDetail | None:
        """The newest message Meta still gives details of: one the customer deleted has none."""
        for ref in refs[:NEWEST_TRIED]:
            try:
                return self.graph.message(token, ref.message_id, pace=pace)
            except MessageGone:
                continue
        return None  # its events then live under no customer, as the webhook's would without one

    def _backfill(self, account_id: str, detail: MessageDetail) -> InboundEvent:
        """The event the webhook would have made of this message, marked as found by the reconciler."""
        [event] = normalize(Envelope.model_validate(_as_webhook(account_id, detail)), int(self.clock() * 1000))
        return event.model_copy(update={"source": "backfill", "raw": detail.raw})

    def _ingest(self, events: Sequence[InboundEvent]) -> IngestResult:
        return ingest_events(list(events), int(self.clock() * 1000), self.store, self.publisher, self.receipts)

    # ------------------------------------------------------------------ silent webhooks

    def _check_silence(self, account: Account, token: str, now: float) -> None:
        """Customer messages the webhook never brought, sent long enough ago, with no webhook of the account
        since: Meta stopped sending them. Announced, and the subscription checked and restored at once."""
        # Only messages since the last webhook, and since the connection: before it, no webhook was due here.
        heard = max(_epoch(account.last_webhook_at) or 0.0, _epoch(account.connected_at) or 0.0)
        overdue = [t for t in self._missed if heard <= t < now - self.silence_seconds]  # Graph: to the second
        if not overdue or self.subscriptions is None or self.events is None:
            return
        self._report.silent.append(account.account_id)
        since = account.last_webhook_at or "the account was connected"
        changes = [
            AccountChange(
                account.account_id,
                account.status,
                "webhooks_silent",
                reason="messages_without_webhooks",
                detail=f"{len(overdue)} customer messages since {since} reached the gateway only through "
                "Instagram's Conversations API",
                username=account.username,
            )
        ]
        logger.warning("webhooks silent", extra={"account_id": account.account_id, "messages": len(overdue)})
        try:
            subscribed = self.subscriptions.subscribed_fields(token)
            missing = missing_fields(self.webhook_fields, subscribed)
            if missing:
                fields, _ = self.subscriptions.subscribe(token, self.webhook_fields)
                self._report.resubscribed.append(account.account_id)
                changes.append(
                    AccountChange(
                        account.account_id,
                        account.status,
                        "subscription_restored",
                        reason="fields_missing",
                        detail=f"Meta had dropped {', '.join(missing)}; subscribed again",
                        username=account.username,
                        missing_fields=missing,
                        subscribed_fields=fields,
                    )
                )
        except LoginError as error:
            self._report.errors.append(f"{account.account_id}: checking the subscription, Meta answered {error.code}")
        if self.events.publish(changes, now=now):
            logger.error("account_status event not published", extra={"account_id": account.account_id})

    # ------------------------------------------------------------------ UNKNOWN sends

    def _settle_unknown(self, account: Account, token: str, pace: Callable[[], None]) -> None:
        """The account's messages left UNKNOWN that no echo settled in time, looked up in their conversation:
        DELIVERED with Meta's mid when it is there, FAILED (not_delivered) when it shows they never reached
        Instagram, never resent; when it cannot tell, they stay UNKNOWN with the reason until the next run."""
        if self.unknown is None:
            return
        waiting = self.unknown.account_unsettled(account.account_id)
        due_before_ms = (self.clock() - self.unknown_settle_after_seconds) * 1000
        for marker in waiting:
            if marker.unsettled.ended_ms <= due_before_ms:
                conversation = [w.unsettled for w in waiting if w.customer_id == marker.customer_id]
                self._look_up(self.unknown, account, token, marker, conversation, pace)

    def _look_up(
        self,
        unknown: UnknownSends,
        account: Account,
        token: str,
        marker: UnsettledMarker,
        conversation: list[Unsettled],
        pace: Callable[[], None],
    ) -> None:
        attempt, customer = marker.unsettled, marker.customer_id
        key = attempt.idempotency_key
        record = unknown.get(key)
        if record is None or record.status != UNKNOWN:
            # Expired; or settled by a run that stopped before its status was published and its markers
            # removed (every other path removes them first): published again, the same event, which the
            # queue and consumers drop if it had gone out.
            if record is not None and self.statuses is not None:
                self.statuses.publish(record)
            unknown.remove_unsettled(account.account_id, customer, key)
            return
        sent, gone = self._sent_during(account.account_id, customer, attempt, token, pace)
        owners = unknown.owners([e.message_id for e in sent]) if sent else {}
        sent = [e for e in sent if owners.get(e.message_id) in (None, key)]  # another send's is not this one
        if gone:
            lookup = Lookup(
                undecided=f"{gone} message(s) of the conversation from the time of its attempt are beyond the 20 "
                "most recent, whose content Meta gives"
            )
        else:
            lookup = look_up(attempt, sent, conversation)
        if lookup.found is not None and not unknown.claim_echo(lookup.found.message_id, key):
            lookup = Lookup(undecided="the message that matches it was claimed by another send meanwhile")
        if lookup.undecided is not None:
            self._report.unknown_left += 1
            reason = "beyond_recent_messages" if gone else "lookup_ambiguous"
            unknown.still_unknown(key, reason, f"looked up in its conversation: {lookup.undecided}")
            logger.warning(
                "an UNKNOWN message stays UNKNOWN",
                extra={"account_id": account.account_id, "idempotency_key": key, "reason": lookup.undecided},
            )
            return
        if lookup.found is not None:
            settled = unknown.settle_by_echo(key)
        else:
            settled = unknown.settle(key, FAILED, reason="not_delivered", detail=_not_delivered(record))
        if settled is not None:  # None: its echo settled it while this run looked, and published that
            self._settled(account.account_id, settled)
        unknown.remove_unsettled(account.account_id, customer, key)  # last: a run cut short publishes again

    def _sent_during(
        self, account_id: str, customer: str, attempt: Unsettled, token: str, pace: Callable[[], None]
    ) -> tuple[list[Echo], int]:
        """The messages the account sent to ``customer`` around ``attempt``, as Instagram's conversation shows
        them; and how many of that time Meta no longer gives the content of."""
        earliest = (attempt.started_ms - CLOCK_SKEW_MS - SECOND_MS) / 1000
        thread = self.graph.conversation_with(token, account_id, customer, pace=pace)
        refs = self.graph.messages(token, thread, pace=pace, since=earliest) if thread else []
        sent: list[Echo] = []
        gone = 0
        for ref in refs:
            if not earliest <= ref.created_at <= attempt.ended_ms / 1000:
                continue
            try:
                detail = self.graph.message(token, ref.message_id, pace=pace)
            except MessageGone:
                gone += 1
                continue
            if detail.sender_id == account_id:
                kind = detail.attachments[0][0] if detail.attachments else None
                created_ms = int(detail.created_at * 1000)
                sent.append(Echo(detail.message_id, fingerprint(detail.text, kind), None, created_ms, SECOND_MS))
        return sent, gone

    def _settled(self, account_id: str, settled: OutboundRecord) -> None:
        if settled.status == FAILED and settled.reason == "not_delivered":
            self._report.unknown_failed += 1
        else:
            self._report.unknown_delivered += 1
        logger.info(
            "an UNKNOWN message settled",
            extra={"account_id": account_id, "idempotency_key": settled.idempotency_key, "status": settled.status},
        )
        if self.statuses is not None:
            self.statuses.publish(settled)

    # ------------------------------------------------------------------ Meta's limits

    def _pacer(self, account_id: str) -> Callable[[], None]:
        def pace() -> None:
            # A run always gets past its watermark before its budget stops it: the conversations at the
            # watermark itself are read again (their updated_time is only to the second), and a budget spent
            # on those alone would stop every run at the same place.
            if self._report.calls >= self.calls_per_run and self._progressed:
                raise _Stop("the run's call budget is spent")
            if self.remaining_seconds() < TIME_RESERVE_SECONDS:
                raise _Stop("the invocation's time is nearly up")
            while True:
                slot = self.limiter.acquire(account_id, CONVERSATIONS, max_wait=1.0)
                if slot.wait > 0:
                    self.sleep(slot.wait)
                if slot.reserved:
                    break
            self._report.calls += 1

        return pace

    def _refused(self, account: Account, error: LoginError) -> None:
        if error.token_dead:
            self.tokens.mark_needs_reauthorisation(
                account.account_id, error.detail, while_doing="reading its conversations"
            )
        elif error.transient and error.code is not None:
            self.limiter.pause(account.account_id, THROTTLE_PAUSE_SECONDS)  # throttled: every caller waits
        logger.warning(
            "Meta refused a Conversations API call",
            extra={"account_id": account.account_id, "code": error.code, "detail": error.detail[:300]},
        )
        self._report.errors.append(f"{account.account_id}: Meta answered {error.code or error.http_status}")


def _not_delivered(record: OutboundRecord) -> str:
    shown = (
        "Instagram's conversation with the customer shows no message of the account with its content from "
        "the time of its attempt"
    )
    if record.parts_sent:
        return (
            f"{shown}: part {record.parts_sent + 1} of {record.parts_total} never reached Instagram (parts 1 to "
            f"{record.parts_sent} did); nothing was sent again"
        )
    return f"{shown}: it never reached Instagram, and it was not sent again"


def _key(account_id: str, customer_id: str | None, prefix: str, ref: MessageRef) -> EventKey:
    return EventKey(account_id, customer_id, event_id(account_id, f"{prefix}|{ref.message_id}"))


def _customer(account_id: str, detail: MessageDetail) -> str | None:
    """The conversation's other side: the sender, or when the account sent it, its recipient."""
    if detail.sender_id != account_id:
        return detail.sender_id
    return next((r for r in detail.recipient_ids if r != account_id), None)


def _as_webhook(account_id: str, detail: MessageDetail) -> dict[str, Any]:
    """The message as Meta's webhook would have carried it (fact sheet §4.1): the same item normalises to
    the same event, id included. A message the account sent comes back as its echo."""
    message: dict[str, Any] = {"mid": detail.message_id}
    if detail.text is not None:
        message["text"] = detail.text
    if detail.attachments:
        message["attachments"] = [{"type": kind, "payload": {"url": url}} for kind, url in detail.attachments]
    outbound = detail.sender_id == account_id
    if outbound:
        message["is_echo"] = True
    recipient = next((r for r in detail.recipient_ids if r != detail.sender_id), account_id)
    item = {
        "sender": {"id": detail.sender_id},
        "recipient": {"id": recipient},
        "timestamp": int(detail.created_at * 1000),
        "message": message,
    }
    return {
        "object": "instagram",
        "entry": [{"id": account_id, "time": int(detail.created_at * 1000), "messaging": [item]}],
    }


def _gap(
    account_id: str, customer_id: str | None, conversation: Conversation, ref: MessageRef, now: float
) -> InboundEvent:
    return InboundEvent(
        event_id=event_id(account_id, f"gap|{ref.message_id}"),
        kind=EventKind.GAP,
        account_id=account_id,
        customer_id=customer_id,
        conversation_id=conversation_id(account_id, customer_id),
        direction="inbound",
        source="backfill",
        user_initiated=False,
        occurred_at=datetime.fromtimestamp(ref.created_at, UTC),
        received_at=datetime.fromtimestamp(now, UTC),
        message_id=ref.message_id,
        error=GAP_REASON,
        raw={
            "conversation_id": conversation.conversation_id,
            "id": ref.message_id,
            "created_time": int(ref.created_at),
        },
    )


def _epoch(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


def _reading_order(account: Account) -> tuple[bool, str]:
    return account.history_imported_at is None, account.reconciled_until or ""

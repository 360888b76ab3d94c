"""What the sender does with one outbound message, from the queue's body to its final status.

  validate -> account -> window policy -> for each part still to send: reserve a rate slot, mark in
  flight (the never-twice guard), wait for the slot, call Meta, record the answer -> publish each status
  change.

On a first receive, a message's record is written once its checks are done: right before its first part goes
out (created with that part in flight, one write), or when it ends or is handed back to the queue first. A
receive after the first reads it first, by claiming it, since it decides everything (sent already, half
sent, in flight when an attempt died).

Retry decisions are returned as `Retry` (the handler hides the message for the delay, and SQS
redelivers it after); everything that can never succeed ends FAILED with its reason at once.
"""

import hashlib
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from pydantic import ValidationError

from igdm.contracts.callbacks import url_refusal
from igdm.contracts.dialects import DIALECTS
from igdm.contracts.events import Handover, InboundEvent
from igdm.contracts.handover import gateway_handover_event
from igdm.contracts.outbound import (
    ID_PATTERN,
    IDEMPOTENCY_KEY_PATTERN,
    INSTAGRAM_INBOX_APP_ID,
    THREAD_CONTROL_KINDS,
    OutboundMessage,
    ThreadControl,
    validation_reason,
)
from igdm.meta.echoes import CLOCK_SKEW_MS, Echo, Unsettled, fingerprint, settles
from igdm.runtime.fifo_consumer import QueuedMessage, Retry
from igdm.runtime.observability import logger
from igdm.runtime.unicode import without_lone_surrogates
from igdm.store import outbound_records as st
from igdm.store.account_directory import AccountUnavailable
from igdm.store.accounts import DISCONNECTED, Account
from igdm.store.comments import PRIVATE_REPLY_DAYS, CommentItem
from igdm.store.conversation_state import GATEWAY_OWNER, ConversationView
from igdm.store.outbound_records import OutboundRecord
from igdm.store.rate_limits import ON_TIME_SECONDS, Slot
from sender import errors
from sender.errors import ErrorClass
from sender.graph import Accepted, Ambiguous, NotSent, Outcome, Refused, regain_seconds
from sender.graph_requests import GraphSend, build_requests, without_marker
from sender.policy import decide

INLINE_WAIT_LIMIT = 1.0  # wait this long for a rate slot inside the invocation; longer, hand back to SQS
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 300.0
MAX_SEND_ATTEMPTS = 10  # failed requests to Meta before a message ends FAILED retries_exhausted
THROTTLE_PAUSE_SECONDS = 60.0  # when Meta throttles without saying for how long
# A paused account's messages look again after 1 minute, doubling to at most 15: a resume takes effect
# within that (plus the account cache's minute), and OutboundMaxReceiveCount (50) receives cover ~11 hours.
PAUSED_RECHECK_SECONDS = 60.0
PAUSED_RECHECK_CAP_SECONDS = 900.0
# When an attempt that died with its part in flight started, if its record does not say: the visibility
# timeout (180 s) before a crashed attempt's redelivery, with room to spare.
ECHO_LOOKBACK_SECONDS = 600.0


class Records(Protocol):
    """The outbound messages' records (igdm.store.outbound_records.OutboundRecords): each method's
    condition is what makes a message go out at most once."""

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
        """The message's record, PENDING; with ``inflight_at``, its first part already in flight since then: the
        claim and begin_part in one write (OutboundRecords.claim says why a crash is still safe)."""
        ...

    def get(self, idempotency_key: str) -> OutboundRecord | None: ...

    def begin_part(self, idempotency_key: str, part: int) -> bool: ...

    def part_sent(
        self, idempotency_key: str, part: int, message_id: str | None, last: bool
    ) -> OutboundRecord | None: ...

    def part_sent_linked(self, record: OutboundRecord, part: int, message_id: str, last: bool) -> OutboundRecord | None:
        """part_sent and link_message_id in one request, while nothing is recorded of the mid; None when it did
        not apply, and the two steps are taken (OutboundRecords.part_sent_linked)."""
        ...

    def part_not_sent(self, idempotency_key: str, part: int) -> int: ...

    def part_released(self, idempotency_key: str, part: int) -> None: ...

    def settle(
        self,
        idempotency_key: str,
        status: str,
        *,
        reason: str | None = None,
        detail: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> OutboundRecord | None: ...

    def settle_by_echo(self, idempotency_key: str) -> OutboundRecord | None: ...

    def link_message_id(self, message_id: str, record: OutboundRecord) -> dict[str, Any]: ...

    def add_unsettled(self, record: OutboundRecord, waiting: Unsettled) -> None: ...

    def unsettled(self, account_id: str, customer_id: str) -> list[Unsettled]: ...

    def stored_echoes(self, account_id: str, customer_id: str, since_ms: int) -> list[Echo]: ...

    def claim_echo(self, message_id: str, idempotency_key: str) -> bool: ...

    def remove_unsettled(self, account_id: str, customer_id: str, idempotency_key: str) -> None: ...


class Accounts(Protocol):
    def resolve(self, account_id: str | None) -> Account: ...

    def token(self, account: Account, *, fresh: bool = False) -> str: ...

    def mark_needs_reauthorisation(self, account_id: str, detail: str) -> None: ...


class Graph(Protocol):
    def send(self, token: str, body: dict[str, Any], endpoint: str = "messages") -> Outcome: ...


class Limiter(Protocol):
    def acquire(self, account_id: str, rate_class: str, max_wait: float = 0.0) -> Slot: ...

    def pause(self, account_id: str, seconds: float) -> None: ...


class Statuses(Protocol):
    def publish(self, record: OutboundRecord) -> Any: ...

    def publish_event(self, event: InboundEvent) -> None: ...


class Conversations(Protocol):
    def view(self, account_id: str, customer_id: str) -> ConversationView: ...

    def record_owner(self, account_id: str, customer_id: str, owner: str | None, at_ms: int) -> bool: ...


class Comments(Protocol):
    """The customers' comments private replies answer (igdm.store.comments.Comments)."""

    def get(self, account_id: str, comment_id: str) -> CommentItem | None: ...

    def mark_replied(self, account_id: str, comment_id: str, idempotency_key: str) -> bool: ...


class Metrics(Protocol):
    def count(self, name: str, value: int = 1, **dimensions: str) -> None: ...


@dataclass
class Sender:
    records: Records
    accounts: Accounts
    graph: Graph
    limiter: Limiter
    statuses: Statuses
    conversations: Conversations
    metrics: Metrics
    comments: Comments | None = None  # None: private replies are not checked against their comment
    max_receive_count: int = 10  # the queue's: the last receive before SQS moves a message to the DLQ
    max_attempts: int = MAX_SEND_ATTEMPTS
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    remaining_seconds: Callable[[], float] = lambda: 30.0
    allow_local_callbacks: bool = False  # the local stack's http and 127.0.0.1 callback receivers
    # Meta's metadata field marks each message for its echo (igdm.meta.echoes); off for the rest of this container's
    # life once Meta refuses the field, and echoes are then matched by app id and content.
    echo_markers: bool = True
    # The records' writes that merge two steps into one request (the wiring passes its OutboundRecords as both);
    # None: each step is a request of its own, for a Records that has only those.

    def handle(self, message: QueuedMessage) -> str:
        self.remaining_seconds = message.remaining_seconds
        if message.dialect is not None:
            return self._vendor_body(message)
        return self.process(message.body, sqs_message_id=message.message_id, receive_count=message.receive_count)

    def _vendor_body(self, queued: QueuedMessage) -> str:
        """A body in a seed vendor's format (the queue's dialect attribute): translated into outbound messages
        keyed by the SQS message id (a redelivery finds them done), each processed in order. One the translation
        refuses ends FAILED invalid_message with the vendor's field named, as an invalid message of ours does."""
        from igdm.contracts.dialects import DialectError, dialect

        key = f"{queued.dialect}-{queued.message_id}"
        try:
            if queued.dialect not in DIALECTS:
                raise DialectError(f"the dialect attribute is one of {', '.join(DIALECTS)}, not {queued.dialect!r}")
            messages = dialect(queued.dialect).messages(json.loads(queued.body), key)
        except (DialectError, ValueError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, DialectError) else "body is not JSON"
            problem = f"{queued.dialect} body: {reason}"
            return self._invalid(queued.body, {"idempotency_key": key}, problem, queued.message_id)
        outcomes = [
            self.process(json.dumps(m), sqs_message_id=queued.message_id, receive_count=queued.receive_count)
            for m in messages
        ]
        return ", ".join(outcomes)

    def backoff_seconds(self, receive_count: int) -> float:
        """After an unexpected failure (DynamoDB, SQS or Secrets Manager unavailable): as after Meta's."""
        return backoff_seconds(receive_count)

    def process(self, body: str, *, sqs_message_id: str, receive_count: int) -> str:
        """Handle one queue message; returns the status it ended in (for logs), or raises Retry."""
        message, problem, raw = _parse(body)
        if message is not None and message.callback_url is not None:
            refusal = url_refusal(message.callback_url, allow_local=self.allow_local_callbacks)
            if refusal is not None:
                message, problem = None, f"callback_url: {refusal}"
        if message is None:
            return self._invalid(body, raw, problem or "invalid message", sqs_message_id)
        try:
            account = self.accounts.resolve(message.account_id)
        except AccountUnavailable as exc:
            return self._fail_unclaimed(message, message.account_id, exc.reason, exc.detail)
        sends = build_requests(message, human_agent_tag=False, markers=self.echo_markers)
        draft = _Unclaimed(
            idempotency_key=message.idempotency_key,
            status=st.PENDING,
            account_id=account.account_id,
            customer_id=message.recipient.id,
            kind=message.kind,
            payload_hash=_payload_hash(message),
            parts_total=len(sends),
            parts_sent=0,
            inflight_part=None,
            correlation_id=message.correlation_id,
            callback_url=message.callback_url,
            callback_data=message.callback_data,
            dialect=message.dialect,
        )
        if receive_count > 1:  # received before: its record most likely exists, and it decides what happens now
            return self._from_record(*self._claim(draft), message, account, receive_count)
        try:
            return self._proceed(draft, message, account, receive_count)
        except _ClaimedBefore as claimed:  # the key was taken before all the same: go on as a later receive does
            return self._from_record(claimed.record, False, message, account, receive_count)

    def _from_record(
        self, record: OutboundRecord, created: bool, message: OutboundMessage, account: Account, receive_count: int
    ) -> str:
        """The message with its record, the one this receive created or one that existed: go on from it."""
        if not created:
            resumed = self._resume(record, message)
            if resumed is not None:
                # Again: the attempt that sent it may have died before recording what it changes.
                self._after_sending(message, record, resumed)
                return resumed
        return self._proceed(record, message, account, receive_count)

    def _proceed(self, record: OutboundRecord, message: OutboundMessage, account: Account, receive_count: int) -> str:
        """A PENDING message of this stack (its record, or on a first receive the record it will have): the
        checks before any call (validity, account, window, who answers the conversation), then its parts."""
        expired = _expiry(message, self.clock())
        if expired is not None:
            return self._settle(record, st.FAILED, "expired", expired)
        if account.paused_at is not None:
            return self._held(record, account, message, receive_count)
        if account.status == DISCONNECTED:
            detail = f"account {account.account_id} was removed from the app by its owner; nothing was sent"
            return self._settle(record, st.FAILED, "account_disconnected", detail)
        if not account.can_send:
            return self._settle(
                record,
                st.FAILED,
                "token_invalid",
                f"account {account.account_id} needs re-authorisation; nothing was sent",
            )
        refusal = self._private_reply_refusal(message, account, record)
        if refusal is not None:
            return self._settle(record, st.FAILED, *refusal)
        view = self._view(message, account)
        decision = decide(message, view.last_user_message_at, int(self.clock() * 1000))
        if not decision.allowed:
            return self._settle(record, st.FAILED, decision.reason, decision.detail)
        owner = _other_owner(view, message)
        if owner is not None and record.parts_sent == 0:  # a message half sent goes on: its first part went
            if not message.take_control:
                return self._settle(record, st.FAILED, "thread_owned_by_inbox", _owned_detail(owner))
            # Taking the conversation from a person changes it: only for a message whose record this receive
            # holds, never for a repeat of a message its first sending took the conversation for already.
            record = self._written(record)
            ended = self._take_control(record, account, message, receive_count, owner)
            if ended is not None:
                return ended
        sends = build_requests(message, human_agent_tag=decision.human_agent_tag, markers=self.echo_markers)
        status = self._send_parts(record, account, sends, receive_count, _epoch_ms_of(message.valid_until))
        self._after_sending(message, record, status)
        return status

    def _after_sending(self, message: OutboundMessage, record: OutboundRecord, status: str) -> None:
        """What a message that went (or may have) changes: a conversation's owner, a comment's one reply."""
        if status == st.SENT and message.kind in THREAD_CONTROL_KINDS:
            current = self.records.get(record.idempotency_key)
            self._handed_over(message, current or record)
        if status in (st.SENT, st.DELIVERED, st.READ, st.UNKNOWN):  # UNKNOWN: it may have gone
            self._replied(message, record)

    # ------------------------------------------------------------------ private replies

    def _private_reply_refusal(
        self, message: OutboundMessage, account: Account, record: OutboundRecord
    ) -> tuple[str, str] | None:
        """Meta's rules for a private reply, before the call: only to a comment (the gateway must have seen
        it), within 7 days of it, and once per comment. A reason and detail, or None when it may go."""
        comment_id = message.recipient.comment_id
        if comment_id is None or self.comments is None or record.parts_sent:
            return None
        comment = self.comments.get(account.account_id, comment_id)
        if comment is None:
            return "comment_unknown", (
                f"no comment {comment_id} of account {account.account_id} reached the gateway in the last "
                f"{PRIVATE_REPLY_DAYS} days: Meta allows a private reply only to a comment, within "
                f"{PRIVATE_REPLY_DAYS} days of it; nothing was sent"
            )
        age_days = (self.clock() * 1000 - comment.occurred_at_ms) / 86_400_000
        if age_days > PRIVATE_REPLY_DAYS:
            return "private_reply_window_closed", (
                f"the comment is {age_days:.1f} days old: Meta allows a private reply within "
                f"{PRIVATE_REPLY_DAYS} days of a comment; nothing was sent"
            )
        if comment.replied_by not in (None, record.idempotency_key):
            return "private_reply_already_sent", (
                f"message {comment.replied_by} already replied privately to this comment: Meta allows one "
                "private reply per comment; nothing was sent"
            )
        return None

    def _replied(self, message: OutboundMessage, record: OutboundRecord) -> None:
        comment_id = message.recipient.comment_id
        if comment_id is not None and self.comments is not None and record.account_id is not None:
            self.comments.mark_replied(record.account_id, comment_id, record.idempotency_key)

    # ------------------------------------------------------------------ steps

    def _claim(self, draft: OutboundRecord, inflight_at: str | None = None) -> tuple[OutboundRecord, bool]:
        """Write the message's record (PENDING), with its first part in flight since ``inflight_at`` when given
        and the records can in the same write; or find the one that exists. True when this call wrote it."""
        fields: dict[str, Any] = {
            "idempotency_key": draft.idempotency_key,
            "payload_hash": draft.payload_hash,
            "kind": draft.kind,
            "account_id": draft.account_id,
            "customer_id": draft.customer_id,
            "parts_total": draft.parts_total,
            "correlation_id": draft.correlation_id,
            "callback_url": draft.callback_url,
            "callback_data": draft.callback_data,
            "dialect": draft.dialect,
        }
        return self.records.claim(**fields, inflight_at=inflight_at)

    def _written(self, record: OutboundRecord, inflight_at: str | None = None) -> OutboundRecord:
        """The record as stored: a first receive's is written now (_claim); one that existed already means the
        key was taken before this receive, which then goes on as a later receive does (_ClaimedBefore)."""
        if not isinstance(record, _Unclaimed):
            return record
        written, created = self._claim(record, inflight_at)
        if not created:
            raise _ClaimedBefore(written)
        return written

    def _seen_before(self, record: OutboundRecord, payload_hash: str) -> str | None:
        """A record that existed before this receive: None when it is this message's and still PENDING
        (go on); else the outcome, leaving a record that belongs to another message untouched."""
        if record.payload_hash != payload_hash:
            self.metrics.count("IdempotencyConflicts")
            logger.error(
                "idempotency key reused for a different message; the new one is dropped",
                extra={"idempotency_key": record.idempotency_key, "status": record.status},
            )
            return "CONFLICT"
        if record.status != st.PENDING:
            # Redelivered after it was settled; the status event may not have gone out before a crash.
            self.statuses.publish(record)
            self.metrics.count("DuplicatesSuppressed")
            return record.status
        return None

    def _resume(self, record: OutboundRecord, message: OutboundMessage) -> str | None:
        """A message seen before: go on from where it stopped, or only republish its status."""
        seen = self._seen_before(record, _payload_hash(message))
        if seen is not None:
            return seen
        if record.inflight_part is not None:
            # An earlier attempt died while its request was out: Meta may have the message already.
            self.metrics.count("AmbiguousSends")
            sends = build_requests(message, human_agent_tag=False, markers=self.echo_markers)
            started = _epoch_ms(record.inflight_at) if record.inflight_at else None
            return self._unknown(
                record,
                f"an earlier attempt stopped while part {record.inflight_part + 1} "
                "was being sent; it is not sent again",
                send=sends[record.inflight_part] if record.inflight_part < len(sends) else None,
                started_ms=started,
            )
        return None

    def _view(self, message: OutboundMessage, account: Account) -> ConversationView:
        if message.recipient.id is None:  # a private reply: the comment's rules, no conversation yet
            return ConversationView(None, None)
        return self.conversations.view(account.account_id, message.recipient.id)

    def _held(self, record: OutboundRecord, account: Account, message: OutboundMessage, receive_count: int) -> str:
        """The account is paused: the message waits (hidden on the queue, its conversation's later messages
        behind it), unless its validity passes first (expired) or the queue would let it go (account_paused)."""
        since = f"account {account.account_id} is paused (since {account.paused_at})"
        if receive_count >= self.max_receive_count:
            detail = f"{since}; the message waited {receive_count} receives, as long as the queue keeps it, unsent"
            return self._settle(record, st.FAILED, "account_paused", detail)
        delay = min(PAUSED_RECHECK_CAP_SECONDS, PAUSED_RECHECK_SECONDS * 2 ** max(receive_count - 1, 0))
        valid_until_ms = _epoch_ms_of(message.valid_until)
        if valid_until_ms is not None and (self.clock() + delay) * 1000 >= valid_until_ms:
            return self._settle(
                record, st.FAILED, "expired", f"{since} past the message's valid_until; nothing was sent"
            )
        self.metrics.count("MessagesHeld", reason="account_paused")
        self._written(record)  # it waits PENDING, as GET /v1/messages shows it
        raise Retry(delay, since)

    # ------------------------------------------------------------------ handover

    def _take_control(
        self, record: OutboundRecord, account: Account, message: OutboundMessage, receive_count: int, owner: str
    ) -> str | None:
        """Take the conversation back from ``owner`` before the message (take_control): None to go on, or
        the status the message ended in. Taking control twice is harmless (the gateway then owns it), so an
        unclear answer is simply tried again; the message itself is only sent after a clear success."""
        customer = message.recipient.id or ""
        valid_until_ms = _epoch_ms_of(message.valid_until)
        try:
            slot = self._reserve(account.account_id, "text", valid_until_ms)
            self._go_at(slot, account.account_id, "text", valid_until_ms)
        except Retry as wait:
            return self._retry_or_fail(
                record, receive_count, record.refusals, wait.reason, delay=wait.delay, valid_until_ms=valid_until_ms
            )
        token = self.accounts.token(account)
        outcome = self.graph.send(token, {"recipient": {"id": customer}}, "take_thread_control")
        if isinstance(outcome, Accepted):
            at = int(self.clock() * 1000)
            self.conversations.record_owner(account.account_id, customer, GATEWAY_OWNER, at)
            handover = Handover(type="take_thread_control", previous_owner_app_id=owner)
            self._publish_handover(f"{record.idempotency_key}|take", account.account_id, customer, handover, at)
            return None
        if isinstance(outcome, Refused):
            error, error_class = outcome.error, errors.classify(outcome.error)
            if error_class is ErrorClass.AUTH:
                self.accounts.mark_needs_reauthorisation(account.account_id, error.message or "code 190")
                detail = "Meta rejected the account's token (190) when taking the conversation back; nothing was sent"
                return self._settle(record, st.FAILED, "token_invalid", detail, error.as_dict())
            if error_class not in (ErrorClass.THROTTLED, ErrorClass.TRANSIENT, ErrorClass.TRANSIENT_LIMITED):
                detail = (
                    f"app {owner} answers this conversation and Meta refused to give it back "
                    f"({error.message or error.code}); the message was not sent"
                )
                return self._settle(record, st.FAILED, "thread_owned_by_inbox", detail, error.as_dict())
        # Counted in receives: a take that failed is not a part of the message (its record counts no refusal).
        detail = f"taking the conversation back from app {owner} did not succeed yet"
        return self._retry_or_fail(record, receive_count, receive_count, detail, valid_until_ms=valid_until_ms)

    def _handed_over(self, message: OutboundMessage, record: OutboundRecord) -> None:
        """The gateway's own thread-control call succeeded: the conversation's new owner is recorded and a
        handover event published (Meta sends none to the app that made the call). A request changes nothing
        until the owner passes the conversation."""
        control = message.message
        if not isinstance(control, ThreadControl) or message.recipient.id is None or record.account_id is None:
            return
        at = _epoch_ms(record.sent_at) if record.sent_at else None
        at = at if at is not None else int(self.clock() * 1000)
        customer = message.recipient.id
        if control.type == "pass_thread_control":
            owner: str | None = control.target_app_id or INSTAGRAM_INBOX_APP_ID
            handover = Handover(type=control.type, new_owner_app_id=owner, metadata=control.metadata)
        elif control.type == "take_thread_control":
            owner, handover = GATEWAY_OWNER, Handover(type=control.type, metadata=control.metadata)
        elif control.type == "release_thread_control":
            owner, handover = None, Handover(type=control.type, metadata=control.metadata)
        else:
            return
        self.conversations.record_owner(record.account_id, customer, owner, at)
        self._publish_handover(record.idempotency_key, record.account_id, customer, handover, at)

    def _publish_handover(self, made_by: str, account_id: str, customer: str, handover: Handover, at_ms: int) -> None:
        occurred = datetime.fromtimestamp(at_ms / 1000, UTC)
        event = gateway_handover_event(
            made_by=made_by, account_id=account_id, customer_id=customer, handover=handover, occurred_at=occurred
        )
        self.statuses.publish_event(event)
        self.metrics.count("Handovers", type=handover.type)

    def _send_parts(
        self,
        record: OutboundRecord,
        account: Account,
        sends: list[GraphSend],
        receive_count: int,
        valid_until_ms: int | None = None,
    ) -> str:
        attempt = _Attempt(record, account, sends, receive_count, part=record.parts_sent, valid_until_ms=valid_until_ms)
        while attempt.part < len(attempt.sends):
            ended = self._send_part(attempt)
            if ended is not None:
                return ended
        return self._sent(attempt.record, {})

    def _send_part(self, attempt: "_Attempt") -> str | None:
        """Send the attempt's next part; the status the message ended in, or None to go on."""
        send = attempt.sends[attempt.part]
        # The token first: a part is marked in flight only when nothing but its slot and the call itself can fail
        # (a part found in flight later is taken as possibly sent, so one that never left is released).
        token = self.accounts.token(attempt.account, fresh=attempt.token_refetched)
        try:
            slot = self._reserve(attempt.account.account_id, send.rate_class, attempt.valid_until_ms)
        except Retry as wait:  # nothing was sent; on the last receive it must still end with a status
            return self._no_slot(attempt, wait)
        if attempt.valid_until_ms is not None and self.clock() * 1000 >= attempt.valid_until_ms:
            return self._settle(attempt.record, st.FAILED, "expired", _expired_detail(attempt.record))
        self._mark_in_flight(attempt)
        try:
            self._go_at(slot, attempt.account.account_id, send.rate_class, attempt.valid_until_ms)
        except Retry as wait:  # the part never left: no longer in flight, so a later receive sends it
            self.records.part_released(attempt.record.idempotency_key, attempt.part)
            return self._no_slot(attempt, wait)
        except Exception:  # the rate item failed on a new slot (RateStateUnavailable): the part never left either
            self.records.part_released(attempt.record.idempotency_key, attempt.part)
            raise
        if attempt.valid_until_ms is not None and self.clock() * 1000 >= attempt.valid_until_ms:
            self.records.part_released(attempt.record.idempotency_key, attempt.part)  # its validity ran out awaiting it
            return self._settle(attempt.record, st.FAILED, "expired", _expired_detail(attempt.record))
        started_ms = int(self.clock() * 1000)
        outcome = self.graph.send(token, send.body, send.endpoint)
        if isinstance(outcome, Accepted):
            return self._accepted(attempt, outcome)
        if isinstance(outcome, Ambiguous):
            self.metrics.count("AmbiguousSends")
            detail = (
                f"Meta's answer never came ({outcome.detail}); whether part {attempt.part + 1} was delivered is "
                "settled by its echo, not by a resend"
            )
            return self._unknown(attempt.record, detail, send=send, started_ms=started_ms)
        if isinstance(outcome, NotSent):
            refusals = self.records.part_not_sent(attempt.record.idempotency_key, attempt.part)
            return self._retry_or_fail(
                attempt.record,
                attempt.receive_count,
                refusals,
                f"Meta unreachable: {outcome.detail}",
                valid_until_ms=attempt.valid_until_ms,
            )
        if not isinstance(outcome, Refused):  # the last of the four Outcome kinds (sender.graph)
            raise TypeError(f"unexpected send outcome {type(outcome).__name__}")
        return self._refused(attempt, outcome, started_ms)

    def _no_slot(self, attempt: "_Attempt", wait: Retry) -> str:
        """No rate slot for the part this receive: it comes back when one is free (nothing was sent, so the
        message's refusals stay as they are), or ends with a status on its last receive."""
        return self._retry_or_fail(
            attempt.record,
            attempt.receive_count,
            attempt.record.refusals,
            wait.reason,
            delay=wait.delay,
            valid_until_ms=attempt.valid_until_ms,
        )

    def _mark_in_flight(self, attempt: "_Attempt") -> None:
        """The write that marks the part in flight before its request goes out: a part found in flight later is
        taken as possibly sent, so only its rate slot is awaited after it, and a part that does not leave after all
        is released (OutboundRecords.part_released). On a first receive it is the record's creation, its first part
        in flight in the same write (see OutboundRecords.claim for why a crash on either side of it is safe)."""
        marked = False
        if isinstance(attempt.record, _Unclaimed):
            now = datetime.fromtimestamp(self.clock(), UTC).isoformat()
            attempt.record = self._written(attempt.record, inflight_at=now)
            marked = attempt.record.inflight_part == attempt.part
        if not marked and not self.records.begin_part(attempt.record.idempotency_key, attempt.part):
            raise Retry(1.0, "the record changed under this attempt")

    def _accepted(self, attempt: "_Attempt", outcome: Accepted) -> str | None:
        last = attempt.part == len(attempt.sends) - 1
        updated, receipts = self._record_sent(attempt, outcome.message_id, last)
        attempt.record = updated
        self.metrics.count("MessagesSent", kind=updated.kind)
        attempt.part += 1
        return self._sent(updated, receipts) if last else None

    def _record_sent(
        self, attempt: "_Attempt", message_id: str | None, last: bool
    ) -> tuple[OutboundRecord, dict[str, Any]]:
        """Meta accepted the attempt's part: the record moves on (SENT after the last part), and the mid points
        at the message; with any receipt of the mid that came before (an echo can outrun the answer). One
        transaction while nothing is known of the mid (OutboundRecords.part_sent_linked says why that is
        safe); otherwise the two writes in that order: a receipt that comes between them finds
        the message SENT once the mid is linked, and one that came before is in link_message_id's answer."""
        key, part = attempt.record.idempotency_key, attempt.part
        if message_id is not None:
            updated = self.records.part_sent_linked(attempt.record, part, message_id, last)
            if updated is not None:
                return updated, {}  # it applies only while no receipt of the mid is recorded
        moved = self.records.part_sent(key, part, message_id, last=last)
        if moved is None:
            raise Retry(1.0, "the record changed while its part was sent")
        return moved, self.records.link_message_id(message_id, moved) if message_id else {}

    def _refused(self, attempt: "_Attempt", outcome: Refused, started_ms: int) -> str | None:
        record, send = attempt.record, attempt.sends[attempt.part]
        if _refuses_marker(outcome, send):
            # Meta does not take the metadata field on this platform: the same part again without it (a
            # refusal is certain, so nothing went out), and none on later messages.
            self.echo_markers = False
            self.metrics.count("EchoMarkersRefused")
            logger.warning(
                "Meta refused the metadata field; sending without echo markers",
                extra={"idempotency_key": record.idempotency_key, "error": outcome.error.as_dict()},
            )
            self.records.part_not_sent(record.idempotency_key, attempt.part)
            attempt.sends = [without_marker(s) for s in attempt.sends]
            return None
        error_class = errors.classify(outcome.error)
        self.metrics.count("GraphErrors", code=str(outcome.error.code), error_class=error_class.value)
        logger.warning(
            "Meta refused a send",
            extra={
                "idempotency_key": record.idempotency_key,
                "part": attempt.part,
                "error": outcome.error.as_dict(),
                "error_class": error_class.value,
            },
        )
        if error_class is ErrorClass.AMBIGUOUS:
            detail = "Meta answered 1/1357046 (invalid JSON reply): the message may have been sent; settled by its echo"
            return self._unknown(record, detail, outcome.error.as_dict(), send, started_ms)
        refusals = self.records.part_not_sent(record.idempotency_key, attempt.part)
        if error_class is ErrorClass.AUTH and not attempt.token_refetched:
            attempt.token_refetched = True  # the refresher may have just renewed it: read it again, once
            return None
        return self._after_refusal(attempt, error_class, outcome, refusals)

    def _after_refusal(self, attempt: "_Attempt", error_class: ErrorClass, outcome: Refused, refusals: int) -> str:
        """A refusal that ends this attempt: retried later, or the message's final status."""
        record, error = attempt.record, outcome.error
        if error_class is ErrorClass.AUTH:
            self.accounts.mark_needs_reauthorisation(attempt.account.account_id, error.message or "code 190")
            self.metrics.count("AccountsNeedingReauthorisation")
            detail = (
                "Meta rejected the account's token (190) even after reading it again; the account needs "
                "re-authorisation"
            )
            return self._settle(record, st.FAILED, "token_invalid", detail, error.as_dict())
        if error_class is ErrorClass.THROTTLED:
            pause = regain_seconds(outcome.usage) or THROTTLE_PAUSE_SECONDS * (0.5 + random.random() / 2)  # noqa: S311  # nosec B311 # jitter
            self.limiter.pause(attempt.account.account_id, pause)
            self.metrics.count("Throttled")
            return self._retry_or_fail(
                record,
                attempt.receive_count,
                refusals,
                "Meta throttled the account",
                error,
                delay=pause,
                valid_until_ms=attempt.valid_until_ms,
            )
        if error_class is ErrorClass.TRANSIENT:
            return self._retry_or_fail(
                record,
                attempt.receive_count,
                refusals,
                "Meta had a transient failure",
                error,
                valid_until_ms=attempt.valid_until_ms,
            )
        if error_class is ErrorClass.TRANSIENT_LIMITED:
            # Counted in Meta's answers, not in SQS receives: a receive spent waiting for a rate slot, or
            # behind its group's head, sent nothing.
            if refusals >= errors.TRANSIENT_LIMITED_ATTEMPTS:
                detail = f"Meta had a temporary failure; gave up after {refusals} attempts"
                return self._settle(record, st.FAILED, "retries_exhausted", detail, error.as_dict())
            return self._retry_or_fail(
                record,
                attempt.receive_count,
                refusals,
                "Meta had a temporary failure",
                error,
                valid_until_ms=attempt.valid_until_ms,
            )
        reason = errors.reason(error_class, error)
        return self._settle(record, st.FAILED, reason, error.message or "Meta refused the message", error.as_dict())

    def _reserve(self, account_id: str, rate_class: str, valid_until_ms: int | None = None) -> "_Reserved":
        """Reserve the account's next slot, or Retry when it is further off than this receive may wait."""
        # A slot further off than this goes back to SQS rather than hold the invocation (and the rest of
        # its batch), and never so late that the call could outlive the invocation, or the message's validity.
        max_wait = min(INLINE_WAIT_LIMIT, self.remaining_seconds() - 15)
        if valid_until_ms is not None:
            max_wait = min(max_wait, valid_until_ms / 1000 - self.clock())
        slot = self.limiter.acquire(account_id, rate_class, max_wait)
        if not slot.reserved:
            raise Retry(slot.wait, f"{rate_class} rate limit of account {account_id}")
        opens = slot.at if slot.at is not None else self.clock() + slot.wait
        return _Reserved(opens, queued=slot.wait > 0)

    def _go_at(self, slot: "_Reserved", account_id: str, rate_class: str, valid_until_ms: int | None) -> None:
        """Wait for the reserved slot to open; the writes made since the reservation are part of that wait.

        A slot that had to wait behind others is one of a run of slots at the account's rate. Calls of such a
        run that leave later than their slots by different amounts reach Meta closer together than the limiter
        spaced them: in a burst's first second, every instance starting on an idle account at once, enough to
        be throttled. So a queued slot missed by more than ON_TIME_SECONDS is left unused and a new one taken,
        once (behind the run, so usually far enough off to be kept); the call then goes whatever the clock says,
        so a slow instance is slower, never stuck. A slot that did not wait is at the head of the account's
        slots, with none due before it: its lateness bunches nothing."""
        if (wait := slot.opens - self.clock()) > 0:
            self.sleep(wait)
        if not slot.queued or self.clock() - slot.opens <= ON_TIME_SECONDS:
            return
        self.metrics.count("RateSlotsMissed")
        again = self._reserve(account_id, rate_class, valid_until_ms)
        if (wait := again.opens - self.clock()) > 0:
            self.sleep(wait)

    def _retry_or_fail(
        self,
        record: OutboundRecord,
        receive_count: int,
        attempts: int,
        detail: str,
        error: Any = None,
        *,
        delay: float | None = None,
        valid_until_ms: int | None = None,
    ) -> str:
        """Raise Retry; or end FAILED once Meta has failed ``attempts`` times of the ones allowed, or on the
        last receive SQS allows (rather than let SQS park the message in the DLQ without a status), or when
        the retry would come after the message's valid_until (expired, now rather than late).
        Attempts are Meta's answers, not receives: a receive spent waiting for a rate slot, or behind the
        head of the message's conversation, sent nothing."""
        if attempts >= self.max_attempts or receive_count >= self.max_receive_count:
            return self._settle(
                record,
                st.FAILED,
                "retries_exhausted",
                f"{detail}; gave up after {attempts} attempts in {receive_count} receives",
                error.as_dict() if error is not None else None,
            )
        wait = delay if delay is not None else backoff_seconds(max(attempts, 1))
        if valid_until_ms is not None and (self.clock() + wait) * 1000 >= valid_until_ms:
            expired = f"{_expired_detail(record)} (the next try, after: {detail}, would come too late)"
            return self._settle(record, st.FAILED, "expired", expired, error.as_dict() if error is not None else None)
        self._written(record)  # it waits PENDING, as GET /v1/messages shows it
        raise Retry(wait, detail)

    def _sent(self, record: OutboundRecord, receipts: dict[str, Any]) -> str:
        _log_status(record, st.SENT)
        self.statuses.publish(record)
        # An echo or read that arrived before we recorded the mid: apply it now.
        for status, attribute in ((st.DELIVERED, "delivered_at"), (st.READ, "read_at")):
            if attribute in receipts:
                moved = self.records.settle(record.idempotency_key, status)
                if moved is not None:
                    self.statuses.publish(moved)
                    record = moved
        return record.status

    def _unknown(
        self,
        record: OutboundRecord,
        detail: str,
        error: dict[str, Any] | None = None,
        send: GraphSend | None = None,
        started_ms: int | None = None,
    ) -> str:
        """UNKNOWN, then settled by the echo: one that comes later finds the message waiting in its
        conversation (the webhook matches it); one that came already is in the table (matched here)."""
        now_ms = int(self.clock() * 1000)
        waiting = None
        if send is not None and "message" in send.body:
            content = send.body["message"]
            attachment = content.get("attachment") or (content.get("attachments") or [{}])[0]
            waiting = Unsettled(
                record.idempotency_key,
                fingerprint(content.get("text"), attachment.get("type")),
                content.get("metadata"),
                started_ms if started_ms is not None else now_ms - int(ECHO_LOOKBACK_SECONDS * 1000),
                now_ms,
            )
            self.records.add_unsettled(record, waiting)
        status = self._settle(record, st.UNKNOWN, "ambiguous_outcome", detail, error)
        if waiting is None or status != st.UNKNOWN or not record.account_id or not record.customer_id:
            return status
        echoes = self.records.stored_echoes(record.account_id, record.customer_id, waiting.started_ms - CLOCK_SKEW_MS)
        echo = (
            settles(waiting, echoes, self.records.unsettled(record.account_id, record.customer_id)) if echoes else None
        )
        if echo is not None and self.records.claim_echo(echo.message_id, record.idempotency_key):
            self.records.remove_unsettled(record.account_id, record.customer_id, record.idempotency_key)
            settled = self.records.settle_by_echo(record.idempotency_key)
            if settled is not None:
                _log_status(settled, settled.status, settled.reason, settled.detail)
                self.statuses.publish(settled)
                return settled.status
        return status

    def _settle(
        self,
        record: OutboundRecord,
        status: str,
        reason: str | None,
        detail: str | None,
        error: dict[str, Any] | None = None,
    ) -> str:
        record = self._written(record)  # a first receive's message gets its record: PENDING, then this status
        moved = self.records.settle(record.idempotency_key, status, reason=reason, detail=detail, error=error)
        if moved is None:  # someone settled it first (an echo, a concurrent attempt): report that
            current = self.records.get(record.idempotency_key)
            return current.status if current else status
        if status == st.FAILED:
            self.metrics.count("MessagesFailed", reason=reason or "unknown")
        _log_status(moved, status, reason, detail)
        self.statuses.publish(moved)
        return status

    def _fail_unclaimed(self, message: OutboundMessage, account_id: str | None, reason: str, detail: str) -> str:
        payload_hash = _payload_hash(message)
        record, created = self.records.claim(
            idempotency_key=message.idempotency_key,
            payload_hash=payload_hash,
            kind=message.kind,
            account_id=account_id,
            customer_id=message.recipient.id,
            parts_total=0,
            correlation_id=message.correlation_id,
            callback_url=message.callback_url,
            callback_data=message.callback_data,
            dialect=message.dialect,
        )
        return self._refuse(record, created, payload_hash, reason, detail)

    def _refuse(self, record: OutboundRecord, created: bool, payload_hash: str, reason: str, detail: str) -> str:
        """FAILED with ``reason``, but only a record this message owns: a key reused by a message that cannot
        be sent must not cancel the message that took the key first."""
        if not created:
            seen = self._seen_before(record, payload_hash)
            if seen is not None:
                return seen
        return self._settle(record, st.FAILED, reason, detail)

    def _invalid(self, body: str, raw: Any, problem: str, sqs_message_id: str) -> str:
        """A message that is not a valid outbound message still gets a record and a FAILED status, under its
        own idempotency key when it has a usable one (so the producer can match it), else the SQS id."""
        document = raw if isinstance(raw, dict) else {}
        problem = without_lone_surrogates(problem)  # it may quote a field name the producer sent
        key = document.get("idempotency_key")
        if not isinstance(key, str) or not _valid_key(key):
            key = f"sqs-{sqs_message_id}"
        recipient = document.get("recipient")
        customer = recipient.get("id") if isinstance(recipient, dict) else None
        if not isinstance(customer, str) or not 0 < len(customer) <= 64:
            customer = None  # not an IGSID: it is not kept, only the reason names it
        content = document.get("message")
        kind = content.get("type") if isinstance(content, dict) else None
        kind = without_lone_surrogates(kind[:64]) if isinstance(kind, str) and kind else "invalid"

        def text(name: str) -> str | None:
            value = document.get(name)
            return without_lone_surrogates(value) if isinstance(value, str) and 0 < len(value) <= 4096 else None

        callback_url = text("callback_url")
        if callback_url is not None and url_refusal(callback_url, allow_local=self.allow_local_callbacks):
            callback_url = None  # the FAILED status still reaches the events queue

        # The body's own digest: a redelivery of this body finds its record, another message's record is not its.
        payload_hash = "invalid-" + hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        record, created = self.records.claim(
            idempotency_key=key,
            payload_hash=payload_hash,
            kind=kind,
            account_id=_id_or_none(document.get("account_id")),
            customer_id=without_lone_surrogates(customer) if customer else None,
            parts_total=0,
            correlation_id=text("correlation_id"),
            callback_url=callback_url,
            callback_data=text("callback_data"),
            dialect=document.get("dialect") if document.get("dialect") in DIALECTS else None,
        )
        self.metrics.count("InvalidMessages")
        return self._refuse(record, created, payload_hash, "invalid_message", problem)


def _id_or_none(value: Any) -> str | None:
    """An invalid message's account as its record keeps it: only what could be an id (an index key must be a
    short, non-empty string; the record is how the producer and an erasure find the message)."""
    return value if isinstance(value, str) and re.fullmatch(ID_PATTERN, value) else None


def _log_status(record: OutboundRecord, status: str, reason: str | None = None, detail: str | None = None) -> None:
    """One line per status the sender sets (sent, failed, unknown), with the keys an operator searches by
    (docs/operations.md). Delivered and read come from Meta's webhooks and are events, not log lines."""
    log = logger.warning if status in (st.FAILED, st.UNKNOWN) else logger.info
    log(
        f"outbound message {status.lower()}",
        extra={
            "idempotency_key": record.idempotency_key,
            "correlation_id": record.correlation_id,
            "account_id": record.account_id,
            "kind": record.kind,
            "status": status,
            "message_ids": record.message_ids,
            "reason": reason,
            "detail": detail,
        },
    )


def backoff_seconds(receive_count: int) -> float:
    """Exponential backoff with jitter, by how many times the message was received."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** max(receive_count - 1, 0))
    return ceiling * (0.5 + random.random() / 2)  # noqa: S311  # nosec B311 # jitter, not cryptography


def _parse(body: str) -> tuple[OutboundMessage | None, str | None, Any]:
    try:
        raw = json.loads(body)
    except ValueError as exc:
        return None, f"body is not JSON: {exc}", None
    except RecursionError:  # thousands of nested arrays: unreadable like any other broken body, never retried
        return None, "body is nested too deeply to be read", None
    if not isinstance(raw, dict):
        return None, "body must be a JSON object", raw
    try:
        return OutboundMessage.model_validate(raw), None, raw
    except ValidationError as exc:
        return None, validation_reason(exc.errors(include_url=False, include_input=False)), raw


class _Unclaimed(OutboundRecord):
    """The record a message taken for the first time will have, before it is written (_written): right before
    its first part goes out, with that part in flight in the same write; or before a take of the conversation;
    or, when it goes no further, to end in its status or to wait PENDING on the queue (a rate slot too far off,
    a paused account). Only a receive that fails unexpectedly before any of these leaves nothing behind."""


class _ClaimedBefore(Exception):
    """The record a first receive went to write existed already: its key was taken before (the producer
    queued the message again, or SQS counted a receive as the first that was not)."""

    def __init__(self, record: OutboundRecord) -> None:
        super().__init__(record.idempotency_key)
        self.record = record


class _Reserved(NamedTuple):
    """A reserved rate slot: when it opens (epoch seconds), and whether it waited behind other slots."""

    opens: float
    queued: bool


@dataclass
class _Attempt:
    """One receive's attempt at a message: where it is among its parts, and what it learnt on the way."""

    record: OutboundRecord
    account: Account
    sends: list[GraphSend]
    receive_count: int
    part: int = 0
    token_refetched: bool = False
    valid_until_ms: int | None = None  # the message's valid_until: nothing is sent from then on


def _other_owner(view: ConversationView, message: OutboundMessage) -> str | None:
    """The app, not the gateway's, that answers the conversation the message is for; None when the gateway
    may send (its own, idle, or the message is itself thread control)."""
    if message.kind in THREAD_CONTROL_KINDS or view.thread_owner in (None, GATEWAY_OWNER):
        return None
    return view.thread_owner


def _owned_detail(owner: str) -> str:
    who = "the Instagram Inbox" if owner == INSTAGRAM_INBOX_APP_ID else f"app {owner}"
    return (
        f"{who} answers this conversation (a person has it): the message was not sent. Send it with "
        "take_control: true to take the conversation back first"
    )


def _epoch_ms_of(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


def _expiry(message: OutboundMessage, now: float) -> str | None:
    """Why a message is past its valid_until before anything of it was sent; None while it is valid."""
    if message.valid_until is None or now < message.valid_until.timestamp():
        return None
    late = now - message.valid_until.timestamp()
    return f"valid until {message.valid_until.isoformat()}, {late:.0f} s ago when the sender took it; nothing was sent"


def _expired_detail(record: OutboundRecord) -> str:
    sent = f"; parts 1 to {record.parts_sent} of {record.parts_total} had been sent" if record.parts_sent else ""
    return f"its valid_until passed before it could be sent{sent}; nothing more was sent"


def _refuses_marker(outcome: Refused, send: GraphSend) -> bool:
    """Meta's invalid-parameter answer naming the metadata field, to a request that carried it."""
    return (
        outcome.error.code == 100
        and "metadata" in (outcome.error.message or "").lower()
        and "metadata" in send.body.get("message", {})
    )


def _epoch_ms(iso: str) -> int | None:
    try:
        return int(datetime.fromisoformat(iso).timestamp() * 1000)
    except ValueError:
        return None


def _payload_hash(message: OutboundMessage) -> str:
    """The same message, whatever its key order or whitespace, hashes the same."""
    return hashlib.sha256(message.model_dump_json().encode()).hexdigest()[:32]


def _valid_key(key: str) -> bool:
    return re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key) is not None

"""What the console shows, read through the gateway's own store modules (igdm.store), never a layout of its own:

- accounts: AccountTable's items (status, token expiry, webhook fields), and how the subscription stands against
  the stack's WebhookFields, as the refresher judges it (igdm.meta.instagram_login.missing_fields);
- conversations: every customer the AccountCustomer index names for an account (StoredData.indexed, the eraser's
  read), with ConversationHistory's window state where the customer wrote, and when anything last happened;
- a conversation: ConversationHistory's events, and the outbound messages of the conversation as OutboundRecords
  shows them to producers (GET /v1/messages/{key}: each status and when it was reached);
- the callbacks the local callback inbox received.

Documents are plain JSON: texts exactly as stored (the page renders them as text, never as markup), and no token
or secret (an account's token_secret_id names a secret; it is left out too).
"""

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from igdm.contracts.callbacks import TIMESTAMP_HEADER
from igdm.meta.instagram_login import missing_fields
from igdm.store.accounts import AccountTable
from igdm.store.erasure import StoredData, family
from igdm.store.history import ConversationHistory
from igdm.store.keys import ACCOUNTS_PK, NO_PARTY, outbound_pk
from igdm.store.outbound_records import OutboundRecords
from local.callback_inbox import Received, summary

QUEUED = "QUEUED"  # on the outbound queue, not yet taken by the sender: the table holds nothing of it yet
EVENTS_SHOWN = 500  # a conversation's newest events
OUTBOUND_SHOWN = 100  # a conversation's newest outbound messages
CALLBACKS_SHOWN = 50
CACHED_VIEWS = 5000  # outbound messages' views kept between reads
# Fields that say what an event without text is about, in the order the first one present is shown.
CONTENT_FIELDS = (
    "attachments",
    "reaction",
    "postback",
    "quick_reply_payload",
    "referral",
    "reply_to",
    "handover",
    "optin",
    "comment",
    "mention",
    "error",
)
DETAIL_CHARACTERS = 300


@dataclass(frozen=True)
class QueuedReply:
    """A reply the console put on the outbound queue: what it knows of it before the sender's record exists."""

    idempotency_key: str
    account_id: str
    customer_id: str
    text: str
    queued_at: str  # ISO 8601


class ConsoleReads:
    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        retention_days: int,
        webhook_fields: list[str],
        callbacks: Callable[[], list[Received]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._accounts = AccountTable(dynamodb, table)
        self._history = ConversationHistory(dynamodb, table)
        self._stored = StoredData(dynamodb, table)
        self._records = OutboundRecords(dynamodb, table, retention_days)
        self._webhook_fields = webhook_fields
        self._callbacks = callbacks
        self._clock = clock
        self._lock = threading.Lock()  # the API server reads in a thread per request
        self._cached_views: dict[str, dict[str, Any]] = {}  # idempotency key -> OutboundRecords.view

    def account_exists(self, account_id: str) -> bool:
        return self._accounts.get(account_id) is not None

    def accounts(self) -> list[dict[str, Any]]:
        now = self._clock()
        # What the last check found (last_checked_at, last_error): on the account's item, not in Account.
        checks = {item.get("account_id"): item for item in self._stored.partition(ACCOUNTS_PK)}
        shown = []
        for account in sorted(self._accounts.all(), key=lambda a: a.account_id):
            check = checks.get(account.account_id, {})
            missing = missing_fields(self._webhook_fields, set(account.subscribed_fields))
            last_error = check.get("last_error")
            expires = account.token_expires_at
            shown.append(
                {
                    "account_id": account.account_id,
                    "username": account.username,
                    "status": account.status,
                    "status_detail": account.status_detail,
                    "paused_at": account.paused_at,
                    "connected_at": account.connected_at,
                    "last_webhook_at": account.last_webhook_at,
                    "token_expires_at": _iso(expires) if expires is not None else None,
                    "token_expires_in_days": round((expires - now) / 86_400, 1) if expires is not None else None,
                    "subscription": {
                        "healthy": not missing and not last_error,
                        "fields": list(account.subscribed_fields),
                        "missing": missing,
                        "last_checked_at": check.get("last_checked_at"),
                        "last_error": last_error,
                    },
                }
            )
        return shown

    def conversations(self) -> list[dict[str, Any]]:
        """Every account's conversations, the latest activity first."""
        found = []
        for account in self._accounts.all():
            found.extend(self._account_conversations(account.account_id, account.username))
        return sorted(found, key=lambda c: (c["last_activity_at"] or "", c["conversation_id"]), reverse=True)

    def conversation(self, account_id: str, customer_id: str, queued: list[QueuedReply]) -> dict[str, Any]:
        """The conversation's events, oldest first, and its outbound messages with each status they reached; an
        echo of one of them names it (outbound_key), and lends it its text when the console did not send it."""
        events, _ = self._history.events(account_id, customer_id, EVENTS_SHOWN, None)
        events.reverse()
        outbound = self._outbound(account_id, customer_id, queued)
        owner = {mid: message["idempotency_key"] for message in outbound for mid in message["message_ids"]}
        shown_events = [_event_view(event, owner.get(event.get("message_id") or "")) for event in events]
        echoed = {e["outbound_key"]: e for e in shown_events if e["outbound_key"] and e["kind"] == "echo"}
        for message in outbound:
            echo = echoed.get(message["idempotency_key"])
            if message["text"] is None and echo is not None:
                message["text"], message["content"] = echo["text"], echo["detail"]
        return {
            "conversation_id": f"{account_id}:{customer_id}",
            "account_id": account_id,
            "customer_id": customer_id,
            "events": shown_events,
            "outbound": outbound,
        }

    def callbacks(self) -> list[dict[str, Any]]:
        """The latest callbacks the inbox accepted, newest first."""
        return [_callback_view(received) for received in reversed(self._callbacks()[-CALLBACKS_SHOWN:])]

    # ------------------------------------------------------------------ the parts

    def _account_conversations(self, account_id: str, username: str | None) -> list[dict[str, Any]]:
        keys_by_customer: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for item_key, customer_id in self._stored.indexed(account_id):
            if customer_id != NO_PARTY:  # a private reply's record: a comment, not a conversation
                keys_by_customer[customer_id].append(item_key)
        timed = [k for keys in keys_by_customer.values() for k in keys if family(*k) != "conversation_states"]
        # The time each event happened and each outbound message last changed: the conversation's last activity.
        moments = {
            (item["pk"], item["sk"]): _moment(item)
            for item in self._stored.existing(timed, projection="pk, sk, occurred_at, updated_at")
        }
        states = {
            c["customer_id"]: c for c in self._history.conversations(account_id, len(keys_by_customer) + 1, None)[0]
        }
        shown = []
        for customer_id, keys in keys_by_customer.items():
            state = states.get(customer_id, {})
            latest = max((moment for k in keys if (moment := moments.get(k)) is not None), default=None)
            shown.append(
                {
                    "conversation_id": f"{account_id}:{customer_id}",
                    "account_id": account_id,
                    "username": username,
                    "customer_id": customer_id,
                    "last_activity_at": _iso(latest) if latest is not None else None,
                    "last_customer_message_at": state.get("last_customer_message_at"),
                    "last_customer_message_kind": state.get("last_customer_message_kind"),
                    "answered_by": state.get("answered_by"),
                    "events": sum(1 for k in keys if family(*k) == "events"),
                    "outbound": sum(1 for k in keys if family(*k) == "outbound_messages"),
                }
            )
        return shown

    def _outbound(self, account_id: str, customer_id: str, queued: list[QueuedReply]) -> list[dict[str, Any]]:
        records = [k for k, _ in self._stored.indexed(account_id, customer_id) if family(*k) == "outbound_messages"]
        views = self._views(records)
        by_key = {q.idempotency_key: q for q in queued}
        shown = [_outbound_view(view, by_key.pop(view["idempotency_key"], None)) for view in views]
        shown.extend(  # not taken by the sender yet: no record
            _outbound_view({"idempotency_key": key, "kind": "text", "status": QUEUED, "history": []}, reply)
            for key, reply in by_key.items()
        )
        shown.sort(key=lambda m: (_first_moment(m), m["idempotency_key"]))
        return shown[-OUTBOUND_SHOWN:]

    def _views(self, records: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """OutboundRecords.view of each record, read again only when the record changed: every write of a record
        sets its updated_at, which one batch reads for them all (one GetItem each would grow with the messages)."""
        prefix = outbound_pk("")
        views = []
        for item in self._stored.existing(records, projection="pk, sk, updated_at"):
            key, updated_at = item["pk"].removeprefix(prefix), item.get("updated_at")
            with self._lock:
                cached = self._cached_views.get(key)
            if cached is None or cached["updated_at"] != updated_at:
                cached = self._records.view(key)
                if cached is None:  # erased since the batch read it
                    continue
                with self._lock:
                    if len(self._cached_views) >= CACHED_VIEWS:
                        self._cached_views.clear()  # erased and old messages go with the rest
                    self._cached_views[key] = cached
            views.append(cached)
        return views


def _event_view(event: dict[str, Any], outbound_key: str | None) -> dict[str, Any]:
    return {
        "event_id": event.get("event_id"),
        "kind": event.get("kind"),
        "direction": event.get("direction"),
        "source": event.get("source"),
        "occurred_at": event.get("occurred_at"),
        "message_id": event.get("message_id"),
        "text": event.get("text"),
        "detail": _content(event),
        "sent_by_gateway": event.get("sent_by_gateway"),
        "outbound_key": outbound_key,  # an echo (or a read) of an outbound message the gateway sent
    }


def _content(event: dict[str, Any]) -> str | None:
    """What an event holds besides its text, in one short line of JSON (an attachment, a reaction, ...)."""
    for name in CONTENT_FIELDS:
        value = event.get(name)
        if value not in (None, [], {}, ""):
            text = json.dumps({name: value}, ensure_ascii=False, separators=(", ", ": "))
            return text if len(text) <= DETAIL_CHARACTERS else text[: DETAIL_CHARACTERS - 1] + "…"
    return None


def _outbound_view(record: dict[str, Any], queued: QueuedReply | None) -> dict[str, Any]:
    """A message as OutboundRecords.view shows it, QUEUED first: its record begins when the sender took it (PENDING),
    and when it was queued only the console knows, for the replies it queued itself."""
    return {
        "idempotency_key": record["idempotency_key"],
        "kind": record["kind"],
        "status": record["status"],
        "text": queued.text if queued else None,
        "content": None,
        "statuses": [{"status": QUEUED, "at": queued.queued_at if queued else None}, *record["history"]],
        **{name: record.get(name) for name in ("reason", "detail", "error", "correlation_id", "created_at")},
        "message_ids": record.get("message_ids", []),
        "queued_by_console": queued is not None,
    }


def _first_moment(message: dict[str, Any]) -> str:
    return next((s["at"] for s in message["statuses"] if s["at"]), "")


def _callback_view(received: Received) -> dict[str, Any]:
    try:
        document: Any = received.document
    except ValueError:  # not JSON, or not UTF-8
        document = None
    status = document.get("status") if isinstance(document, dict) else None
    signed_at = received.headers.get(TIMESTAMP_HEADER.lower(), "")
    view: dict[str, Any] = {
        "event_id": received.event_id,
        "signature_ok": received.signature_ok,
        "signed_at": _iso(int(signed_at)) if signed_at.isdigit() else None,
        "status": None,
        "idempotency_key": None,
        "message_id": None,
        "reason": None,
        "what": None,
    }
    if isinstance(status, dict):  # the gateway's own shape: a message_status event
        ids = status.get("message_ids") or []
        view.update(
            status=status.get("status"),
            idempotency_key=status.get("idempotency_key"),
            message_id=document.get("message_id") or (ids[-1] if ids else None),
            reason=status.get("reason"),
        )
    else:  # a vendor's status report, or an event webhook's delivery
        view["what"] = summary(document) if isinstance(document, dict) else "a body that is not a JSON object"
    return view


def _moment(item: dict[str, Any]) -> float | None:
    """When an event happened (epoch ms in its item), or when an outbound record last changed, in epoch seconds."""
    occurred = item.get("occurred_at")
    if isinstance(occurred, int):
        return occurred / 1000
    updated = item.get("updated_at")
    if isinstance(updated, str):
        try:
            return datetime.fromisoformat(updated).timestamp()
        except ValueError:
            return None
    return None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")

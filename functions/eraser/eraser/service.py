"""Erasure: delete everything the gateway stored about one id, an account's or a customer's (Meta's data-deletion
callback, GDPR erasure through tools.accounts forget), and say so on the events queue.

The id is treated as both, since one person can be a connected account and another account's customer:

- as a customer, across the stack's accounts: their conversations (events, state, UNKNOWN markers), their
  outbound message records (the AccountCustomer index; a record naming no account is under "-"), the message
  ids of those messages and events, their comments and the private replies to them, the account-wide markers
  naming them, and the no-customer items (mentions, unreadable entries) whose content names them;
- as an account: every conversation and outbound record of the account (the index, by account), its
  no-customer items, markers, rate states, a rescued token, its token secret and, last, its account item.

Then one customer_forgotten event per account of the stack (downstream systems may hold what the table has
already let expire), or an account_status data_deleted for an account. Every step is idempotent: a request that
runs out of time (a large account) raises OutOfTime, SQS hands it back later, and the next attempt finds what is
left. The id is never logged; the audit item keeps a hash of it.
"""

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from igdm.contracts.account_status import AccountChange
from igdm.contracts.erasure import customer_forgotten_event
from igdm.contracts.events import Erasure, EventKind
from igdm.contracts.serialized import SerializedEvent
from igdm.queues.erasure_queue import ErasureJob
from igdm.runtime.observability import logger
from igdm.store.accounts import DISCONNECTED
from igdm.store.erasure import COMPLETED, ErasureRequest, Key, family, names, subject_hash
from igdm.store.keys import (
    ACCOUNTS_PK,
    COMMENT_SK,
    CONVERSATION_PK_PREFIX,
    EVENT_SK_PREFIX,
    MESSAGE_ID_SK,
    NO_PARTY,
    OUTBOUND_SK,
    RATE_SK,
    TOKEN_RESCUE_SK,
    account_sk,
    comment_pk,
    conversation_of,
    conversation_pk,
    message_id_pk,
    outbound_pk,
    rate_pk,
    token_rescue_pk,
    unsettled_pk,
)
from igdm.store.rate_limits import RATE_CLASSES

UNREADABLE_ACCOUNT = "unknown"  # igdm.inbound.normalize: entries that named no usable account
SAFETY_SECONDS = 60.0  # stop deleting this long before the invocation's end: the rest waits for the next receive
WRITE_BATCH = 25


class OutOfTime(Exception):
    """Not finished in this invocation: the job goes back to the queue, and the next attempt goes on."""


class Requests(Protocol):
    def get(self, code: str) -> ErasureRequest | None: ...

    def started(self, code: str) -> None: ...

    def deleted(self, code: str, counts: dict[str, int]) -> None: ...

    def complete(self, code: str, at: str) -> None: ...


class Data(Protocol):
    def accounts(self) -> list[str]: ...

    def indexed(self, account_id: str, customer_id: str | None = None) -> list[tuple[Key, str]]: ...

    def partition(self, pk: str, **filters: str) -> list[dict[str, Any]]: ...

    def existing(self, keys: Iterable[Key], projection: str = "pk, sk") -> list[dict[str, Any]]: ...

    def delete(self, keys: Iterable[Key]) -> None: ...

    def delete_if_present(self, pk: str, sk: str) -> bool: ...


class Vault(Protocol):
    def delete(self, secret_id: str) -> bool: ...


class Events(Protocol):
    def publish(self, events: Sequence[SerializedEvent]) -> list[SerializedEvent]: ...


class AccountEvents(Protocol):
    def publish(self, changes: list[AccountChange], *, now: float) -> list[AccountChange]: ...


class Metrics(Protocol):
    def count(self, name: str, value: int = 1, **dimensions: str) -> None: ...


@dataclass
class Found:
    """What one attempt found to delete: item keys, with the message ids and comments they lead to."""

    keys: set[Key] = field(default_factory=set)
    message_ids: set[str] = field(default_factory=set)
    comments: set[Key] = field(default_factory=set)
    records: set[Key] = field(default_factory=set)

    def add_items(self, items: Iterable[dict[str, Any]]) -> None:
        for item in items:
            pk, sk = item["pk"], item["sk"]
            self.keys.add((pk, sk))
            if item.get("message_id"):
                self.message_ids.add(item["message_id"])
            if pk.startswith(CONVERSATION_PK_PREFIX) and sk.startswith(EVENT_SK_PREFIX):
                comment_id = _comment_id(item)
                if comment_id:
                    self.comments.add((comment_pk(conversation_of(pk)[0], comment_id), COMMENT_SK))


@dataclass
class Eraser:
    requests: Requests
    data: Data
    vault: Vault
    events: Events
    account_events: AccountEvents
    secret_name: Callable[[str], str]
    metrics: Metrics
    clock: Callable[[], float] = field(default=time.time)

    def erase(self, job: ErasureJob, time_left: Callable[[], float] = lambda: math.inf) -> ErasureRequest | None:
        """Carry out one request; None when the job names no request of this stack (nothing is deleted)."""
        request = self.requests.get(job.code)
        if request is None or request.subject_hash != subject_hash(job.user_id):
            logger.error("erasure job names no request of this stack; dropped", extra={"code": job.code[:64]})
            self.metrics.count("ErasureJobsRefused")
            return None
        if request.status == COMPLETED:
            return request
        self.requests.started(job.code)
        user_id = job.user_id
        accounts = self.data.accounts()
        is_account = user_id in accounts
        others = [a for a in accounts if a != user_id]

        found = Found()
        self._as_customer(user_id, others, found)
        self._as_account(user_id, found)
        self._follow(found)
        self._delete(job.code, sorted(found.keys), time_left)

        if is_account:
            self._erase_account(job, time_left)
        done = self.requests.get(job.code) or request
        erasure = Erasure(confirmation_code=job.code, requested_by=done.requested_by, deleted=done.deleted)
        now = self.clock()
        forgotten = [
            SerializedEvent.of(customer_forgotten_event(account_id=a, customer_id=user_id, erasure=erasure, now=now))
            for a in others
        ]
        if len(self.events.publish(forgotten)) < len(forgotten):
            raise RuntimeError("customer_forgotten events were not all published")  # retried: the ids dedupe
        self.requests.complete(job.code, datetime.fromtimestamp(now, UTC).isoformat())
        self.metrics.count("ErasuresCompleted")
        logger.info(
            "erasure completed",
            extra={"code": job.code, "deleted": done.deleted, "account": is_account, "accounts_told": len(others)},
        )
        return self.requests.get(job.code)

    # --- finding

    def _as_customer(self, customer_id: str, accounts: list[str], found: Found) -> None:
        conversations = {conversation_pk(a, customer_id) for a in accounts}
        for account_id in [*accounts, NO_PARTY]:
            conversations |= self._indexed(found, account_id, customer_id)
        for pk in sorted(conversations):
            found.add_items(self.data.partition(pk))
        for account_id in accounts:
            found.add_items(self.data.partition(unsettled_pk(account_id), customer_id=customer_id))
        for account_id in [*accounts, UNREADABLE_ACCOUNT]:
            self._naming(conversation_pk(account_id, None), customer_id, found)

    def _as_account(self, account_id: str, found: Found) -> None:
        conversations = {conversation_pk(account_id, None)} | self._indexed(found, account_id)
        for pk in sorted(conversations):
            found.add_items(self.data.partition(pk))
        found.add_items(self.data.partition(unsettled_pk(account_id)))
        # Unreadable entries naming the id were found as the customer's (_as_customer reads that partition).

    def _indexed(self, found: Found, account_id: str, customer_id: str | None = None) -> set[str]:
        """What the index holds for the account (and customer): kept, records to follow; the conversations it
        names, to be read whole (their markers are not in the index)."""
        conversations = set()
        for item_key, _ in self.data.indexed(account_id, customer_id):
            found.keys.add(item_key)
            if item_key[0].startswith(CONVERSATION_PK_PREFIX):
                conversations.add(item_key[0])
            elif item_key[1] == OUTBOUND_SK:
                found.records.add(item_key)
        return conversations

    def _naming(self, pk: str, user_id: str, found: Found) -> None:
        """The items of a no-customer partition whose content names the id (a mention, an unreadable entry)."""
        found.add_items(item for item in self.data.partition(pk) if names(item, user_id))

    def _follow(self, found: Found) -> None:
        """Comments lead to the private replies sent to them; records and events to their message ids."""
        for comment in self.data.existing(found.comments, "pk, sk, replied_by"):
            found.keys.add((comment["pk"], comment["sk"]))
            if comment.get("replied_by"):
                found.records.add((outbound_pk(comment["replied_by"]), OUTBOUND_SK))
        for record in self.data.existing(found.records, "pk, sk, message_ids"):
            found.keys.add((record["pk"], record["sk"]))
            found.message_ids.update(record.get("message_ids") or [])
        mids = {(message_id_pk(m), MESSAGE_ID_SK) for m in found.message_ids}
        found.keys.update((i["pk"], i["sk"]) for i in self.data.existing(mids))

    # --- deleting

    def _delete(self, code: str, keys: list[Key], time_left: Callable[[], float]) -> None:
        for start in range(0, len(keys), WRITE_BATCH):
            batch = keys[start : start + WRITE_BATCH]
            if time_left() < SAFETY_SECONDS:
                raise OutOfTime(f"{len(keys) - start} items left")
            self.data.delete(batch)
            counts: dict[str, int] = {}
            for pk, sk in batch:
                counts[family(pk, sk)] = counts.get(family(pk, sk), 0) + 1
            self.requests.deleted(code, counts)
            self.metrics.count("ItemsErased", len(batch))

    def _erase_account(self, job: ErasureJob, time_left: Callable[[], float]) -> None:
        """What only an account has, the account item last: until it goes, a retry knows the id was one."""
        account_id = job.user_id
        if time_left() < SAFETY_SECONDS:
            raise OutOfTime("the account's own items are left")
        rates = sum(self.data.delete_if_present(rate_pk(account_id, c), RATE_SK) for c in RATE_CLASSES)
        rescued = self.data.delete_if_present(token_rescue_pk(account_id), TOKEN_RESCUE_SK)
        secret = self.vault.delete(self.secret_name(account_id))
        self.requests.deleted(
            job.code,
            dict(zip(("rate_states", "rescued_tokens", "token_secrets"), (rates, rescued, secret), strict=True)),
        )
        done = self.requests.get(job.code)
        change = AccountChange(
            account_id,
            DISCONNECTED,
            "data_deleted",
            reason="data_deletion_requested",
            detail="everything the gateway stored about the account was deleted, its token included",
            moment=job.code,
            erasure=Erasure(
                confirmation_code=job.code,
                requested_by=done.requested_by if done else "meta",
                deleted=done.deleted if done else {},
            ),
        )
        if self.account_events.publish([change], now=self.clock()):
            raise RuntimeError("the account_status event was not published")  # retried: its id dedupes
        self.requests.deleted(
            job.code, {"accounts": int(self.data.delete_if_present(ACCOUNTS_PK, account_sk(account_id)))}
        )


def _comment_id(item: dict[str, Any]) -> str | None:
    """A stored comment event's comment id (its COMMENT# item holds the commenter)."""
    if item.get("kind") != EventKind.COMMENT:
        return None
    try:
        comment = json.loads(item.get("event") or "{}").get("comment") or {}
    except (ValueError, AttributeError):
        return None
    value = comment.get("comment_id") if isinstance(comment, dict) else None
    return value if isinstance(value, str) and value else None

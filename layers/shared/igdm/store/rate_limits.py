"""Call rates per account shared by every concurrent caller (the sender's sends, the reconciler's calls of
the Conversations API): GCRA on one DynamoDB item per account and rate class, updated atomically, so no
read-modify-write race between Lambda instances.

The item holds the theoretical arrival time (tat) of the next allowed call. A call at `now` is
allowed at tat - tolerance, and moves tat on by one emission interval; a sender reserves that slot
when it comes soon enough, and waits for it. Throttling answers from Meta push tat into the future,
which pauses every sender of that account at once.

A busy account (tat ahead of now) and an idle one (tat in the past, or none) take different updates, and
the limiter never reads the item first: it tries the update that what it last saw of the account calls for.
A wrong guess is refused by its condition and returns the item, so it costs one update more, never a slot.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from igdm.runtime.aws import error_code
from igdm.store.attributes import from_attributes, to_attributes
from igdm.store.keys import RATE_SK, TTL_ATTRIBUTE, key, rate_pk

# How much closer together two calls may arrive at Meta than their slots are (scheduling and network).
JITTER_ALLOWANCE_SECONDS = 0.04
# The half of that allowance a call may spend between its slot and leaving for Meta (the AWS writes in
# between, a busy instance); the other half is the network's. A caller later than this takes a new slot
# rather than go: the first calls of a burst, held up by cold connections or a loaded instance, would
# otherwise reach Meta together with the ones behind them that kept to their slots.
ON_TIME_SECONDS = JITTER_ALLOWANCE_SECONDS / 2
# An account this instance found busy is taken to be busy still for this long past the tat it saw: the other
# senders' reservations keep it ahead while this one waits for Meta's answer and takes its next message.
BUSY_MEMORY_SECONDS = 1.0
# Updates one acquire may make: a wrong first guess, then races lost to other senders, each of which returns
# the item and so makes the next try an informed one.
MAX_UPDATES = 6


class RateStateUnavailable(Exception):
    pass


@dataclass(frozen=True)
class Slot:
    """``reserved``: the call is counted and may go out in ``wait`` seconds, without asking again (the sender
    leaves a slot it missed unused and reserves another: sender.service._go_at).
    Otherwise nothing was counted, and the account has no free slot for ``wait`` seconds.

    ``at`` is when the slot opens (epoch seconds, the limiter's clock): ``wait`` counts from the limiter's
    reading of the clock before its update, so a caller that waits ``wait`` after the answer is late by the
    update's round trip, and one that keeps to a slot waits until ``at``. Slots compare by what they grant."""

    reserved: bool
    wait: float
    at: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RateState:
    """An account's rate item in one rate class (RATE#<account>#<class> / RATE), as far as the limiter reads
    it: the attributes an update returned (UPDATED_OLD, or ALL_OLD when its condition failed). The item
    is only ever written by conditional updates, never put whole."""

    tat: float | None = None  # epoch seconds; None before the account's first call of this class
    expires_at: int | None = None  # TTL, epoch seconds: a day after the latest write

    def to_item(self, account_id: str, rate_class: str) -> dict[str, Any]:
        return {
            **key(rate_pk(account_id, rate_class), RATE_SK),
            **to_attributes({"tat": _microseconds(self.tat), TTL_ATTRIBUTE: self.expires_at}),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "RateState":
        attributes = from_attributes(item)
        tat, expires_at = attributes.get("tat"), attributes.get(TTL_ATTRIBUTE)
        return cls(None if tat is None else float(tat), None if expires_at is None else int(expires_at))


class RateLimiter:
    def __init__(
        self, client: Any, table: str, limits: dict[str, tuple[float, float]], *, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._table = table
        self._limits = limits  # (seconds between calls, burst tolerance in seconds) by rate class
        self._clock = clock
        # What this instance last saw of each (account, rate class): the item's tat after its latest update
        # (0 for none), and whether the account was busy then. Only the choice of update depends on it.
        self._seen: dict[tuple[str, str], tuple[float, bool]] = {}

    def acquire(self, account_id: str, rate_class: str, max_wait: float = 0.0) -> Slot:
        """Reserve the account's next slot if it comes within ``max_wait`` seconds.

        A reservation, rather than asking again until a slot is free, costs one conditional update
        per call however many senders wait on the account, and hands the slots out in order. The update
        tried first is the one for the state this instance last saw the account in (busy or idle)."""
        interval, tolerance = self._limits[rate_class]
        reach = tolerance + max(max_wait, 0.0)  # how far ahead a slot may be and still be reserved
        seen = (account_id, rate_class)
        for _ in range(MAX_UPDATES):
            now = self._clock()
            if self._looks_busy(seen, now):
                # Busy account: tat is ahead of now; the slot it gives is at tat - tolerance.
                applied, old = self._update(
                    account_id,
                    rate_class,
                    now,
                    "SET tat = tat + :t",
                    "tat > :now AND tat <= :limit",
                    {":t": interval, ":now": now, ":limit": now + reach},
                )
                if applied:
                    before = now if old.tat is None else old.tat
                    self._seen[seen] = (before + interval, True)
                    return Slot(True, max(before - tolerance - now, 0.0), before - tolerance)
            else:
                # Idle account: no tat, or tat in the past.
                applied, old = self._update(
                    account_id,
                    rate_class,
                    now,
                    "SET tat = :next",
                    "attribute_not_exists(tat) OR tat <= :now",
                    {":next": now + interval, ":now": now},
                )
                if applied:
                    self._seen[seen] = (now + interval, False)
                    return Slot(True, 0.0, now)
            # Refused: the item came back, so the next try is the right one, unless another sender moves tat
            # on between this answer and that try.
            tat = old.tat if old.tat is not None else 0.0
            self._seen[seen] = (tat, tat > now)
            if tat > now + reach:
                return Slot(False, tat - tolerance - now, tat - tolerance)
        return Slot(False, interval, self._clock() + interval)

    def _looks_busy(self, seen: tuple[str, str], now: float) -> bool:
        tat, busy = self._seen.get(seen, (0.0, False))
        return now < tat or (busy and now < tat + BUSY_MEMORY_SECONDS)

    def pause(self, account_id: str, seconds: float) -> None:
        """Meta throttled this account: no call of any class before ``seconds`` from now. A call is
        allowed at tat - tolerance, so tat goes that much further."""
        now = self._clock()
        for rate_class, (_, tolerance) in self._limits.items():
            until = now + seconds + tolerance
            self._update(
                account_id,
                rate_class,
                now,
                "SET tat = :until",
                "attribute_not_exists(tat) OR tat < :until",
                {":until": until},
            )
            self._seen[(account_id, rate_class)] = (until, True)  # tat is at least that, applied or not

    def _update(
        self, account_id: str, rate_class: str, now: float, expression: str, condition: str, values: dict[str, float]
    ) -> tuple[bool, RateState]:
        """Whether the update applied, and the item before it (applied or not)."""
        attribute_values = to_attributes(
            {**{name: _microseconds(value) for name, value in values.items()}, ":expires": int(now) + 86_400}
        )
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=key(rate_pk(account_id, rate_class), RATE_SK),
                UpdateExpression=expression + ", #ttl = :expires",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues=attribute_values,
                ReturnValues="UPDATED_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return True, RateState.from_item(response.get("Attributes") or {})
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise RateStateUnavailable(f"rate state update failed: {error_code(exc)}") from None
            return False, RateState.from_item(exc.response.get("Item") or {})  # type: ignore[arg-type]
        except BotoCoreError as exc:
            raise RateStateUnavailable(f"rate state update failed: {type(exc).__name__}") from None


def _microseconds(seconds: float | None) -> Decimal | None:
    """Times and intervals to the microsecond, written with exactly six decimals (the items' digits)."""
    return None if seconds is None else Decimal(f"{seconds:.6f}")


def intervals(
    text_per_second: float, media_per_second: float, private_replies_per_hour: float, headroom: float
) -> dict[str, tuple[float, float]]:
    return {
        "text": _limit(text_per_second, 1.0, headroom),
        "media": _limit(media_per_second, 1.0, headroom),
        "private_reply": _limit(private_replies_per_hour, 3600.0, headroom),
    }


CONVERSATIONS = "conversations"
# Every class an account has a RATE# item for: the sender's (intervals) and the reconciler's.
RATE_CLASSES = ("text", "media", "private_reply", CONVERSATIONS)


def conversations_limits(calls_per_second: float, headroom: float) -> dict[str, tuple[float, float]]:
    """Instagram's Conversations API allows 2 calls per second per account (fact sheet §10)."""
    return {CONVERSATIONS: _limit(calls_per_second, 1.0, headroom)}


def _limit(calls: float, period: float, headroom: float) -> tuple[float, float]:
    """The emission interval, and the burst tolerance left once the jitter allowance is kept.

    Calls spaced by ``interval`` after a burst of ``tolerance`` put at most ``calls`` in any window
    shorter than calls * interval - tolerance. The headroom makes that window longer than ``period``
    by period / headroom - period (42 ms for 100/s at 0.96): room for calls that reach Meta closer
    together than they left. Only what exceeds JITTER_ALLOWANCE_SECONDS of it is spent on bursts."""
    interval = period / (calls * headroom)
    tolerance = max(0.0, calls * interval - period - JITTER_ALLOWANCE_SECONDS)
    return interval, tolerance

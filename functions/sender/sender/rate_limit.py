"""Send rates per account shared by every concurrent sender: GCRA on one DynamoDB item per account and
rate class, updated atomically, so no read-modify-write race between Lambda instances.

The item holds the theoretical arrival time (tat) of the next allowed call. A call at `now` is
allowed at tat - tolerance, and moves tat on by one emission interval; a sender reserves that slot
when it comes soon enough, and waits for it. Throttling answers from Meta push tat into the future,
which pauses every sender of that account at once.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from igdm.runtime.aws import error_code
from igdm.store.keys import RATE_SK, TTL_ATTRIBUTE, rate_pk

# How much closer together two calls may arrive at Meta than they left here (network and scheduling).
JITTER_ALLOWANCE_SECONDS = 0.04


class RateStateUnavailable(Exception):
    pass


@dataclass(frozen=True)
class Slot:
    """``reserved``: the call is counted and goes out in ``wait`` seconds, without asking again.
    Otherwise nothing was counted, and the account has no free slot for ``wait`` seconds."""

    reserved: bool
    wait: float


class RateLimiter:
    def __init__(
        self, client: Any, table: str, limits: dict[str, tuple[float, float]], *, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._table = table
        self._limits = limits  # (seconds between calls, burst tolerance in seconds) by rate class
        self._clock = clock

    def acquire(self, account_id: str, rate_class: str, max_wait: float = 0.0) -> Slot:
        """Reserve the account's next slot if it comes within ``max_wait`` seconds.

        A reservation, rather than asking again until a slot is free, costs one conditional update
        per call however many senders wait on the account, and hands the slots out in order."""
        interval, tolerance = self._limits[rate_class]
        for _ in range(3):  # lost races to other senders only
            now = self._clock()
            # Busy account: tat is ahead of now; the slot it gives is at tat - tolerance.
            applied, old = self._update(
                account_id,
                rate_class,
                now,
                "SET tat = tat + :t",
                "tat > :now AND tat <= :limit",
                {":t": interval, ":now": now, ":limit": now + tolerance + max(max_wait, 0.0)},
            )
            if applied:
                return Slot(True, max(old.get("tat", now) - tolerance - now, 0.0))
            tat = old.get("tat")
            if tat is not None and tat > now:
                if tat <= now + tolerance + max(max_wait, 0.0):
                    continue  # moved on between our reading and our write
                return Slot(False, tat - tolerance - now)
            # Idle account: no tat, or tat in the past.
            applied, _ = self._update(
                account_id,
                rate_class,
                now,
                "SET tat = :next",
                "attribute_not_exists(tat) OR tat <= :now",
                {":next": now + interval, ":now": now},
            )
            if applied:
                return Slot(True, 0.0)
        return Slot(False, interval)

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

    def _update(
        self, account_id: str, rate_class: str, now: float, expression: str, condition: str, values: dict[str, float]
    ) -> tuple[bool, dict[str, float]]:
        """Whether the update applied, and the item's numbers before it (applied or not)."""
        attribute_values = {k: {"N": f"{v:.6f}"} for k, v in values.items()}
        attribute_values[":expires"] = {"N": str(int(now) + 86_400)}
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": rate_pk(account_id, rate_class)}, "sk": {"S": RATE_SK}},
                UpdateExpression=expression + ", #ttl = :expires",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues=attribute_values,
                ReturnValues="UPDATED_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return True, _numbers(response.get("Attributes") or {})
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise RateStateUnavailable(f"rate state update failed: {error_code(exc)}") from None
            return False, _numbers(exc.response.get("Item") or {})  # type: ignore[arg-type]
        except BotoCoreError as exc:
            raise RateStateUnavailable(f"rate state update failed: {type(exc).__name__}") from None


def _numbers(item: dict[str, Any]) -> dict[str, float]:
    return {k: float(v["N"]) for k, v in item.items() if isinstance(v, dict) and "N" in v}


def intervals(
    text_per_second: float, media_per_second: float, private_replies_per_hour: float, headroom: float
) -> dict[str, tuple[float, float]]:
    return {
        "text": _limit(text_per_second, 1.0, headroom),
        "media": _limit(media_per_second, 1.0, headroom),
        "private_reply": _limit(private_replies_per_hour, 3600.0, headroom),
    }


def _limit(calls: float, period: float, headroom: float) -> tuple[float, float]:
    """The emission interval, and the burst tolerance left once the jitter allowance is kept.

    Calls spaced by ``interval`` after a burst of ``tolerance`` put at most ``calls`` in any window
    shorter than calls * interval - tolerance. The headroom makes that window longer than ``period``
    by period / headroom - period (42 ms for 100/s at 0.96): room for calls that reach Meta closer
    together than they left. Only what exceeds JITTER_ALLOWANCE_SECONDS of it is spent on bursts."""
    interval = period / (calls * headroom)
    tolerance = max(0.0, calls * interval - period - JITTER_ALLOWANCE_SECONDS)
    return interval, tolerance

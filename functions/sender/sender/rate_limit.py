"""Send rates per account shared by every concurrent sender: GCRA on one DynamoDB item per account and
rate class, updated atomically, so no read-modify-write race between Lambda instances.

The item holds the theoretical arrival time (tat) of the next allowed call. A call at `now` is
allowed when tat <= now + tolerance, and then moves tat on by one emission interval. Throttling
answers from Meta push tat into the future, which pauses every sender of that account at once.
"""

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from igdm.aws import error_code
from igdm.table import RATE_SK, TTL_ATTRIBUTE, rate_pk


class RateStateUnavailable(Exception):
    pass


class RateLimiter:
    def __init__(self, client: Any, table: str, limits: dict[str, tuple[float, float]], *,
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._limits = limits  # (seconds between calls, burst tolerance in seconds) by rate class
        self._clock = clock

    def acquire(self, account_id: str, rate_class: str) -> float:
        """0 when the call may go now (and it is counted); else the seconds to wait before asking again."""
        interval, tolerance = self._limits[rate_class]
        now = self._clock()
        # Busy account: tat is ahead of now but within the tolerance.
        old = self._update(account_id, rate_class, "SET tat = tat + :t",
                           "tat > :now AND tat <= :limit", {":t": interval, ":now": now, ":limit": now + tolerance})
        if old is None:
            return 0.0
        tat = old.get("tat")
        if tat is not None and tat > now:
            return max(tat - tolerance - now, 0.001)
        # Idle account: no tat, or tat in the past.
        old = self._update(account_id, rate_class, "SET tat = :next",
                           "attribute_not_exists(tat) OR tat <= :now", {":next": now + interval, ":now": now})
        if old is None:
            return 0.0
        return max(interval / 10, 0.001)  # lost a race to another sender: ask again shortly

    def pause(self, account_id: str, rate_class: str, seconds: float) -> None:
        """Meta throttled this account: no call of this class before ``seconds`` from now."""
        until = self._clock() + seconds
        self._update(account_id, rate_class, "SET tat = :until", "attribute_not_exists(tat) OR tat < :until",
                     {":until": until})

    def _update(self, account_id: str, rate_class: str, expression: str, condition: str,
                values: dict[str, float]) -> dict[str, float] | None:
        """None when the update applied; the old item's numbers when its condition failed."""
        attribute_values = {k: {"N": f"{v:.6f}"} for k, v in values.items()}
        attribute_values[":expires"] = {"N": str(int(self._clock()) + 86_400)}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": rate_pk(account_id, rate_class)}, "sk": {"S": RATE_SK}},
                UpdateExpression=expression + ", #ttl = :expires",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues=attribute_values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return None
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise RateStateUnavailable(f"rate state update failed: {error_code(exc)}") from None
            item: dict[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
            return {k: float(v["N"]) for k, v in item.items() if isinstance(v, dict) and "N" in v}
        except BotoCoreError as exc:
            raise RateStateUnavailable(f"rate state update failed: {type(exc).__name__}") from None


def intervals(text_per_second: float, media_per_second: float, private_replies_per_hour: float,
              headroom: float) -> dict[str, tuple[float, float]]:
    return {
        "text": _limit(text_per_second, 1.0, headroom),
        "media": _limit(media_per_second, 1.0, headroom),
        "private_reply": _limit(private_replies_per_hour, 3600.0, headroom),
    }


def _limit(calls: float, period: float, headroom: float) -> tuple[float, float]:
    """The emission interval, and the largest burst tolerance that still keeps every window of
    ``period`` at or under ``calls``: a window holds at most floor((period + tolerance) / interval) + 1."""
    interval = period / (calls * headroom)
    tolerance = max(0.0, (calls - 1) * interval - period)
    return interval, tolerance

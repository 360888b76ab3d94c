"""AWS as the sender's real adapters call it, in memory and in simulated time (bench.simulation): every
request takes one round trip of simulated time, and is counted, by operation and by partition.

Answered here: the rate limiter's UpdateItem (through bench.sender_standins.RateTable, which keeps its
conditions), AccountDirectory's Query of the ACCOUNTS partition, ConversationState's GetItem (every
customer wrote a minute ago, no handover), Powertools' GetSecretValue (each account's token), and
StatusPublisher's SendMessageBatch (always taken). The outbound records are bench.sender_standins'
MemoryRecords, each call one request (Latent).
"""

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench.sender_standins import RateTable
from bench.virtual_time import VirtualTime
from igdm.store.accounts import Account

PAGE_KB = 1024  # DynamoDB returns at most 1 MB per Query page
# The outbound records' operations that write the record (each also writes its AccountCustomer index entry).
RECORD_WRITES = frozenset(
    {"claim", "begin_part", "part_sent", "part_sent_linked", "part_not_sent", "settle", "settle_by_echo"}
)


class SimulatedAws:
    def __init__(
        self,
        clock: VirtualTime,
        round_trip: float,
        accounts: list[str],
        rates: RateTable,
        *,
        token_of: Callable[[str], str],
        account_item_kb: float,
    ) -> None:
        self._time = clock
        self._round_trip = round_trip
        self._rates = rates
        self._token_of = token_of
        self._items = [Account(a, "active", f"sim/{a}").to_item() for a in sorted(accounts)]
        self._page = max(1, int(PAGE_KB / account_item_kb))
        self.requests: Counter[str] = Counter()
        self.writes: list[tuple[str, str, float]] = []  # (rate or record, partition, simulated time)
        self.secret_reads: list[float] = []
        self.listings = 0
        self.account_items_read = 0

    def _wait(self, operation: str) -> None:
        self.requests[operation] += 1
        self._time.sleep(self._round_trip)

    # ------------------------------------------------------------------ DynamoDB

    def update_item(self, **request: Any) -> dict[str, Any]:
        """The rate limiter's conditional update, applied halfway through its round trip: two senders'
        updates of one account race as they would at DynamoDB."""
        self.requests["dynamodb.UpdateItem"] += 1
        self._time.sleep(self._round_trip / 2)
        self.writes.append(("rate", str(request["Key"]["pk"]["S"]), self._time.now))
        try:
            return self._rates.update_item(**request)
        finally:
            self._time.sleep(self._round_trip / 2)

    def query(self, **request: Any) -> dict[str, Any]:
        """AccountDirectory's listing of the ACCOUNTS partition, a page at a time."""
        start = int(request.get("ExclusiveStartKey", {}).get("offset", {}).get("N", 0))
        if start == 0:
            self.listings += 1
        self._wait("dynamodb.Query")
        page = self._items[start : start + self._page]
        self.account_items_read += len(page)
        answer: dict[str, Any] = {"Items": page}
        if start + self._page < len(self._items):
            answer["LastEvaluatedKey"] = {"offset": {"N": str(start + self._page)}}
        return answer

    def get_item(self, **request: Any) -> dict[str, Any]:
        """ConversationState.view: the customer wrote a minute ago (the 24-hour window is open)."""
        self._wait("dynamodb.GetItem")
        return {"Item": {"last_user_message_at": {"N": str(int(self._time.now * 1000) - 60_000)}}}

    def records(self, inner: Any) -> "Latent":
        return Latent(inner, self)

    # ------------------------------------------------------------------ Secrets Manager

    def get_secret_value(self, *, SecretId: str, **options: Any) -> dict[str, Any]:
        self.secret_reads.append(self._time.now)
        self._wait("secretsmanager.GetSecretValue")
        account = SecretId.removeprefix("sim/")
        return {"Name": SecretId, "SecretString": json.dumps({"access_token": self._token_of(account)})}

    # ------------------------------------------------------------------ SQS

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self._wait("sqs.SendMessageBatch")
        return {"Successful": [{"Id": e["Id"], "MessageId": f"sim-{e['Id']}"} for e in Entries], "Failed": []}


class Latent:
    """An outbound-records stand-in whose every call is one DynamoDB request: counted, and a round trip long."""

    def __init__(self, inner: Any, aws: SimulatedAws) -> None:
        self._inner = inner
        self._aws = aws

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if name in RECORD_WRITES:
                self._aws.writes.append(("record", _account_of(args, kwargs), self._aws._time.now))
            self._aws._wait(f"dynamodb.records.{name}")
            return result

        return call


def _account_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The account a record write belongs to, from the simulation's idempotency keys (sim-<account>-<n>)."""
    first = kwargs.get("idempotency_key") or (args[0] if args else "")
    key = first if isinstance(first, str) else str(getattr(first, "idempotency_key", ""))
    return key.split("-")[1] if key.count("-") >= 2 else key

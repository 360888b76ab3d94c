"""Every AWS request a function makes, counted where it would leave the process, with what AWS bills for it.

Attached at botocore's `before-send` event, the last step before the HTTP request: retries, pagination
and batch splitting are all counted, exactly as AWS would see them. `stub()` also answers the request
there (botocore still serialises the call and parses the answer, as it does in Lambda), so a run can
measure the function without an emulator's CPU in the figure; `count()` only watches, and lets the
request go on to the emulator.

Billing units follow the AWS pricing pages (see bench.cost): DynamoDB on-demand read request units
(1 per 4 KB of item for a strongly consistent read, half for an eventually consistent one; 2 per 4 KB in
a transaction) and write request units (1 per KB of item, 2 in a transaction); SQS requests billed per
64 KB chunk of payload; Secrets Manager per API call. Item sizes are estimated from the requests (the
attribute names and values written). DynamoDB bills an UpdateItem (and a DeleteItem) at the size of the whole
item, the larger of before and after, which the request alone does not show: the ledger keeps the size of each
attribute of every item it saw written (ItemSizes), so an update of an item written earlier in the same run is
billed at the item's size; an item it never saw written counts only what the update sets, a lower bound. An
item that is not found still costs the minimum unit. The table's index (AccountCustomer, keys only) adds one
write unit for each item written with both of its key attributes (an event, an outbound record's claim): for a
put that is exact; for an update that sets both it is an upper bound, since DynamoDB writes the index only when
the update creates the item or changes a key, which a request does not show.
"""

import base64
import json
import math
import re
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders

SQS_CHUNK_BYTES = 64 * 1024
READ_UNIT_BYTES = 4 * 1024
WRITE_UNIT_BYTES = 1024
# botocore's event names use the service id ("secrets-manager"); the ledger uses the client's name.
SERVICE_NAMES = {"secrets-manager": "secretsmanager"}


@dataclass
class Ledger:
    """Requests by "service.Operation", and their billing units, for a run or a part of it."""

    requests: Counter[str] = field(default_factory=Counter)
    read_units: float = 0.0
    write_units: float = 0.0
    sqs_billed: int = 0
    # Off while CPU is measured: reading each request's items to size them costs about a tenth of what the
    # function spends, and would be counted as the function's.
    detailed: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    items: "ItemSizes" = field(default_factory=lambda: ItemSizes(), repr=False)

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def of(self, service: str) -> int:
        return sum(n for name, n in self.requests.items() if name.startswith(f"{service}."))

    def snapshot(self) -> "Ledger":
        with self.lock:
            return Ledger(Counter(self.requests), self.read_units, self.write_units, self.sqs_billed)

    def since(self, earlier: "Ledger") -> "Ledger":
        return Ledger(
            self.requests - earlier.requests,
            self.read_units - earlier.read_units,
            self.write_units - earlier.write_units,
            self.sqs_billed - earlier.sqs_billed,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "read_units": self.read_units,
            "write_units": self.write_units,
            "sqs_billed": self.sqs_billed,
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> "Ledger":
        return cls(
            Counter(document["requests"]), document["read_units"], document["write_units"], document["sqs_billed"]
        )

    # ---------------------------------------------------------------- attaching

    def count(self, client: Any) -> None:
        def watch(request: Any, **kwargs: Any) -> None:
            self._record(request, **kwargs)  # None: a before-send handler's answer would replace AWS's

        client.meta.events.register("before-send", watch)

    def stub(self, client: Any, answers: "StubAnswers") -> None:
        def answer(request: Any, **kwargs: Any) -> AWSResponse:
            service, operation = self._record(request, **kwargs)
            answer_body = json.dumps(answers.answer(service, operation, _raw(request))).encode()
            headers = HTTPHeaders.from_dict({"x-amzn-requestid": "bench"})
            return AWSResponse(request.url, 200, headers, _Raw(answer_body))

        client.meta.events.register("before-send", answer)

    def _record(self, request: Any, event_name: str = "", **_: Any) -> tuple[str, str]:
        service_id, operation = event_name.split(".", 2)[1:]
        service = SERVICE_NAMES.get(service_id, service_id)
        detailed = self.detailed and service == "dynamodb"
        billed = max(1, math.ceil(len(_raw(request)) / SQS_CHUNK_BYTES)) if service == "sqs" else 0
        with self.lock:
            reads, writes = dynamodb_units(operation, json.loads(_raw(request)), self.items) if detailed else (0, 0)
            self.requests[f"{service}.{operation}"] += 1
            self.read_units += reads
            self.write_units += writes
            self.sqs_billed += billed
        return service, operation


class StubAnswers:
    """What AWS answers, instantly and successfully: nothing stored yet, every message accepted.

    The requests are read with regular expressions rather than parsed: the stub stands in for a network
    round trip, and parsing a 30 KB batch again here would be counted as the function's CPU."""

    _ENTRY_ID = re.compile(rb'"Id":\s*"([^"]+)"')
    _TABLE = re.compile(rb'"RequestItems":\s*\{\s*"([^"]+)"')

    def __init__(self, secret_string: str) -> None:
        self._secret_string = secret_string

    def answer(self, service: str, operation: str, raw: bytes) -> dict[str, Any]:
        if operation == "BatchGetItem":
            table = self._TABLE.search(raw)
            return {"Responses": {table.group(1).decode(): []} if table else {}, "UnprocessedKeys": {}}
        if operation == "SendMessageBatch":
            return {"Successful": [_sent(entry.decode()) for entry in self._ENTRY_ID.findall(raw)], "Failed": []}
        if operation == "SendMessage":
            return _sent(None)
        if operation == "GetSecretValue":
            name = json.loads(raw)["SecretId"]
            return {
                "ARN": name,
                "Name": name,
                "VersionId": str(uuid.uuid4()),
                "SecretString": self._secret_string,
                "VersionStages": ["AWSCURRENT"],
            }
        if operation == "Query":
            return {"Items": [], "Count": 0, "ScannedCount": 0}
        if operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"):
            return {}
        raise NotImplementedError(f"the bench's AWS stub does not answer {service}.{operation}")


def _sent(entry_id: str | None) -> dict[str, Any]:
    # No MD5 of the body: neither botocore nor the gateway checks it, and computing it is not the function's work.
    answer = {"MessageId": "00000000-0000-4000-8000-000000000000", "SequenceNumber": "18849496460467696128"}
    return {"Id": entry_id, **answer} if entry_id is not None else answer


class _Raw:
    """The streaming body botocore reads an answer from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _raw(request: Any) -> bytes:
    body = request.body or b"{}"
    return body.encode() if isinstance(body, str) else bytes(body)


# ------------------------------------------------------------------ DynamoDB request units


class ItemSizes:
    """The size of each attribute of every item written through the ledger, by table and key: what an update or
    a delete of the item is billed at. Conditions are not evaluated: a write refused by its condition is
    counted as if it had been applied (a refused write is billed too, at the item's size)."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, int]] = {}

    def put(self, table: str, item: dict[str, Any]) -> int:
        """The item's size; it replaces whatever the key held (billed at the larger of the two)."""
        identity = _identity(table, item)
        before = sum(self._items.get(identity, {}).values())
        self._items[identity] = {name: len(name.encode()) + _value_bytes(value) for name, value in item.items()}
        return max(before, sum(self._items[identity].values()))

    def update(self, table: str, update: dict[str, Any]) -> int:
        """The larger of the item's size before and after the update: its known attributes, with what the
        update sets (at the size of the values it names) and without what it removes."""
        identity = _identity(table, update["Key"])
        known = self._items.get(identity) or {
            name: len(name.encode()) + _value_bytes(value) for name, value in update["Key"].items()
        }
        after = dict(known)
        names, values = update.get("ExpressionAttributeNames", {}), update.get("ExpressionAttributeValues", {})
        clauses = _update_clauses(str(update.get("UpdateExpression", "")))
        for target, expression in clauses.get("SET", []):
            name = names.get(target, target)
            placeholders = re.findall(r":[A-Za-z0-9_]+", expression)
            after[name] = len(name.encode()) + sum(_value_bytes(values[p]) for p in placeholders if p in values)
        for target, _ in clauses.get("REMOVE", []):
            after.pop(names.get(target, target), None)
        self._items[identity] = after
        return max(sum(known.values()), sum(after.values()))

    def delete(self, table: str, key: dict[str, Any]) -> int:
        removed = self._items.pop(_identity(table, key), None)
        return sum(removed.values()) if removed else _item_bytes(key)


def _identity(table: str, item_or_key: dict[str, Any]) -> str:
    key = {name: item_or_key[name] for name in ("pk", "sk") if name in item_or_key}  # the table's key schema
    return f"{table}|{json.dumps(key, sort_keys=True)}"


_CLAUSE = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b(.*?)(?=\b(?:SET|REMOVE|ADD|DELETE)\b|$)")


def _update_clauses(expression: str) -> dict[str, list[tuple[str, str]]]:
    """An UpdateExpression's SET and REMOVE parts as (target, expression) pairs; commas inside function calls
    (if_not_exists(a, :v), list_append(...)) do not split."""
    clauses: dict[str, list[tuple[str, str]]] = {}
    for keyword, body in _CLAUSE.findall(expression):
        parts, depth, current = [], 0, ""
        for char in body:
            depth += {"(": 1, ")": -1}.get(char, 0)
            if char == "," and depth == 0:
                parts.append(current)
                current = ""
            else:
                current += char
        parts.append(current)
        for part in filter(str.strip, parts):
            target, _, value = part.partition("=") if keyword == "SET" else (part, "", "")
            clauses.setdefault(keyword, []).append((target.strip(), value.strip()))
    return clauses


def dynamodb_units(operation: str, body: dict[str, Any], items: ItemSizes) -> tuple[float, float]:
    """(read units, write units) of one DynamoDB request, from its parameters and the items written before."""
    strong = 1.0 if body.get("ConsistentRead") else 0.5
    if operation == "GetItem":
        return strong, 0.0
    if operation == "Query":
        return strong, 0.0  # the items read are small: one 4 KB unit
    if operation == "BatchGetItem":
        reads = sum((1.0 if t.get("ConsistentRead") else 0.5) * len(t["Keys"]) for t in body["RequestItems"].values())
        return reads, 0.0
    if operation == "PutItem":
        return 0.0, _units(items.put(body["TableName"], body["Item"]), WRITE_UNIT_BYTES) + _index_put(body["Item"])
    if operation == "UpdateItem":
        return 0.0, _units(items.update(body["TableName"], body), WRITE_UNIT_BYTES) + _index_update(body)
    if operation == "DeleteItem":
        return 0.0, _units(items.delete(body["TableName"], body["Key"]), WRITE_UNIT_BYTES)
    if operation == "TransactWriteItems":
        return 0.0, sum(
            2 * _units(_action_bytes(a, items), WRITE_UNIT_BYTES) + _index_action(a) for a in body["TransactItems"]
        )
    if operation == "BatchWriteItem":
        units = 0.0
        for table, writes in body["RequestItems"].items():
            for write in writes:
                if "PutRequest" in write:
                    item = write["PutRequest"]["Item"]
                    units += _units(items.put(table, item), WRITE_UNIT_BYTES) + _index_put(item)
                else:
                    units += _units(items.delete(table, write["DeleteRequest"]["Key"]), WRITE_UNIT_BYTES)
        return 0.0, units
    return 0.0, 0.0  # DescribeTable and the like: not billed per request


INDEX_ATTRIBUTES = ("account_id", "customer_id")  # the AccountCustomer index's keys (igdm.store.keys)


def _index_put(item: dict[str, Any]) -> float:
    """One write unit when the item goes into the index (it has both key attributes; keys only: under 1 KB)."""
    return 1.0 if all(name in item for name in INDEX_ATTRIBUTES) else 0.0


def _index_update(update: dict[str, Any]) -> float:
    names = update.get("ExpressionAttributeNames", {})
    targets = {names.get(n, n) for n in _set_targets(str(update.get("UpdateExpression", "")))}
    return 1.0 if all(name in targets for name in INDEX_ATTRIBUTES) else 0.0


def _index_action(action: dict[str, Any]) -> float:
    if "Put" in action:
        return _index_put(action["Put"]["Item"])
    if "Update" in action:
        return _index_update(action["Update"])
    return 0.0


def _units(size: int, unit: int) -> float:
    return float(max(1, math.ceil(size / unit)))


def _action_bytes(action: dict[str, Any], items: ItemSizes) -> int:
    if "Put" in action:
        return items.put(action["Put"]["TableName"], action["Put"]["Item"])
    if "Update" in action:
        return items.update(action["Update"]["TableName"], action["Update"])
    if "Delete" in action:
        return items.delete(action["Delete"]["TableName"], action["Delete"]["Key"])
    return _item_bytes(action["ConditionCheck"]["Key"])  # a check writes nothing; billed like a write of its key


def _set_targets(expression: str) -> list[str]:
    return [target for target, _ in _update_clauses(expression).get("SET", [])]


def _item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: dict[str, Any]) -> int:
    """DynamoDB's item size rules, approximately: strings and binaries by length, numbers by digits."""
    kind, content = next(iter(value.items()))
    if kind == "S":
        return len(str(content).encode())
    if kind == "B":
        return len(base64.b64decode(content))
    if kind == "N":
        return len(str(content).lstrip("-").replace(".", "")) // 2 + 2
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(c).encode()) for c in content)
    if kind == "L":
        return 3 + sum(1 + _value_bytes(v) for v in content)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_bytes(v) for k, v in content.items())
    return 0

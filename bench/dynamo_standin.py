"""AWS for the sender's bench (figure 3), over HTTP on loopback, with DynamoDB's semantics and a fixed latency:
a process of its own that keeps a table's items and answers DynamoDB's JSON protocol as DynamoDB does for what
the gateway asks of it, and SQS and Secrets Manager enough for the sender and for provisioning.

bench.aws_standin answers with canned answers, which is enough for the webhook. The sender needs what it writes to
be kept, and DynamoDB's conditions: its claim is a conditional PutItem, refused (with the item, when asked) when
the record exists; its rate limiter a conditional UpdateItem that returns the old item when refused; its
part_sent_linked a TransactWriteItems cancelled as a whole when one condition fails. moto keeps all of that
(bench.moto_standin serves it the same way), but spends 25 to 30 ms of CPU per send on this machine (werkzeug,
its request routing, and its expression parser each time), so on 2 cores the figure would measure moto. This
parses each expression once (they are the same strings every time), keeps the items in dictionaries, and handles
one request at a time under one lock, so each request, and a transaction as a whole, is atomic as in DynamoDB.

What it serves: DynamoDB CreateTable, DescribeTable, UpdateTimeToLive, UpdateContinuousBackups, GetItem,
PutItem, UpdateItem, DeleteItem, Query (a table or a global index), Scan, BatchGetItem, BatchWriteItem and
TransactWriteItems, with condition, update, key condition, filter and projection expressions (comparisons,
BETWEEN, IN, AND, OR, NOT, attribute_exists, attribute_not_exists, attribute_type, begins_with, contains,
size; SET with + and -, if_not_exists, list_append; REMOVE; ADD; DELETE) and ReturnValues; SQS CreateQueue,
GetQueueUrl, GetQueueAttributes, SendMessage and SendMessageBatch (messages counted, not kept: nothing reads
them here); Secrets Manager CreateSecret, PutSecretValue, GetSecretValue and DescribeSecret (current versions
only). Anything else is answered with a 400 that names it, so a change in the sender shows as an error, not as
a wrong figure. Not kept: item size limits, the 1 MB page of a Query or Scan, throttling, streams.

    python -m bench.dynamo_standin <port file> [latency ms] [time limit s]

It binds 127.0.0.1 on a free port, writes the port to the file, and stops by itself after the time limit (or
when its parent ends it). `DynamoStandIn` starts one, stops it, and reads its CPU time; `State` is the store
alone, for tests.
"""

import base64
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from http.server import ThreadingHTTPServer
from typing import Any

from bench.common import LOOPBACK, REGION, JsonAnswers, serve_bounded
from bench.moto_standin import DEFAULT_LATENCY_MS, DEFAULT_TIME_LIMIT, StandInProcess

ACCOUNT = "123456789012"
Value = dict[str, Any]  # an attribute value as DynamoDB's JSON has it: {"S": "..."}, {"N": "1"}, ...
Item = dict[str, Value]


class AwsError(Exception):
    """An error answer: its type (the __type's last part), message and HTTP status, and extra fields."""

    def __init__(self, kind: str, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.kind, self.message, self.status, self.extra = kind, message, status, extra


def _validation(message: str) -> AwsError:
    return AwsError("ValidationException", message)


# ------------------------------------------------------------------ values


def _typed(value: Value | None) -> tuple[str, Any] | None:
    """A value to compare: numbers as Decimal, binaries as bytes, sets as frozensets, lists and maps deeply."""
    if value is None:
        return None
    kind, content = next(iter(value.items()))
    if kind == "N":
        return kind, Decimal(content)
    if kind == "B":
        return kind, base64.b64decode(content)
    if kind == "NS":
        return kind, frozenset(Decimal(c) for c in content)
    if kind in ("SS", "BS"):
        return kind, frozenset(content)
    if kind == "L":
        return kind, tuple(_typed(v) for v in content)
    if kind == "M":
        return kind, tuple(sorted((k, _typed(v)) for k, v in content.items()))
    return kind, content


def _key_part(value: Value) -> tuple[str, Any]:
    typed = _typed(value)
    if typed is None or typed[0] not in ("S", "N", "B"):
        raise _validation("key attributes must be S, N or B")
    return typed


def _number(value: Decimal) -> Value:
    text = format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
    return {"N": text}


# ------------------------------------------------------------------ expressions


_TOKEN = re.compile(
    r"\s*(?:(<>|<=|>=|[=<>()\[\],.+-])|(#[A-Za-z0-9_]+)|(:[A-Za-z0-9_]+)|([A-Za-z_][A-Za-z0-9_]*)|(\d+))"
)
_KEYWORDS = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE"})
Operand = Callable[[Item, dict[str, Value]], Value | None]
Condition = Callable[[Item, dict[str, Value]], bool]
DocPath = tuple[str | int, ...]  # a document path: names and list indexes


def _tokens(expression: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(expression):
        if expression[position:].strip() == "":
            break
        match = _TOKEN.match(expression, position)
        if match is None:
            raise _validation(f"invalid expression at {expression[position:]!r}")
        position = match.end()
        symbol, name, value, word, digits = match.groups()
        if symbol:
            tokens.append(("symbol", symbol))
        elif name:
            tokens.append(("name", name))
        elif value:
            tokens.append(("value", value))
        elif word:
            tokens.append(("keyword", word.upper()) if word.upper() in _KEYWORDS else ("word", word))
        else:
            tokens.append(("digits", digits))
    return tokens


class _Parser:
    """Recursive descent over one expression's tokens; ``names`` resolves #placeholders as it parses."""

    def __init__(self, expression: str, names: dict[str, str]) -> None:
        self.tokens = _tokens(expression)
        self.position = 0
        self.names = names
        self.expression = expression

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        at = self.position + offset
        return self.tokens[at] if at < len(self.tokens) else None

    def take(self, kind: str | None = None, text: str | None = None) -> str:
        token = self.peek()
        if token is None or (kind is not None and token[0] != kind) or (text is not None and token[1] != text):
            raise _validation(f"invalid expression {self.expression!r}: expected {text or kind} at token {token}")
        self.position += 1
        return token[1]

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.peek()
        return token is not None and token[0] == kind and (text is None or token[1] == text)

    def done(self) -> None:
        if self.peek() is not None:
            raise _validation(f"invalid expression {self.expression!r}: unexpected {self.peek()}")

    # paths and operands

    def path(self) -> DocPath:
        parts: list[str | int] = [self._name()]
        while self.at("symbol", ".") or self.at("symbol", "["):
            if self.take("symbol") == ".":
                parts.append(self._name())
            else:
                parts.append(int(self.take("digits")))
                self.take("symbol", "]")
        return tuple(parts)

    def _name(self) -> str:
        token = self.peek()
        if token is not None and token[0] == "name":
            self.position += 1
            if token[1] not in self.names:
                raise _validation(f"ExpressionAttributeNames has no {token[1]}")
            return self.names[token[1]]
        return self.take("word")

    def operand(self) -> Operand:
        if self.at("value"):
            placeholder = self.take("value")
            return lambda item, values: _placeholder(values, placeholder)
        if self.at("word", "size") and self.peek(1) == ("symbol", "("):
            self.position += 2
            inner = self.operand()
            self.take("symbol", ")")
            return lambda item, values: _size(inner(item, values))
        path = self.path()
        return lambda item, values: _get(item, path)

    # conditions

    def condition(self) -> Condition:
        alternatives = [self._conjunction()]
        while self.at("keyword", "OR"):
            self.position += 1
            alternatives.append(self._conjunction())
        if len(alternatives) == 1:
            return alternatives[0]
        return lambda item, values: any(a(item, values) for a in alternatives)

    def _conjunction(self) -> Condition:
        terms = [self._negation()]
        while self.at("keyword", "AND"):
            self.position += 1
            terms.append(self._negation())
        if len(terms) == 1:
            return terms[0]
        return lambda item, values: all(t(item, values) for t in terms)

    def _negation(self) -> Condition:
        if self.at("keyword", "NOT"):
            self.position += 1
            inner = self._negation()
            return lambda item, values: not inner(item, values)
        return self._term()

    def _term(self) -> Condition:
        if self.at("symbol", "("):
            self.position += 1
            inner = self.condition()
            self.take("symbol", ")")
            return inner
        token = self.peek()
        if token is not None and token[0] == "word" and self.peek(1) == ("symbol", "(") and token[1] != "size":
            return self._function()
        left = self.operand()
        if self.at("keyword", "BETWEEN"):
            self.position += 1
            low = self.operand()
            self.take("keyword", "AND")
            high = self.operand()
            return lambda item, values: _between(left(item, values), low(item, values), high(item, values))
        if self.at("keyword", "IN"):
            self.position += 1
            self.take("symbol", "(")
            choices = [self.operand()]
            while self.at("symbol", ","):
                self.position += 1
                choices.append(self.operand())
            self.take("symbol", ")")
            return lambda item, values: any(_compare("=", left(item, values), c(item, values)) for c in choices)
        comparator = self.take("symbol")
        if comparator not in ("=", "<>", "<", "<=", ">", ">="):
            raise _validation(f"invalid expression {self.expression!r}: {comparator!r} is not a comparator")
        right = self.operand()
        return lambda item, values: _compare(comparator, left(item, values), right(item, values))

    def _function(self) -> Condition:
        function = self.take("word")
        self.take("symbol", "(")
        if function in ("attribute_exists", "attribute_not_exists"):
            path = self.path()
            self.take("symbol", ")")
            exists = function == "attribute_exists"
            return lambda item, values: (_get(item, path) is not None) == exists
        first = self.operand()
        self.take("symbol", ",")
        second = self.operand()
        self.take("symbol", ")")
        if function == "attribute_type":
            return lambda item, values: _attribute_type(first(item, values), second(item, values))
        if function == "begins_with":
            return lambda item, values: _begins_with(first(item, values), second(item, values))
        if function == "contains":
            return lambda item, values: _contains(first(item, values), second(item, values))
        raise _validation(f"invalid expression {self.expression!r}: no function {function}")

    # updates

    def update(self) -> list[tuple[str, DocPath, Any]]:
        """(action, path, operand) for SET (a value computer), REMOVE (None), ADD and DELETE (an operand)."""
        actions: list[tuple[str, DocPath, Any]] = []
        while self.peek() is not None:
            clause = self.take("keyword")
            while True:
                path = self.path()
                if clause == "SET":
                    self.take("symbol", "=")
                    actions.append(("SET", path, self._set_value()))
                elif clause == "REMOVE":
                    actions.append(("REMOVE", path, None))
                elif clause in ("ADD", "DELETE"):
                    actions.append((clause, path, self.operand()))
                else:
                    raise _validation(f"invalid update expression {self.expression!r}: {clause}")
                if not self.at("symbol", ","):
                    break
                self.position += 1
        return actions

    def _set_value(self) -> Operand:
        left = self._set_operand()
        if self.at("symbol", "+") or self.at("symbol", "-"):
            sign = self.take("symbol")
            right = self._set_operand()
            return lambda item, values: _arithmetic(sign, left(item, values), right(item, values))
        return left

    def _set_operand(self) -> Operand:
        token = self.peek()
        if token == ("word", "if_not_exists") and self.peek(1) == ("symbol", "("):
            self.position += 2
            path = self.path()
            self.take("symbol", ",")
            fallback = self._set_operand()
            self.take("symbol", ")")
            return lambda item, values: _get(item, path) or fallback(item, values)
        if token == ("word", "list_append") and self.peek(1) == ("symbol", "("):
            self.position += 2
            first = self._set_operand()
            self.take("symbol", ",")
            second = self._set_operand()
            self.take("symbol", ")")
            return lambda item, values: _list_append(first(item, values), second(item, values))
        return self.operand()

    def projection(self) -> list[DocPath]:
        paths = [self.path()]
        while self.at("symbol", ","):
            self.position += 1
            paths.append(self.path())
        return paths


def _names_key(names: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((names or {}).items()))


@cache
def condition(expression: str, names: tuple[tuple[str, str], ...] = ()) -> Condition:
    parser = _Parser(expression, dict(names))
    parsed = parser.condition()
    parser.done()
    return parsed


@cache
def update(expression: str, names: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, DocPath, Any]]:
    parser = _Parser(expression, dict(names))
    parsed = parser.update()
    parser.done()
    return parsed


@cache
def projection(expression: str, names: tuple[tuple[str, str], ...] = ()) -> list[DocPath]:
    parser = _Parser(expression, dict(names))
    parsed = parser.projection()
    parser.done()
    return parsed


def _placeholder(values: dict[str, Value], placeholder: str) -> Value:
    if placeholder not in values:
        raise _validation(f"ExpressionAttributeValues has no {placeholder}")
    return values[placeholder]


def _get(item: Item, path: DocPath) -> Value | None:
    current: Any = item.get(str(path[0]))
    for part in path[1:]:
        if current is None:
            return None
        if isinstance(part, int):
            content = current.get("L")
            current = content[part] if content is not None and part < len(content) else None
        else:
            content = current.get("M")
            current = content.get(part) if content is not None else None
    return current  # type: ignore[no-any-return]


def _compare(comparator: str, left: Value | None, right: Value | None) -> bool:
    a, b = _typed(left), _typed(right)
    if a is None or b is None:
        return False  # a missing attribute compares with nothing, not even <>
    if comparator == "=":
        return a == b
    if comparator == "<>":
        return a != b
    if a[0] != b[0] or a[0] not in ("S", "N", "B"):
        return False
    x, y = a[1], b[1]
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[comparator]  # type: ignore[no-any-return]


def _between(value: Value | None, low: Value | None, high: Value | None) -> bool:
    return _compare(">=", value, low) and _compare("<=", value, high)


def _begins_with(value: Value | None, prefix: Value | None) -> bool:
    a, b = _typed(value), _typed(prefix)
    return a is not None and b is not None and a[0] == b[0] in ("S", "B") and a[1].startswith(b[1])


def _contains(value: Value | None, operand: Value | None) -> bool:
    a, b = _typed(value), _typed(operand)
    if a is None or b is None:
        return False
    if a[0] in ("S", "B"):
        return a[0] == b[0] and b[1] in a[1]
    if a[0] in ("SS", "NS", "BS"):
        return b[1] in a[1]
    if a[0] == "L":
        return b in a[1]
    return False


def _attribute_type(value: Value | None, kind: Value | None) -> bool:
    return value is not None and kind is not None and next(iter(value)) == kind.get("S")


def _size(value: Value | None) -> Value | None:
    typed = _typed(value)
    if typed is None:
        return None
    kind, content = typed
    if kind == "S":
        return {"N": str(len(content.encode()))}
    if kind in ("B", "SS", "NS", "BS", "L", "M"):
        return {"N": str(len(content))}
    return None


def _arithmetic(sign: str, left: Value | None, right: Value | None) -> Value:
    if left is None or right is None or "N" not in left or "N" not in right:
        raise _validation("an operand in the update expression has the wrong type (+ and - take numbers)")
    a, b = Decimal(left["N"]), Decimal(right["N"])
    return _number(a + b if sign == "+" else a - b)


def _list_append(first: Value | None, second: Value | None) -> Value:
    if first is None or second is None or "L" not in first or "L" not in second:
        raise _validation("list_append takes two lists")
    return {"L": [*first["L"], *second["L"]]}


def _set(item: Item, path: DocPath, value: Value) -> None:
    if len(path) == 1:
        item[str(path[0])] = value
        return
    parent = _get(item, path[:-1])
    last = path[-1]
    if parent is None:
        raise _validation("the document path provided in the update expression is invalid for update")
    if isinstance(last, int):
        content = parent.get("L")
        if content is None:
            raise _validation("the document path provided in the update expression is invalid for update")
        if last < len(content):
            content[last] = value
        else:
            content.append(value)
    else:
        content = parent.get("M")
        if content is None:
            raise _validation("the document path provided in the update expression is invalid for update")
        content[last] = value


def _remove(item: Item, path: DocPath) -> None:
    if len(path) == 1:
        item.pop(str(path[0]), None)
        return
    parent = _get(item, path[:-1])
    last = path[-1]
    if parent is None:
        return
    if isinstance(last, int):
        content = parent.get("L")
        if content is not None and last < len(content):
            del content[last]
    elif parent.get("M") is not None:
        parent["M"].pop(last, None)


def _add(current: Value | None, operand: Value, adding: bool) -> Value | None:
    kind = next(iter(operand))
    if kind == "N" and adding:
        return _number((Decimal(current["N"]) if current else Decimal(0)) + Decimal(operand["N"]))
    if kind in ("SS", "NS", "BS"):
        existing = list(current[kind]) if current and kind in current else []
        if adding:
            merged = existing + [v for v in operand[kind] if v not in existing]
        else:
            merged = [v for v in existing if v not in operand[kind]]
        return {kind: merged} if merged else None
    raise _validation(f"{'ADD' if adding else 'DELETE'} takes a number or a set")


def _copy(item: Item) -> Item:
    return json.loads(json.dumps(item))  # type: ignore[no-any-return]


# ------------------------------------------------------------------ the store


class Table:
    def __init__(self, description: dict[str, Any]) -> None:
        self.name: str = description["TableName"]
        schema = {k["KeyType"]: k["AttributeName"] for k in description["KeySchema"]}
        self.hash_key: str = schema["HASH"]
        self.range_key: str | None = schema.get("RANGE")
        self.indexes = {
            index["IndexName"]: {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
            for index in description.get("GlobalSecondaryIndexes", []) + description.get("LocalSecondaryIndexes", [])
        }
        self.items: dict[tuple[str, Any], dict[tuple[str, Any] | None, Item]] = {}
        self.description = {
            "TableName": self.name,
            "TableArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{self.name}",
            "TableStatus": "ACTIVE",
            "KeySchema": description["KeySchema"],
            "AttributeDefinitions": description.get("AttributeDefinitions", []),
            "BillingModeSummary": {"BillingMode": description.get("BillingMode", "PAY_PER_REQUEST")},
            "ItemCount": 0,
            "CreationDateTime": time.time(),
        }
        if description.get("StreamSpecification", {}).get("StreamEnabled"):
            self.description["LatestStreamArn"] = f"{self.description['TableArn']}/stream/bench"

    def key_of(self, item: Item) -> tuple[tuple[str, Any], tuple[str, Any] | None]:
        if self.hash_key not in item or (self.range_key is not None and self.range_key not in item):
            raise _validation("the provided key element does not match the schema")
        return _key_part(item[self.hash_key]), _key_part(item[self.range_key]) if self.range_key else None

    def get(self, key: Item) -> Item | None:
        hash_part, range_part = self.key_of(key)
        return self.items.get(hash_part, {}).get(range_part)

    def put(self, item: Item) -> None:
        hash_part, range_part = self.key_of(item)
        self.items.setdefault(hash_part, {})[range_part] = item

    def delete(self, key: Item) -> None:
        hash_part, range_part = self.key_of(key)
        partition = self.items.get(hash_part)
        if partition is not None:
            partition.pop(range_part, None)
            if not partition:
                del self.items[hash_part]

    def all_items(self) -> list[Item]:
        return [item for partition in self.items.values() for item in partition.values()]


class State:
    """DynamoDB's tables, SQS's queues and Secrets Manager's secrets: ``answer`` takes one request's service,
    operation and parameters and returns its answer, or raises AwsError. Not thread-safe: the server calls it under
    one lock, which is what makes each request (and a transaction) atomic."""

    def __init__(self, base_url: str = f"http://{LOOPBACK}") -> None:
        self.base_url = base_url
        self.tables: dict[str, Table] = {}
        self.queues: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}
        self.requests: dict[str, int] = {}

    def answer(self, service: str, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, f"_{service}_{operation}", None)
        if handler is None:
            raise AwsError("UnknownOperationException", f"the bench's stand-in does not serve {service}.{operation}")
        name = f"{service}.{operation}"
        self.requests[name] = self.requests.get(name, 0) + 1
        return handler(body)  # type: ignore[no-any-return]

    # DynamoDB: tables

    def _table(self, name: str) -> Table:
        table = self.tables.get(name)
        if table is None:
            raise AwsError("ResourceNotFoundException", f"Requested resource not found: Table: {name} not found")
        return table

    def _dynamodb_CreateTable(self, body: dict[str, Any]) -> dict[str, Any]:
        if body["TableName"] in self.tables:
            raise AwsError("ResourceInUseException", f"Table already exists: {body['TableName']}")
        table = Table(body)
        self.tables[table.name] = table
        return {"TableDescription": table.description}

    def _dynamodb_DescribeTable(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"Table": self._table(body["TableName"]).description}

    def _dynamodb_UpdateTimeToLive(self, body: dict[str, Any]) -> dict[str, Any]:
        self._table(body["TableName"])
        return {"TimeToLiveSpecification": body["TimeToLiveSpecification"]}

    def _dynamodb_UpdateContinuousBackups(self, body: dict[str, Any]) -> dict[str, Any]:
        self._table(body["TableName"])
        enabled = body["PointInTimeRecoverySpecification"].get("PointInTimeRecoveryEnabled")
        return {
            "ContinuousBackupsDescription": {
                "ContinuousBackupsStatus": "ENABLED",
                "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "ENABLED" if enabled else "DISABLED"},
            }
        }

    # DynamoDB: items

    def _dynamodb_GetItem(self, body: dict[str, Any]) -> dict[str, Any]:
        item = self._table(body["TableName"]).get(body["Key"])
        if item is None:
            return {}
        return {"Item": _project(item, body)}

    def _dynamodb_PutItem(self, body: dict[str, Any]) -> dict[str, Any]:
        table = self._table(body["TableName"])
        old = table.get(body["Item"])
        _check(body, old)
        table.put(_copy(body["Item"]))
        return {"Attributes": old} if old is not None and body.get("ReturnValues") == "ALL_OLD" else {}

    def _dynamodb_DeleteItem(self, body: dict[str, Any]) -> dict[str, Any]:
        table = self._table(body["TableName"])
        old = table.get(body["Key"])
        _check(body, old)
        table.delete(body["Key"])
        return {"Attributes": old} if old is not None and body.get("ReturnValues") == "ALL_OLD" else {}

    def _dynamodb_UpdateItem(self, body: dict[str, Any]) -> dict[str, Any]:
        table = self._table(body["TableName"])
        old = table.get(body["Key"])
        _check(body, old)
        new, touched = _updated(table, body, old)
        table.put(new)
        return _returned(body.get("ReturnValues", "NONE"), old, new, touched)

    def _dynamodb_TransactWriteItems(self, body: dict[str, Any]) -> dict[str, Any]:
        actions = body["TransactItems"]
        if len(actions) > 100:
            raise _validation("Member must have length less than or equal to 100")
        seen: set[tuple[str, Any, Any]] = set()
        reasons: list[dict[str, Any]] = []
        plans: list[tuple[str, Table, dict[str, Any], Item | None]] = []
        for action in actions:
            (kind, request), *_ = action.items()
            table = self._table(request["TableName"])
            key_source = request["Item"] if kind == "Put" else request["Key"]
            identity = (table.name, *table.key_of(key_source))
            if identity in seen:
                raise _validation("Transaction request cannot include multiple operations on one item")
            seen.add(identity)
            old = table.get(key_source)
            try:
                _check(request, old)
                reasons.append({"Code": "None"})
            except AwsError as refused:
                if refused.kind != "ConditionalCheckFailedException":
                    raise
                reason: dict[str, Any] = {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
                if "Item" in refused.extra:
                    reason["Item"] = refused.extra["Item"]
                reasons.append(reason)
            plans.append((kind, table, request, old))
        if any(reason["Code"] != "None" for reason in reasons):
            codes = ", ".join(reason["Code"] for reason in reasons)
            raise AwsError(
                "TransactionCanceledException",
                f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
                CancellationReasons=reasons,
            )
        writes: list[Callable[[], None]] = []
        for kind, table, request, old in plans:  # computed first: a failing update leaves nothing written
            if kind == "Put":
                item = _copy(request["Item"])
                writes.append(lambda table=table, item=item: table.put(item))  # type: ignore[misc]
            elif kind == "Update":
                new, _ = _updated(table, request, old)
                writes.append(lambda table=table, new=new: table.put(new))  # type: ignore[misc]
            elif kind == "Delete":
                writes.append(lambda table=table, key=request["Key"]: table.delete(key))  # type: ignore[misc]
            elif kind != "ConditionCheck":
                raise _validation(f"no transaction action {kind}")
        for write in writes:
            write()
        return {}

    def _dynamodb_BatchWriteItem(self, body: dict[str, Any]) -> dict[str, Any]:
        for name, requests in body["RequestItems"].items():
            table = self._table(name)
            for request in requests:
                if "PutRequest" in request:
                    table.put(_copy(request["PutRequest"]["Item"]))
                else:
                    table.delete(request["DeleteRequest"]["Key"])
        return {"UnprocessedItems": {}}

    def _dynamodb_BatchGetItem(self, body: dict[str, Any]) -> dict[str, Any]:
        responses: dict[str, list[Item]] = {}
        for name, request in body["RequestItems"].items():
            table = self._table(name)
            found = [item for key in request["Keys"] if (item := table.get(key)) is not None]
            responses[name] = [_project(item, request) for item in found]
        return {"Responses": responses, "UnprocessedKeys": {}}

    def _dynamodb_Query(self, body: dict[str, Any]) -> dict[str, Any]:
        table = self._table(body["TableName"])
        names = _names_key(body.get("ExpressionAttributeNames"))
        values = body.get("ExpressionAttributeValues", {})
        keys = condition(body["KeyConditionExpression"], names)
        index = body.get("IndexName")
        if index is None:
            hash_name, range_name = table.hash_key, table.range_key
            candidates = self._partition(table, body["KeyConditionExpression"], dict(names), values)
        else:
            if index not in table.indexes:
                raise _validation(f"the table does not have the specified index: {index}")
            hash_name, range_name = table.indexes[index]["HASH"], table.indexes[index].get("RANGE")
            candidates = [item for item in table.all_items() if hash_name in item]
        matched = [item for item in candidates if keys(item, values)]
        if range_name is not None:
            matched.sort(key=lambda item: _typed(item.get(range_name)) or ("", ""))
        if body.get("ScanIndexForward") is False:
            matched.reverse()
        return self._page(table, matched, body, hash_name, range_name)

    def _partition(self, table: Table, expression: str, names: dict[str, str], values: dict[str, Value]) -> list[Item]:
        """The items of the partition a key condition names (its hash key's equality)."""
        for left, right in re.findall(r"(#?[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)", expression):
            if names.get(left, left) == table.hash_key:
                return list(table.items.get(_key_part(_placeholder(values, right)), {}).values())
        raise _validation("Query condition missed key schema element")

    def _dynamodb_Scan(self, body: dict[str, Any]) -> dict[str, Any]:
        table = self._table(body["TableName"])
        return self._page(table, table.all_items(), body, table.hash_key, table.range_key)

    def _page(
        self, table: Table, matched: list[Item], body: dict[str, Any], hash_name: str, range_name: str | None
    ) -> dict[str, Any]:
        start = body.get("ExclusiveStartKey")
        if start is not None:  # after the item with that key, in the order of this answer
            keys = [table.key_of(item) for item in matched]
            where = keys.index(table.key_of(start)) + 1 if table.key_of(start) in keys else len(matched)
            matched = matched[where:]
        limit = body.get("Limit")
        page = matched[:limit] if limit else matched
        answer: dict[str, Any] = {}
        if limit and len(matched) > limit:
            last = page[-1]
            answer["LastEvaluatedKey"] = {
                name: last[name]
                for name in {table.hash_key, table.range_key, hash_name, range_name}
                if name is not None and name in last
            }
        scanned = len(page)
        if "FilterExpression" in body:
            keep = condition(body["FilterExpression"], _names_key(body.get("ExpressionAttributeNames")))
            values = body.get("ExpressionAttributeValues", {})
            page = [item for item in page if keep(item, values)]
        if body.get("Select") == "COUNT":
            return {**answer, "Count": len(page), "ScannedCount": scanned}
        return {**answer, "Items": [_project(i, body) for i in page], "Count": len(page), "ScannedCount": scanned}

    # SQS

    def _sqs_CreateQueue(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["QueueName"]
        queue = self.queues.setdefault(
            name,
            {
                "url": f"{self.base_url}/{ACCOUNT}/{name}",
                "attributes": {**body.get("Attributes", {}), "QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"},
                "sent": 0,
            },
        )
        return {"QueueUrl": queue["url"]}

    def _queue(self, url: str) -> dict[str, Any]:
        queue = self.queues.get(url.rstrip("/").rpartition("/")[2])
        if queue is None:
            raise AwsError("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
        return queue

    def _sqs_GetQueueUrl(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"QueueUrl": self._queue(body["QueueName"])["url"]}

    def _sqs_GetQueueAttributes(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self._queue(body["QueueUrl"])
        wanted = body.get("AttributeNames") or ["All"]
        attributes = {**queue["attributes"], "ApproximateNumberOfMessages": str(queue["sent"])}
        return {"Attributes": {k: v for k, v in attributes.items() if "All" in wanted or k in wanted}}

    def _sqs_SendMessage(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self._queue(body["QueueUrl"])
        queue["sent"] += 1
        return _message_sent(queue["sent"], body)

    def _sqs_SendMessageBatch(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self._queue(body["QueueUrl"])
        if not 1 <= len(body["Entries"]) <= 10:
            raise AwsError("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "1 to 10 entries")
        successful = []
        for entry in body["Entries"]:
            queue["sent"] += 1
            successful.append({"Id": entry["Id"], **_message_sent(queue["sent"], entry)})
        return {"Successful": successful, "Failed": []}

    # Secrets Manager

    def _secret(self, secret_id: str) -> dict[str, Any]:
        for secret in self.secrets.values():
            if secret_id in (secret["Name"], secret["ARN"]):
                return secret
        raise AwsError("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")

    def _secretsmanager_CreateSecret(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["Name"]
        if name in self.secrets:
            raise AwsError("ResourceExistsException", f"the secret {name} already exists")
        arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-{uuid.uuid4().hex[:6]}"
        self.secrets[name] = {"Name": name, "ARN": arn, "SecretString": body.get("SecretString"), "VersionId": ""}
        return self._new_version(self.secrets[name], body.get("SecretString"))

    def _secretsmanager_PutSecretValue(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._new_version(self._secret(body["SecretId"]), body.get("SecretString"))

    def _new_version(self, secret: dict[str, Any], value: str | None) -> dict[str, Any]:
        secret["SecretString"], secret["VersionId"] = value, str(uuid.uuid4())
        return {"ARN": secret["ARN"], "Name": secret["Name"], "VersionId": secret["VersionId"]}

    def _secretsmanager_GetSecretValue(self, body: dict[str, Any]) -> dict[str, Any]:
        secret = self._secret(body["SecretId"])
        if body.get("VersionStage", "AWSCURRENT") != "AWSCURRENT" or body.get("VersionId") not in (
            None,
            secret["VersionId"],
        ):
            raise AwsError("ResourceNotFoundException", "Secrets Manager can't find the specified secret value.")
        return {
            "ARN": secret["ARN"],
            "Name": secret["Name"],
            "VersionId": secret["VersionId"],
            "SecretString": secret["SecretString"],
            "VersionStages": ["AWSCURRENT"],
            "CreatedDate": time.time(),
        }

    def _secretsmanager_DescribeSecret(self, body: dict[str, Any]) -> dict[str, Any]:
        secret = self._secret(body["SecretId"])
        return {
            "ARN": secret["ARN"],
            "Name": secret["Name"],
            "VersionIdsToStages": {secret["VersionId"]: ["AWSCURRENT"]},
        }


def _check(request: dict[str, Any], old: Item | None) -> None:
    """The request's ConditionExpression against the item as it is; ConditionalCheckFailedException if it fails,
    with the item when ReturnValuesOnConditionCheckFailure asks for it."""
    expression = request.get("ConditionExpression")
    if expression is None:
        return
    holds = condition(expression, _names_key(request.get("ExpressionAttributeNames")))
    if holds(old or {}, request.get("ExpressionAttributeValues", {})):
        return
    wanted = old is not None and request.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
    extra: dict[str, Any] = {"Item": old} if wanted else {}
    raise AwsError("ConditionalCheckFailedException", "The conditional request failed", **extra)


def _updated(table: Table, request: dict[str, Any], old: Item | None) -> tuple[Item, set[str]]:
    """The item after the request's UpdateExpression (every operand read from the item before it), and the
    top-level attributes it touched."""
    new = _copy(old) if old is not None else _copy(request["Key"])
    touched: set[str] = set()
    if "UpdateExpression" not in request:
        return new, touched
    values = request.get("ExpressionAttributeValues", {})
    actions = update(request["UpdateExpression"], _names_key(request.get("ExpressionAttributeNames")))
    before = old or {}
    computed = [(a, path, None if o is None else o(before, values)) for a, path, o in actions]
    for action, path, value in computed:
        if str(path[0]) in (table.hash_key, table.range_key):
            raise _validation(f"cannot update attribute {path[0]}: it is part of the key")
        touched.add(str(path[0]))
        if action == "SET":
            if value is None:
                raise _validation("the provided expression refers to an attribute that does not exist in the item")
            _set(new, path, _copy({"v": value})["v"])
        elif action == "REMOVE":
            _remove(new, path)
        else:
            if value is None:
                raise _validation(f"{action} takes a value")
            result = _add(_get(new, path), value, adding=action == "ADD")
            if result is None:
                _remove(new, path)
            else:
                _set(new, path, result)
    return new, touched


def _returned(what: str, old: Item | None, new: Item, touched: set[str]) -> dict[str, Any]:
    if what == "ALL_OLD":
        return {"Attributes": old} if old else {}
    if what == "ALL_NEW":
        return {"Attributes": new}
    if what in ("UPDATED_OLD", "UPDATED_NEW"):
        source = (old or {}) if what == "UPDATED_OLD" else new
        attributes = {name: source[name] for name in touched if name in source}
        return {"Attributes": attributes} if attributes else {}
    return {}


def _project(item: Item, request: dict[str, Any]) -> Item:
    expression = request.get("ProjectionExpression")
    if expression is None:
        return item
    paths = projection(expression, _names_key(request.get("ExpressionAttributeNames")))
    return {str(p[0]): item[str(p[0])] for p in paths if str(p[0]) in item}  # top-level attributes whole


def _message_sent(number: int, entry: dict[str, Any]) -> dict[str, Any]:
    sent = {"MessageId": str(uuid.UUID(int=number)), "MD5OfMessageBody": ""}
    if "MessageGroupId" in entry:
        sent["SequenceNumber"] = str(10**19 + number)
    return sent


# ------------------------------------------------------------------ the server

# X-Amz-Target's prefix: the service it addresses (JSON protocol).
SERVICES = {"DynamoDB_20120810": "dynamodb", "AmazonSQS": "sqs", "secretsmanager": "secretsmanager"}
_ERROR_PREFIX = {
    "dynamodb": "com.amazonaws.dynamodb.v20120810#",
    "sqs": "com.amazonaws.sqs#",
    "secretsmanager": "",
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, latency: float) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.state = State(f"http://{LOOPBACK}:{self.server_address[1]}")
        self.half_latency = latency / 2
        self.lock = threading.Lock()


class _Handler(JsonAnswers):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as AWS's endpoints: botocore's pool reuses the connection
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        prefix, _, operation = (self.headers.get("X-Amz-Target") or "").partition(".")
        service = SERVICES.get(prefix, "")
        if self.server.half_latency:
            time.sleep(self.server.half_latency)
        try:
            if not service:
                raise AwsError("UnknownOperationException", f"no service for X-Amz-Target {prefix!r}")
            body = json.loads(raw or b"{}")
            with self.server.lock:
                answer, status = self.server.state.answer(service, operation, body), 200
        except AwsError as error:
            answer = {"__type": _ERROR_PREFIX.get(service, "") + error.kind, "message": error.message, **error.extra}
            status = error.status
        except Exception as exc:  # a request this stand-in reads wrong: the sender sees a 500, and it is counted
            answer, status = {"__type": "InternalServerError", "message": f"{type(exc).__name__}: {exc}"}, 500
        if self.server.half_latency:
            time.sleep(self.server.half_latency)
        self.answer(status, answer)


class DynamoStandIn(StandInProcess):
    """This stand-in in its own process, for a `with` block: ``url`` is its endpoint."""

    module = "bench.dynamo_standin"


def main(port_file: str, latency_ms: str = str(DEFAULT_LATENCY_MS), time_limit: str = str(DEFAULT_TIME_LIMIT)) -> None:
    server = _Server(float(latency_ms) / 1000)
    serve_bounded(server, port_file, float(time_limit))


if __name__ == "__main__":
    main(*sys.argv[1:])

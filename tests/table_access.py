"""What each function's role may do to GatewayTable, read from template.yaml, and how IAM would judge a
DynamoDB request against it.

Every statement on the table is scoped by ``ForAllValues:StringLike`` on ``dynamodb:LeadingKeys``, the
partition key of every item a request touches. The local stack's emulator (moto) enforces no IAM, so
nothing at run time notices a missing grant: tests/unit/project/test_table_access.py holds the template to the
key families the code builds (igdm.store.keys, onboarding.state), and tests/integration/table_access.py
judges every request the real handlers make during the integration tests with ``authorised`` below.

How IAM authorises each operation (AWS, "Using IAM policy conditions for fine-grained access control"
and "Using IAM with DynamoDB transactions"):
- GetItem, PutItem, UpdateItem, DeleteItem, Query: the action of that name, for the one partition key;
- BatchGetItem, BatchWriteItem: that action, for every partition key in the request;
- TransactWriteItems / TransactGetItems: each item as the underlying PutItem, UpdateItem, DeleteItem or
  GetItem (ConditionCheck as ConditionCheckItem) with its own key. Here every item of one transaction
  must be allowed by the same statement, so the judgement holds however IAM groups their keys;
- Scan (and any request without a key): no leading key at all, and ``ForAllValues`` over an empty set
  is true, so a Scan in a scoped statement would read the whole table. No statement may hold Scan.
- Query on an index: its resource is the index's ARN (``<table ARN>/index/<name>``), which a statement on the
  table does not cover. A statement naming an index may hold Query alone; it is read here as a grant on the key
  pattern ``index:<name>`` (INDEX_PREFIX), and a query of the index is judged against that.
"""

import re
from dataclasses import dataclass
from typing import Any

from local.aws.template import load

TABLE = "GatewayTable"
CONDITION_OPERATOR = "ForAllValues:StringLike"
CONDITION_KEY = "dynamodb:LeadingKeys"
# The item actions LeadingKeys scopes (Scan is not one: it names no key).
ITEM_ACTIONS = frozenset(
    {"GetItem", "BatchGetItem", "Query", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "ConditionCheckItem"}
)
_TRANSACTION_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


INDEX_PREFIX = "index:"


class GrantError(AssertionError):
    """The template grants table access in a form these checks cannot hold to key families."""


@dataclass(frozen=True)
class Grant:
    """One statement on the table: its actions (without the dynamodb: prefix) and key patterns."""

    sid: str
    actions: frozenset[str]
    patterns: tuple[str, ...]

    def allows(self, action: str, keys: tuple[str, ...]) -> bool:
        return action in self.actions and all(any(string_like(p, k) for p in self.patterns) for k in keys)


@dataclass(frozen=True)
class Part:
    action: str
    keys: tuple[str, ...]  # partition key values; empty for a Scan or a request that names none


# One authorisation: all its parts must be allowed by one statement (one part, except transactions).
Authorisation = tuple[Part, ...]


def string_like(pattern: str, value: str) -> bool:
    """IAM's StringLike: case-sensitive, * any run of characters, ? one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _names_table(resource: Any) -> bool:
    return TABLE in repr(resource)


def _statements(template: dict[str, Any], function_id: str) -> list[dict[str, Any]]:
    """The function's own statements, from its SAM Policies or from the role it names."""
    resources = template["Resources"]
    properties = resources[function_id]["Properties"]
    found: list[dict[str, Any]] = []
    if "Role" in properties:
        role = resources[properties["Role"]["Fn::GetAtt"][0]]["Properties"]
        managed = role.get("ManagedPolicyArns", [])
        documents = [p["PolicyDocument"] for p in role.get("Policies", [])]
    else:
        managed = [p for p in properties.get("Policies", []) if isinstance(p, str)]
        documents = [p for p in properties.get("Policies", []) if isinstance(p, dict) and "Statement" in p]
        templates = [
            name for p in properties.get("Policies", []) if isinstance(p, dict) and "Statement" not in p for name in p
        ]
        if any("DynamoDB" in name for name in templates):  # DynamoDBCrudPolicy & co: the whole table
            raise GrantError(f"{function_id}: a SAM DynamoDB policy template grants the whole table")
    if any("DynamoDB" in repr(arn) for arn in managed):
        raise GrantError(f"{function_id}: a managed policy grants DynamoDB")
    for document in documents:
        found.extend(_as_list(document["Statement"]))
    return found


def table_grants(template: dict[str, Any] | None = None, *, strict: bool = True) -> dict[str, list[Grant]]:
    """Every function's statements on the table, each checked to be scoped by LeadingKeys. Not strict,
    an unscoped statement is read as what IAM makes of it (every key), for judging requests alone."""
    template = template or load()
    grants: dict[str, list[Grant]] = {}
    for function_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        grants[function_id] = []
        for statement in _statements(template, function_id):
            actions = [a for a in _as_list(statement.get("Action", [])) if str(a).startswith("dynamodb:")]
            if not actions and not _names_table(statement.get("Resource")):
                continue
            sid = statement.get("Sid", "?")
            where = f"{function_id} {sid}"
            if statement.get("Effect") != "Allow" or "NotAction" in statement or "NotResource" in statement:
                raise GrantError(f"{where}: only Allow statements with Action and Resource are understood")
            index = _index_of(statement["Resource"])
            if index is not None:
                if {a.removeprefix("dynamodb:") for a in actions} != {"Query"}:
                    raise GrantError(f"{where}: a statement on an index holds Query alone")
                grants[function_id].append(Grant(sid, frozenset({"Query"}), (INDEX_PREFIX + index,)))
                continue
            if _as_list(statement["Resource"]) != [{"Fn::GetAtt": [TABLE, "Arn"]}]:
                raise GrantError(f"{where}: a DynamoDB statement names exactly the table or one of its indexes")
            condition = statement.get("Condition", {})
            names = {a.removeprefix("dynamodb:") for a in actions}
            if not strict and not condition:
                grants[function_id].append(Grant(sid, frozenset(names), ("*",)))
                continue
            if list(condition) != [CONDITION_OPERATOR] or list(condition[CONDITION_OPERATOR]) != [CONDITION_KEY]:
                raise GrantError(f"{where}: must be scoped by {CONDITION_OPERATOR} on {CONDITION_KEY} alone")
            if names - ITEM_ACTIONS:  # Scan above all: LeadingKeys cannot scope it
                raise GrantError(f"{where}: {sorted(names - ITEM_ACTIONS)} cannot be scoped by {CONDITION_KEY}")
            patterns = tuple(_as_list(condition[CONDITION_OPERATOR][CONDITION_KEY]))
            if not patterns or any(not p or p[0] in "*?" for p in patterns):
                raise GrantError(f"{where}: every key pattern starts with a literal prefix: {patterns}")
            grants[function_id].append(Grant(sid, frozenset(names), patterns))
    return grants


def _index_of(resource: Any) -> str | None:
    """The index a statement's resource names (``!Sub ${GatewayTable.Arn}/index/<name>``), else None."""
    text = resource.get("Fn::Sub") if isinstance(resource, dict) else None
    prefix = "${" + TABLE + ".Arn}/index/"
    if isinstance(text, str) and text.startswith(prefix) and "*" not in text:
        return text.removeprefix(prefix)
    return None


def authorisations(operation: str, params: dict[str, Any], partition_key: str) -> list[Authorisation]:
    """What IAM checks for one DynamoDB API call (botocore's operation name and parameters)."""

    def key_of(item: dict[str, Any]) -> str:
        return str(item[partition_key]["S"])

    if operation in ("GetItem", "UpdateItem", "DeleteItem"):
        return [(Part(operation, (key_of(params["Key"]),)),)]
    if operation == "PutItem":
        return [(Part(operation, (key_of(params["Item"]),)),)]
    if operation == "Query" and params.get("IndexName"):
        return [(Part(operation, (INDEX_PREFIX + params["IndexName"],)),)]
    if operation == "Query":
        return [(Part(operation, _query_keys(params, partition_key)),)]
    if operation == "BatchGetItem":
        return [(Part(operation, tuple(key_of(k) for r in params["RequestItems"].values() for k in r["Keys"])),)]
    if operation == "BatchWriteItem":
        keys = [
            key_of(w["PutRequest"]["Item"]) if "PutRequest" in w else key_of(w["DeleteRequest"]["Key"])
            for writes in params["RequestItems"].values()
            for w in writes
        ]
        return [(Part(operation, tuple(keys)),)]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        parts = []
        for entry in params["TransactItems"]:
            [(kind, body)] = entry.items()
            parts.append(Part(_TRANSACTION_ACTIONS[kind], (key_of(body["Item"] if kind == "Put" else body["Key"]),)))
        return [tuple(parts)]
    return [(Part(operation, ()),)]  # Scan, DescribeTable ...: no leading key


def _query_keys(params: dict[str, Any], partition_key: str) -> tuple[str, ...]:
    names = {v: k for k, v in params.get("ExpressionAttributeNames", {}).items()}  # attribute -> placeholder
    name = re.escape(names.get(partition_key, partition_key))
    found = re.search(rf"(?<![\w#]){name}\s*=\s*(:\w+)", params.get("KeyConditionExpression", ""))
    if not found:
        raise GrantError(f"cannot find the partition key in the query {params.get('KeyConditionExpression')!r}")
    return (str(params["ExpressionAttributeValues"][found.group(1)]["S"]),)


def authorised(grants: list[Grant], authorisation: Authorisation) -> bool:
    return any(all(g.allows(p.action, p.keys) for p in authorisation) for g in grants)

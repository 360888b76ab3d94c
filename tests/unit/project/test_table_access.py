"""Least privilege on the table: each function's role may touch only the key
families (partition key prefixes) its code builds, with only the actions its code calls.

The families come from the code that builds the keys (igdm.store.keys), so renaming a prefix there
without the template fails here. The actions per family were read from the code, call by
call (the comments name the call sites); tests/integration/table_access.py checks them against every
request the real handlers make during the integration tests, because the emulator enforces no IAM."""

from functools import cache
from typing import Any

import pytest

from igdm.store import keys as table
from tests.table_access import (
    INDEX_PREFIX,
    Grant,
    GrantError,
    Part,
    authorisations,
    authorised,
    string_like,
    table_grants,
)

_ANY = "\x00"


def family(key: str) -> str:
    """The LeadingKeys pattern of the keys a builder makes: its fixed prefix, then anything."""
    return key[: key.index(_ANY)] + "*" if _ANY in key else key


CONVERSATIONS = family(table.conversation_pk(_ANY, _ANY))  # events, window state, UNSETTLED markers
OUTBOUND = family(table.outbound_pk(_ANY))  # outbound message records
MESSAGE_IDS = family(table.message_id_pk(_ANY))  # Meta's mid -> our message
RATES = family(table.rate_pk(_ANY, _ANY))  # the sender's rate state
ACCOUNTS = table.ACCOUNTS_PK  # the one partition of account items
OAUTH_STATES = family(table.oauth_state_pk(_ANY))  # the onboarding's single-use OAuth states
TOKEN_RESCUE = family(table.token_rescue_pk(_ANY))  # a renewed token Secrets Manager refused (TokenRescue)
UNSETTLED = family(table.unsettled_pk(_ANY))  # each account's UNKNOWN messages, for the reconciler
COMMENTS = family(table.comment_pk(_ANY, _ANY))  # customers' comments, for the private-reply rules
ERASURES = family(table.erasure_pk(_ANY))  # erasure requests' audit items
API_KEYS = table.API_KEYS_PK  # the one partition of the HTTP API's keys
KEY_RATES = family(table.rate_pk("key:" + _ANY, "api"))  # each API key's own rate: a part of the RATE# family
INDEX = INDEX_PREFIX + table.ACCOUNT_CUSTOMER_INDEX  # what names an account and a customer, keys only
WEBHOOKS = table.WEBHOOKS_PK  # the one partition of event webhooks' registrations
DELIVERIES = family(table.deliveries_pk(_ANY))  # each event webhook's delivery log

SAMPLE_KEYS = {
    CONVERSATIONS: table.conversation_pk("17841400000000001", "1234567890"),
    OUTBOUND: table.outbound_pk("order-42"),
    MESSAGE_IDS: table.message_id_pk("aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlE"),
    RATES: table.rate_pk("17841400000000001", "text"),
    ACCOUNTS: table.ACCOUNTS_PK,
    OAUTH_STATES: table.oauth_state_pk("nonce"),
    TOKEN_RESCUE: TOKEN_RESCUE.removesuffix("*") + "17841400000000001",
    UNSETTLED: table.unsettled_pk("17841400000000001"),
    COMMENTS: table.comment_pk("17841400000000001", "17999999999999999"),
    ERASURES: table.erasure_pk("Yx3kq0_confirmation-code"),
    API_KEYS: table.API_KEYS_PK,
    INDEX: INDEX,
    WEBHOOKS: table.WEBHOOKS_PK,
    DELIVERIES: table.deliveries_pk("0123456789ab"),
}
# Keys of a family within another (RATE#key:... is RATE#...): checked for what they allow, not in the family test.
SAMPLE_KEYS_WITHIN = {KEY_RATES: table.rate_pk("key:0123456789ab", "api")}

# function -> key family -> the DynamoDB actions its code uses there (and so its role is granted).
EXPECTED: dict[str, dict[str, set[str]]] = {
    "WebhookFunction": {
        # igdm.inbound.event_store: find (BatchGetItem), save and advance_windows (a transaction's Put
        # and Update), overwrite (PutItem), content_events (Query); igdm.store.outbound_records via
        # igdm.inbound.receipts: unsettled (Query), remove_unsettled (DeleteItem of an UNKNOWN message's marker)
        CONVERSATIONS: {"BatchGetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"},
        OUTBOUND: {"GetItem", "UpdateItem"},  # receipts: get, settle, settle_by_echo (DELIVERED, READ)
        MESSAGE_IDS: {"UpdateItem"},  # receipts: receipt, claim_echo
        ACCOUNTS: {"UpdateItem"},  # webhook.heartbeat -> AccountTable.record_webhook
        UNSETTLED: {"DeleteItem"},  # receipts: remove_unsettled, the account's copy of the marker
        COMMENTS: {"UpdateItem"},  # igdm.store.comments.Comments.apply (a transaction of updates)
    },
    "SenderFunction": {
        # igdm.store.conversation_state (GetItem of the window); igdm.store.outbound_records: stored_echoes
        # (Query), add_unsettled (PutItem) and remove_unsettled (DeleteItem) of an UNKNOWN message's marker
        CONVERSATIONS: {"GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"},  # + record_owner
        OUTBOUND: {"GetItem", "PutItem", "UpdateItem"},  # claim, get, begin_part, part_sent, settle ...
        MESSAGE_IDS: {"UpdateItem"},  # link_message_id, claim_echo
        ACCOUNTS: {"Query", "UpdateItem"},  # AccountDirectory: all, mark_needs_reauthorisation
        RATES: {"UpdateItem"},  # igdm.store.rate_limits.RateLimiter
        UNSETTLED: {"PutItem", "DeleteItem"},  # add_unsettled, remove_unsettled: the account's copy
        COMMENTS: {"GetItem", "UpdateItem"},  # igdm.store.comments.Comments: get, mark_replied
    },
    "CallbackFunction": {DELIVERIES: {"UpdateItem"}},  # igdm.store.webhooks.Webhooks.attempted: each attempt logged
    "FanoutFunction": {
        WEBHOOKS: {"Query"},  # igdm.store.webhooks.Webhooks.all, once per batch
        DELIVERIES: {"PutItem", "BatchGetItem", "UpdateItem"},  # Webhooks.record; scrub_message: read, scrubbed
        INDEX: {"Query"},  # Webhooks.scrub_message: a deleted message's deliveries, through its conversation
    },
    "OnboardingFunction": {
        OAUTH_STATES: {"PutItem", "DeleteItem"},  # igdm.store.oauth_states (add, take) via onboarding.state
        ACCOUNTS: {"GetItem", "UpdateItem"},  # igdm.meta.connect -> save, record_check; deauthorize: get, set_status
        ERASURES: {"PutItem", "GetItem"},  # onboarding.data_deletion: the request recorded, its status page
    },
    "AuthorizerFunction": {API_KEYS: {"GetItem"}},  # igdm.store.api_keys.ApiKeys.get
    "ApiFunction": {
        OUTBOUND: {"GetItem"},  # igdm.store.outbound_records.OutboundRecords.view
        KEY_RATES: {"UpdateItem"},  # igdm.store.rate_limits.RateLimiter, class api, per key
        ACCOUNTS: {"GetItem"},  # DELETE /v1/customers/{id}: AccountTable.get refuses an account's id
        ERASURES: {"PutItem"},  # DELETE /v1/customers/{id}: ErasureRequests.add
        API_KEYS: {"GetItem"},  # CM.com's route: its key may be the producttoken in the body (api.service)
        # igdm.store.history: an account's conversation states (BatchGetItem), a conversation's events (Query),
        # its customers through the index
        CONVERSATIONS: {"Query", "BatchGetItem"},
        INDEX: {"Query"},
        # event webhooks: igdm.store.webhooks (add, get, all, delete; deliveries, delivery, redelivering)
        WEBHOOKS: {"PutItem", "GetItem", "Query", "DeleteItem"},
        DELIVERIES: {"Query", "GetItem", "UpdateItem"},
    },
    "EraserFunction": {
        # igdm.store.erasure.StoredData: indexed (the index), partition (Query), existing (BatchGetItem), delete
        # (BatchWriteItem), delete_if_present (DeleteItem); ErasureRequests: get, started/deleted/complete
        INDEX: {"Query"},
        CONVERSATIONS: {"Query", "BatchWriteItem"},
        ACCOUNTS: {"Query", "DeleteItem"},
        UNSETTLED: {"Query", "BatchWriteItem"},
        OUTBOUND: {"BatchGetItem", "BatchWriteItem"},
        MESSAGE_IDS: {"BatchGetItem", "BatchWriteItem"},
        COMMENTS: {"BatchGetItem", "BatchWriteItem"},
        RATES: {"DeleteItem"},
        TOKEN_RESCUE: {"DeleteItem"},  # deleted if present, never read
        ERASURES: {"GetItem", "PutItem", "UpdateItem"},
        DELIVERIES: {"BatchWriteItem"},  # event webhooks' deliveries naming the id, found through the index
    },
    "RefresherFunction": {
        ACCOUNTS: {"Query", "UpdateItem"},  # AccountTable.all, record_check, record_refresh, set_status
        TOKEN_RESCUE: {"GetItem", "PutItem", "DeleteItem"},  # igdm.store.accounts.TokenRescue: get, keep, drop
    },
    "ReconcilerFunction": {
        # What the webhook does with the events it ingests (igdm.inbound), the same calls
        CONVERSATIONS: {"BatchGetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"},
        OUTBOUND: {"GetItem", "UpdateItem"},  # receipts of backfilled echoes; UNKNOWN messages looked up
        MESSAGE_IDS: {"BatchGetItem", "UpdateItem"},  # owners; receipts: receipt, claim_echo
        ACCOUNTS: {"Query", "UpdateItem"},  # AccountTable.all, record_reconciled; AccountDirectory marks 190
        RATES: {"UpdateItem"},  # igdm.store.rate_limits.RateLimiter, class conversations
        UNSETTLED: {"Query", "DeleteItem"},  # account_unsettled, remove_unsettled
    },
}


@cache
def grants() -> dict[str, list[Grant]]:
    return table_grants()  # raises GrantError for a table statement that is not scoped by key family


def granted(function: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for grant in grants()[function]:
        for pattern in grant.patterns:
            found.setdefault(pattern, set()).update(grant.actions)
    return found


def test_the_families_are_the_codes_prefixes() -> None:
    assert ERASURES == "ERASURE#*" and INDEX == "index:AccountCustomer"
    assert [CONVERSATIONS, OUTBOUND, MESSAGE_IDS, RATES, ACCOUNTS, OAUTH_STATES] == [
        "CONV#*",
        "OUT#*",
        "MID#*",
        "RATE#*",
        "ACCOUNTS",
        "OAUTH_STATE#*",
    ]
    assert TOKEN_RESCUE == "TOKEN_RESCUE#*"
    assert UNSETTLED == "UNSETTLED#*"
    assert COMMENTS == "COMMENT#*"


@pytest.mark.parametrize("pattern", sorted(SAMPLE_KEYS))
def test_each_family_pattern_matches_its_own_keys_and_no_other_familys(pattern: str) -> None:
    assert [f for f, key in SAMPLE_KEYS.items() if string_like(pattern, key)] == [pattern]


def test_every_function_of_the_template_is_accounted_for() -> None:
    assert set(grants()) == set(EXPECTED)


@pytest.mark.parametrize("function", sorted(EXPECTED))
def test_each_role_is_granted_exactly_what_its_code_does_on_each_key_family(function: str) -> None:
    assert granted(function) == EXPECTED[function]


@pytest.mark.parametrize("function", sorted(EXPECTED))
def test_the_keys_the_code_builds_are_allowed_for_what_it_does_with_them(function: str) -> None:
    for pattern, actions in EXPECTED[function].items():
        sample = {**SAMPLE_KEYS, **SAMPLE_KEYS_WITHIN}[pattern]
        for action in actions:
            assert authorised(grants()[function], (Part(action, (sample,)),)), (function, action, pattern)
    if function == "ApiFunction":  # its rate grant reaches the keys' rates, never an account's
        assert not authorised(grants()[function], (Part("UpdateItem", (SAMPLE_KEYS[RATES],)),))


def test_the_internet_facing_webhook_cannot_create_or_delete_anything_but_its_conversation_items() -> None:
    webhook = granted("WebhookFunction")
    assert set(webhook) <= {CONVERSATIONS, OUTBOUND, MESSAGE_IDS, ACCOUNTS, UNSETTLED, COMMENTS}
    assert webhook[COMMENTS] == {"UpdateItem"}  # a customer's comment: when it came (updates, never a delete)
    # The account's copy of an UNKNOWN message's marker, once its echo settles it: deleted, nothing else. At
    # worst a message then waits for an echo only, never sent twice.
    assert webhook[UNSETTLED] == {"DeleteItem"}
    for pattern, actions in webhook.items():
        assert not actions & {"Scan", "BatchWriteItem"}, pattern
        if pattern not in (CONVERSATIONS, UNSETTLED, COMMENTS):
            # Records, message ids and accounts are only updated: never created whole or deleted.
            assert actions <= {"GetItem", "UpdateItem"}, pattern
    assert webhook[ACCOUNTS] == {"UpdateItem"}  # the heartbeat; it reads no account
    for key in (SAMPLE_KEYS[RATES], SAMPLE_KEYS[OAUTH_STATES], SAMPLE_KEYS[TOKEN_RESCUE]):
        for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"):
            assert not authorised(grants()["WebhookFunction"], (Part(action, (key,)),)), (action, key)
    for key in (SAMPLE_KEYS[OUTBOUND], SAMPLE_KEYS[MESSAGE_IDS], SAMPLE_KEYS[ACCOUNTS]):
        assert not authorised(grants()["WebhookFunction"], (Part("DeleteItem", (key,)),)), key
        assert not authorised(grants()["WebhookFunction"], (Part("PutItem", (key,)),)), key


def test_only_the_refresher_may_touch_rescued_tokens_and_the_eraser_delete_them() -> None:
    assert sorted(f for f in EXPECTED if TOKEN_RESCUE in granted(f)) == ["EraserFunction", "RefresherFunction"]
    assert granted("EraserFunction")[TOKEN_RESCUE] == {"DeleteItem"}  # never a read


def test_only_the_eraser_api_and_fanout_may_read_the_index_and_only_the_eraser_delete_in_batches() -> None:
    # The API reads it to list an account's conversations (igdm.store.history), the fan-out to find a deleted
    # message's deliveries (igdm.store.webhooks): keys only, nothing more.
    assert sorted(f for f in EXPECTED if INDEX in granted(f)) == ["ApiFunction", "EraserFunction", "FanoutFunction"]
    assert granted("ApiFunction")[INDEX] == granted("FanoutFunction")[INDEX] == {"Query"}
    assert [f for f in EXPECTED if any("BatchWriteItem" in a for a in granted(f).values())] == ["EraserFunction"]


def test_no_role_may_scan_the_table() -> None:
    for function, statements in grants().items():
        assert not authorised(statements, (Part("Scan", ()),)), function
        assert all("Scan" not in g.actions for g in statements), function


def test_an_unscoped_or_whole_table_grant_is_refused() -> None:
    statement: dict[str, Any] = {
        "Sid": "All",
        "Effect": "Allow",
        "Action": ["dynamodb:GetItem"],
        "Resource": {"Fn::GetAtt": ["GatewayTable", "Arn"]},
    }
    properties: dict[str, Any] = {"Policies": [{"Statement": [statement]}]}
    template = {"Resources": {"F": {"Type": "AWS::Serverless::Function", "Properties": properties}}}
    with pytest.raises(GrantError, match="scoped"):
        table_grants(template)
    statement["Condition"] = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["*"]}}
    with pytest.raises(GrantError, match="literal prefix"):
        table_grants(template)
    statement["Condition"] = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["CONV#*"]}}
    statement["Action"] = ["dynamodb:Query", "dynamodb:Scan"]
    with pytest.raises(GrantError, match="Scan"):
        table_grants(template)
    properties["Policies"] = [{"DynamoDBCrudPolicy": {"TableName": "t"}}]
    with pytest.raises(GrantError, match="policy template"):
        table_grants(template)


def test_requests_are_judged_as_iam_judges_them() -> None:
    conversation, record = SAMPLE_KEYS[CONVERSATIONS], SAMPLE_KEYS[OUTBOUND]
    statements = [
        Grant("Conversations", frozenset({"PutItem", "UpdateItem", "BatchGetItem", "Query"}), ("CONV#*",)),
        Grant("Records", frozenset({"GetItem", "UpdateItem"}), ("OUT#*",)),
    ]

    def judged(operation: str, params: dict[str, object]) -> bool:
        return all(authorised(statements, a) for a in authorisations(operation, params, "pk"))

    def key(pk: str) -> dict[str, object]:
        return {"pk": {"S": pk}, "sk": {"S": "x"}}

    assert judged("GetItem", {"Key": key(record)}) and not judged("GetItem", {"Key": key(conversation)})
    assert judged(
        "TransactWriteItems",
        {"TransactItems": [{"Put": {"Item": key(conversation)}}, {"Update": {"Key": key(conversation)}}]},
    )
    # One statement must allow every item of a transaction; nothing here may delete.
    assert not judged(
        "TransactWriteItems",
        {"TransactItems": [{"Update": {"Key": key(conversation)}}, {"Update": {"Key": key(record)}}]},
    )
    assert not judged("TransactWriteItems", {"TransactItems": [{"Delete": {"Key": key(conversation)}}]})
    # ForAllValues: every key of a batch must be in the family.
    assert judged("BatchGetItem", {"RequestItems": {"t": {"Keys": [key(conversation), key(conversation)]}}})
    assert not judged("BatchGetItem", {"RequestItems": {"t": {"Keys": [key(conversation), key(record)]}}})
    query: dict[str, Any] = {
        "KeyConditionExpression": "#p = :v AND begins_with(sk, :s)",
        "ExpressionAttributeNames": {"#p": "pk"},
        "ExpressionAttributeValues": {":v": {"S": conversation}, ":s": {"S": "EVT#"}},
    }
    assert judged("Query", query)
    assert not judged("Query", {**query, "ExpressionAttributeValues": {":v": {"S": record}, ":s": {"S": "x"}}})
    assert not judged("Scan", {}) and not judged("DeleteItem", {"Key": key(conversation)})
    assert string_like("OUT#*", "OUT#") and not string_like("OUT#*", "out#1") and not string_like("OUT#*", "XOUT#1")

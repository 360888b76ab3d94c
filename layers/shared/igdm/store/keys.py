"""The single-table design (docs/data-model.md). Every key the functions build comes from here;
the template's KeySchema and TTL attribute are checked against these names by a test."""

from typing import Any

from igdm.store.attributes import to_attributes

PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "expires_at"


def key(pk: str, sk: str) -> dict[str, Any]:
    """An item's key as GetItem, UpdateItem and DeleteItem take it (both parts strings)."""
    return to_attributes({PARTITION_KEY: pk, SORT_KEY: sk})


CONVERSATION_PK_PREFIX = "CONV#"
CONVERSATION_STATE_SK = "STATE"
EVENT_SK_PREFIX = "EVT#"
NO_CUSTOMER = "-"

# Every item that names both an account and a customer (events, conversation states, outbound records) is
# in this index, keys only: an erasure finds a customer's items, or an account's customers, with a Query,
# never a Scan (igdm.store.erasure). An outbound record without one of the two writes NO_PARTY instead, so
# that it is found too; an index key may not be an empty string.
ACCOUNT_CUSTOMER_INDEX = "AccountCustomer"
INDEX_ACCOUNT = "account_id"
INDEX_CUSTOMER = "customer_id"
NO_PARTY = "-"


def conversation_pk(account_id: str, customer_id: str | None) -> str:
    """All items of one conversation share this partition (events, and its state item)."""
    return f"{CONVERSATION_PK_PREFIX}{account_id}#{customer_id or NO_CUSTOMER}"


def conversation_of(pk: str) -> tuple[str, str | None]:
    """The account and customer of a conversation's partition key (Instagram ids hold no '#')."""
    account_id, _, customer_id = pk.removeprefix(CONVERSATION_PK_PREFIX).partition("#")
    return account_id, None if customer_id == NO_CUSTOMER else customer_id


def event_sk(event_id: str) -> str:
    """Only the deterministic event id: a redelivery must find the same key, and for comments and
    items without their own timestamp the occurrence time is Meta's send time, which can change."""
    return f"{EVENT_SK_PREFIX}{event_id}"


# Accounts: one partition, so the few accounts of a stack are listed with one Query.
ACCOUNTS_PK = "ACCOUNTS"


def account_sk(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


# Outbound messages: one item per idempotency key (its status record and the never-twice guard).
OUTBOUND_SK = "MESSAGE"


def outbound_pk(idempotency_key: str) -> str:
    return f"OUT#{idempotency_key}"


# Meta's message id of a part we sent -> its outbound message; echoes and reads find it by mid.
MESSAGE_ID_PK_PREFIX = "MID#"
MESSAGE_ID_SK = "MID"


def message_id_pk(mid: str) -> str:
    return f"{MESSAGE_ID_PK_PREFIX}{mid}"


# An outbound message whose fate is unknown, in its conversation's partition, until an echo settles it.
UNSETTLED_SK_PREFIX = "UNSETTLED#"


def unsettled_sk(idempotency_key: str) -> str:
    return f"{UNSETTLED_SK_PREFIX}{idempotency_key}"


# The same marker again, in one partition per account (same sort key): the reconciler finds an account's
# UNKNOWN messages there without knowing their conversations, and settles those no echo settled.
UNSETTLED_PK_PREFIX = "UNSETTLED#"


def unsettled_pk(account_id: str) -> str:
    return f"{UNSETTLED_PK_PREFIX}{account_id}"


# A renewed token Secrets Manager kept refusing, kept here until a refresher run moves it there (only the
# refresher's role may read or write these; see igdm.store.accounts.TokenRescue).
TOKEN_RESCUE_PK_PREFIX = "TOKEN_RESCUE#"  # noqa: S105  # nosec B105 # a key prefix, not a secret
TOKEN_RESCUE_SK = "TOKEN"  # noqa: S105  # nosec B105 # a sort key, not a secret


def token_rescue_pk(account_id: str) -> str:
    return f"{TOKEN_RESCUE_PK_PREFIX}{account_id}"


# Send rate state of one account and rate class (text, media, private_reply).
RATE_SK = "RATE"


def rate_pk(account_id: str, rate_class: str) -> str:
    return f"RATE#{account_id}#{rate_class}"


# An onboarding login in progress: its OAuth state, used once (igdm.store.oauth_states).
OAUTH_STATE_PK_PREFIX = "OAUTH_STATE#"
OAUTH_STATE_SK = "STATE"


def oauth_state_pk(nonce: str) -> str:
    return f"{OAUTH_STATE_PK_PREFIX}{nonce}"


# A comment a customer wrote on one of the account's posts (COMMENT#<account>#<comment id> / COMMENT): when it
# came, and the private reply sent to it. Meta allows one private reply per comment, within 7 days.
COMMENT_SK = "COMMENT"


def comment_pk(account_id: str, comment_id: str) -> str:
    return f"COMMENT#{account_id}#{comment_id}"


# An erasure request (Meta's data-deletion callback, tools.accounts forget): its confirmation code, a hash of the
# id, what was deleted and when. Never the id itself (igdm.store.erasure).
ERASURE_PK_PREFIX = "ERASURE#"
ERASURE_SK = "ERASURE"


def erasure_pk(code: str) -> str:
    return f"{ERASURE_PK_PREFIX}{code}"


# The HTTP API's keys: one partition, so tools.keys lists them with one Query; the authorizer reads one by its id,
# which every key carries (igdm.store.api_keys). The key itself is never stored, only its SHA-256.
API_KEYS_PK = "APIKEYS"


def api_key_sk(key_id: str) -> str:
    return f"KEY#{key_id}"


# Event webhooks (igdm.store.webhooks): the registrations in one partition (the fan-out reads them all with one
# Query per batch of events), each registration's delivery log in its own, sorted by time.
WEBHOOKS_PK = "WEBHOOKS"
DELIVERIES_PK_PREFIX = "HOOK#"
DELIVERY_SK_PREFIX = "DLV#"


def webhook_sk(webhook_id: str) -> str:
    return f"HOOK#{webhook_id}"


def deliveries_pk(webhook_id: str) -> str:
    return f"{DELIVERIES_PK_PREFIX}{webhook_id}"


def delivery_sk(delivery_id: str) -> str:
    return f"{DELIVERY_SK_PREFIX}{delivery_id}"

"""The single-table design (docs/data-model.md). Every key the functions build comes from here;
the template's KeySchema and TTL attribute are checked against these names by a test."""

PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "expires_at"

CONVERSATION_STATE_SK = "STATE"
EVENT_SK_PREFIX = "EVT#"


def conversation_pk(account_id: str, customer_id: str | None) -> str:
    """All items of one conversation share this partition (events, and its state item)."""
    return f"CONV#{account_id}#{customer_id or '-'}"


def event_sk(event_id: str) -> str:
    """Only the deterministic event id: a redelivery must find the same key, and for comments and
    items without their own timestamp the occurrence time is Meta's send time, which can change."""
    return f"{EVENT_SK_PREFIX}{event_id}"

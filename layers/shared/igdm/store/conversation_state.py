"""A conversation's state item (CONV#<account>#<customer> / STATE): the customer's last user-initiated
message, which opens Meta's 24-hour and 7-day windows. The webhook moves it forward as messages arrive
(webhook.dynamodb_store, in the same transaction as the events); the sender reads it before each send."""

from typing import Any

from igdm.store.keys import CONVERSATION_STATE_SK, conversation_pk


class ConversationState:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def last_user_message_at(self, account_id: str, customer_id: str) -> int | None:
        """Epoch milliseconds of the customer's last user-initiated message; None if they never wrote."""
        item = self._client.get_item(
            TableName=self._table,
            ConsistentRead=True,
            ProjectionExpression="last_user_message_at",
            Key={"pk": {"S": conversation_pk(account_id, customer_id)}, "sk": {"S": CONVERSATION_STATE_SK}},
        ).get("Item")
        value = (item or {}).get("last_user_message_at", {}).get("N")
        return int(value) if value is not None else None

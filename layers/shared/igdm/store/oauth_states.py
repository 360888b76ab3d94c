"""The onboarding's OAuth states (OAUTH_STATE#<nonce> / STATE): one item per login in progress, created when
the login starts and deleted when Instagram sends the browser back, so a state is used once. What a state
says (its expiry, its signature) is in the state itself (onboarding.state); the item only records that it
has not been used yet."""

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from igdm.store.attributes import from_attributes, to_attributes
from igdm.store.keys import OAUTH_STATE_PK_PREFIX, OAUTH_STATE_SK, TTL_ATTRIBUTE, key, oauth_state_pk

# An unused state's item is left to DynamoDB's TTL; an hour after the state expired it is no use to anyone.
KEPT_AFTER_EXPIRY_SECONDS = 3600


@dataclass(frozen=True)
class OAuthStateItem:
    nonce: str
    expires_at: int  # TTL, epoch seconds: when DynamoDB may remove the item

    def key(self) -> dict[str, Any]:
        return key(oauth_state_pk(self.nonce), OAUTH_STATE_SK)

    def to_item(self) -> dict[str, Any]:
        return {**self.key(), **to_attributes({TTL_ATTRIBUTE: self.expires_at})}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "OAuthStateItem":
        attributes = from_attributes(item)
        return cls(attributes["pk"].removeprefix(OAUTH_STATE_PK_PREFIX), attributes[TTL_ATTRIBUTE])


class OAuthStates:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def add(self, nonce: str, *, state_expires_at: int) -> None:
        """Record a new, unused state (a nonce is random: the condition only guards against a repeat)."""
        self._dynamodb.put_item(
            TableName=self._table,
            Item=OAuthStateItem(nonce, state_expires_at + KEPT_AFTER_EXPIRY_SECONDS).to_item(),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def take(self, nonce: str) -> bool:
        """Use the state up: True the first time, False when it was used already (or never recorded). The
        conditional delete is the atomic check, so of two concurrent callbacks only one gets True."""
        try:
            self._dynamodb.delete_item(
                TableName=self._table,
                Key=key(oauth_state_pk(nonce), OAUTH_STATE_SK),
                ConditionExpression="attribute_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

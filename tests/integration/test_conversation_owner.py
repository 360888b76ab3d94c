"""Who answers a conversation, on moto's DynamoDB (igdm.store.conversation_state): recorded only forward, read
in the same request as the window, and an idle thread has no owner."""

from typing import Any

from igdm.store.conversation_state import GATEWAY_OWNER, ConversationState, ConversationView
from tests.integration.conftest import MOTO_TABLE

A, C = "17841400000000001", "6543210987654321"


def test_the_owner_moves_only_forward_and_is_read_with_the_window(dynamodb: Any) -> None:
    state = ConversationState(dynamodb, MOTO_TABLE)
    assert state.view(A, C) == ConversationView(None, None)  # no item: never wrote, no handover
    assert state.record_owner(A, C, "1217981644879628", 2_000)
    assert not state.record_owner(A, C, GATEWAY_OWNER, 1_000)  # an older handover, delivered late
    assert state.view(A, C) == ConversationView(None, "1217981644879628")
    assert state.record_owner(A, C, None, 3_000)  # released: nobody
    assert state.view(A, C).thread_owner is None
    item = dynamodb.get_item(TableName=MOTO_TABLE, Key={"pk": {"S": f"CONV#{A}#{C}"}, "sk": {"S": "STATE"}})["Item"]
    assert item["thread_owner_at"] == {"N": "3000"} and "expires_at" in item

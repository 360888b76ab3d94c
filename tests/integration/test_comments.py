"""Customers' comments on moto's DynamoDB (igdm.store.comments): recorded in batches the webhook's time allows,
kept as first seen on a redelivery, and replied to once."""

from datetime import UTC, datetime
from typing import Any

import pytest

from igdm.contracts.events import Comment, EventKind, InboundEvent
from igdm.store.comments import Comments
from tests.integration.conftest import MOTO_TABLE

ACCOUNT = "17841400000000001"


@pytest.mark.usefixtures("transactions_at_aws_cost")
def test_a_posts_thousand_comments_are_recorded_in_ten_requests_and_a_redelivery_keeps_their_replies(
    dynamodb: Any,
) -> None:
    def comment(n: int, at: int) -> InboundEvent:
        moment = datetime.fromtimestamp(at, UTC)
        return InboundEvent(
            event_id=f"e{n}",
            kind=EventKind.COMMENT,
            account_id=ACCOUNT,
            customer_id=f"90000{n}",
            conversation_id=f"{ACCOUNT}:90000{n}",
            direction="inbound",
            source="changes",
            user_initiated=False,
            occurred_at=moment,
            received_at=moment,
            comment=Comment(field="comments", comment_id=f"c{n}"),
            raw={},
        )

    calls: list[str] = []
    dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    comments = Comments(dynamodb, MOTO_TABLE)
    assert comments.apply([comment(n, 1_800_000_000) for n in range(1000)]) == 1000
    assert calls == ["TransactWriteItems"] * 10
    assert comments.mark_replied(ACCOUNT, "c7", "reply-7")
    comments.apply([comment(7, 1_800_000_500)])  # Meta delivers it again, later
    seen = comments.get(ACCOUNT, "c7")
    assert seen is not None and (seen.occurred_at_ms, seen.replied_by) == (1_800_000_000_000, "reply-7")
    assert not comments.mark_replied(ACCOUNT, "c7", "another-reply")


def test_a_comment_meta_sent_without_its_author_is_recorded_without_a_commenter(dynamodb: Any) -> None:
    """Found by make chaos (webhook fuzzing, seed 674385262): a comment without "from" left the update naming a
    value it did not define, and the webhook answered 503 to every redelivery."""
    moment = datetime.fromtimestamp(1_800_000_000, UTC)
    anonymous = InboundEvent(
        event_id="e-anonymous",
        kind=EventKind.COMMENT,
        account_id=ACCOUNT,
        customer_id=None,
        conversation_id=ACCOUNT,
        direction="inbound",
        source="changes",
        user_initiated=False,
        occurred_at=moment,
        received_at=moment,
        comment=Comment(field="comments", comment_id="c-anonymous"),
        raw={},
    )
    comments = Comments(dynamodb, MOTO_TABLE)
    assert comments.apply([anonymous]) == 1
    seen = comments.get(ACCOUNT, "c-anonymous")
    assert seen is not None and (seen.commenter_id, seen.occurred_at_ms) == (None, 1_800_000_000_000)

"""The Conversations API client: Meta's answers read as documented, every page followed as Meta links it,
times in both of Graph's forms, and the token never sent to another host."""

from typing import Any

import pytest

from igdm.meta.instagram_login import InstagramLogin, LoginError
from reconciler.conversations import ConversationsClient, MessageGone

GRAPH = "https://graph.instagram.com"


class RecordingLogin(InstagramLogin):
    """The real path-or-URL resolution of InstagramLogin.get, answering from ``pages`` by URL."""

    def __init__(self, pages: dict[str, Any]) -> None:
        super().__init__(graph_base_url=GRAPH, api_version="v24.0", oauth_token_url="")
        self.pages = pages
        self.requested: list[tuple[str, dict[str, str] | None, str | None]] = []

    def _call(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        self.requested.append((url, params, token))
        answer = self.pages[url]
        if isinstance(answer, LoginError):
            raise answer
        return dict(answer)


def test_conversations_follow_paging_next_verbatim_and_stop_at_the_first_older_than_since() -> None:
    second = f"{GRAPH}/v24.0/1784/conversations?platform=instagram&after=QVFI"
    login = RecordingLogin(
        {
            f"{GRAPH}/v24.0/1784/conversations": {
                "data": [
                    {"id": "c3", "updated_time": "2026-01-02T03:04:05+0000"},
                    {"id": "c2", "updated_time": 1767322000},
                ],
                "paging": {"cursors": {"after": "QVFI"}, "next": second},
            },
            second: {"data": [{"id": "c1", "updated_time": "1767320000"}, {"id": "c0", "updated_time": 1000}]},
        }
    )
    calls: list[int] = []
    found = list(
        ConversationsClient(login).conversations("tok", "1784", since=1767000000, pace=lambda: calls.append(1))
    )
    assert [(c.conversation_id, c.updated_at) for c in found] == [
        ("c3", 1767323045.0),  # ISO with +0000
        ("c2", 1767322000.0),  # Unix seconds, as a number (date_format=U)
        ("c1", 1767320000.0),  # and as digits
    ]
    assert [r[0] for r in login.requested] == [f"{GRAPH}/v24.0/1784/conversations", second]
    assert login.requested[0][1] == {"platform": "instagram"} and {r[2] for r in login.requested} == {"tok"}
    assert len(calls) == 2  # each call paced


def test_every_message_id_of_a_conversation_across_its_pages() -> None:
    second = f"{GRAPH}/v24.0/c1?fields=messages&after=X"
    login = RecordingLogin(
        {
            f"{GRAPH}/v24.0/c1": {
                "id": "c1",
                "messages": {
                    "data": [{"id": "m2", "created_time": "2026-01-02T03:04:05+0000"}],
                    "paging": {"next": second},
                },
            },
            second: {"data": [{"id": "m1", "created_time": 1767323000}]},
        }
    )
    refs = ConversationsClient(login).messages("tok", "c1", pace=lambda: None)
    assert [(r.message_id, r.created_at) for r in refs] == [("m2", 1767323045.0), ("m1", 1767323000.0)]


def test_a_message_is_read_with_its_sender_recipients_text_and_media() -> None:
    login = RecordingLogin(
        {
            f"{GRAPH}/v24.0/m1": {
                "id": "m1",
                "created_time": "2026-01-02T03:04:05+0000",
                "from": {"username": "customer", "id": "9001"},
                "to": {"data": [{"username": "shop", "id": "1784"}]},
                "message": "",
                "attachments": {"data": [{"image_data": {"url": "https://cdn/i.jpg", "width": 1}}]},
            }
        }
    )
    detail = ConversationsClient(login).message("tok", "m1", pace=lambda: None)
    assert (detail.sender_id, detail.recipient_ids, detail.text, detail.attachments) == (
        "9001",
        ("1784",),
        None,
        (("image", "https://cdn/i.jpg"),),
    )
    assert login.requested[0][1] == {"fields": "id,created_time,from,to,message,attachments"}


def test_a_message_beyond_the_20_most_recent_is_gone_and_other_refusals_stay_refusals() -> None:
    gone = LoginError("(#100) This message has been deleted", 400, 100)
    throttled = LoginError("(#80002) too many calls", 400, 80002, transient=True)
    login = RecordingLogin({f"{GRAPH}/v24.0/old": gone, f"{GRAPH}/v24.0/busy": throttled})
    client = ConversationsClient(login)
    with pytest.raises(MessageGone):
        client.message("tok", "old", pace=lambda: None)
    with pytest.raises(LoginError) as refused:
        client.message("tok", "busy", pace=lambda: None)
    assert refused.value.code == 80002


def test_a_paging_link_to_another_host_is_not_followed() -> None:
    login = RecordingLogin(
        {f"{GRAPH}/v24.0/c1": {"id": "c1", "messages": {"data": [], "paging": {"next": "https://evil.example/steal"}}}}
    )
    with pytest.raises(LoginError, match="away from the Graph API"):
        ConversationsClient(login).messages("tok", "c1", pace=lambda: None)
    assert [r[0] for r in login.requested] == [f"{GRAPH}/v24.0/c1"]  # the token went nowhere else

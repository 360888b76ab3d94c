"""The webhook's per-event work, cut without changing what it answers: the nesting walk only for a body with enough
brackets, the document copied only for a lone surrogate, and a text message's event id hashed once."""

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from igdm.inbound import ingest as ingest_module
from igdm.inbound import text_messages
from igdm.inbound.text_messages import SignedBody
from igdm.runtime.unicode import without_lone_surrogates
from local.harnesses.webhook_in_memory import MemoryQueue, MemoryStore
from local.samples import meta as m
from local.samples.strategies import json_values
from webhook import service
from webhook.service import MAX_NESTING, Rejected, _document, _has_lone_surrogate


def nested(depth: int) -> bytes:
    """A body whose object is ``depth`` containers deep."""
    return ('{"a":' + "[" * (depth - 1) + "1" + "]" * (depth - 1) + "}").encode()


@pytest.mark.parametrize("depth", [1, 2, MAX_NESTING - 1, MAX_NESTING])
def test_a_body_up_to_the_limit_is_parsed(depth: int) -> None:
    assert _document(nested(depth))["a"] is not None


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 200, 5000])
def test_a_deeper_body_is_refused_with_its_depth(depth: int) -> None:
    with pytest.raises(Rejected) as caught:
        _document(nested(depth))
    assert (caught.value.status, caught.value.reason) == (
        400,
        f"body is nested {depth} levels deep; the limit is {MAX_NESTING}",
    )


def test_brackets_in_strings_only_cost_a_walk_never_a_refusal() -> None:
    body = json.dumps({"a": "[" * 500, "b": [{"c": "{" * 100}]}).encode()
    assert service._may_be_too_deep(body)
    assert _document(body)["b"] == [{"c": "{" * 100}]


def depth(value: Any) -> int:
    """How many containers deep ``value`` goes, counted the obvious way."""
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
    if children is None:
        return 0
    return 1 + max((depth(child) for child in children), default=0)


@settings(max_examples=500, deadline=None)
@given(document=st.dictionaries(st.text(max_size=2), json_values, max_size=4))
def test_the_walk_counts_the_depth(document: dict[str, Any]) -> None:
    assert service._nesting_depth(document) == depth(document)
    assert service._nesting_depth({"a": [{"b": {}}, [[[]]]], "c": 1}) == 5


ESCAPES = ["\\ud83d", "\\ude00", "\\uD83D", "\\uDE00", "\\udbff", "\\udc00", "\\\\", '\\"', "\\u005c", "\\n", "a", "u"]


@settings(max_examples=2000, deadline=None)
@given(parts=st.lists(st.sampled_from(ESCAPES), max_size=8), in_key=st.booleans())
def test_the_document_is_cleaned_exactly_when_it_holds_half_a_pair(parts: list[str], in_key: bool) -> None:
    text = "".join(parts)
    body = ('{"' + text + '":1}' if in_key else '{"a":"' + text + '"}').encode()
    try:
        parsed = json.loads(body)
    except ValueError:
        return
    cleaned = without_lone_surrogates(parsed)
    assert _has_lone_surrogate(body) == (cleaned != parsed)
    assert _document(body) == cleaned


def test_an_emoji_keeps_the_document_as_parsed() -> None:
    body = m.body(m.envelope(m.text(words="\U0001f600")))
    assert b"\\ud83d\\ude00" in json.dumps(json.loads(body)).encode()
    assert not _has_lone_surrogate(json.dumps(json.loads(body)).encode())


def test_a_text_messages_event_id_is_hashed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deletion probe asks for a message's own event id only for events keyed otherwise (edits, unknowns)."""
    asked: list[str] = []
    original = text_messages.message_event_id

    def counting(account_id: str, message_id: str) -> str:
        asked.append(message_id)
        return original(account_id, message_id)

    monkeypatch.setattr("igdm.inbound.ingest.message_event_id", counting)
    items = [m.text(mid=f"m_{i}", ts=m.T0 + i) for i in range(20)] + [m.edited(mid="m_3")]
    body = SignedBody("instagram", m.envelope(*items)["entry"])
    result = ingest_module.ingest(body, m.RECEIVED_MS, MemoryStore(), MemoryQueue())
    assert result.published == 21
    assert asked == ["m_3"]

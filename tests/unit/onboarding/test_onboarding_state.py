"""Invite links and OAuth states: whatever arrives in place of one (non-ASCII, half a surrogate pair) is
refused as invalid, never raised as an error (which the handler answers with a 503); each refusal says why, for
the page that tells the person what to do."""

from typing import Any

import pytest
from botocore.exceptions import ClientError

from onboarding.state import Refusal, StateRefused, StateStore, check_invite, make_invite

SECRET = "an-onboarding-state-key-0123456789abcdef"
NOW = 1_790_000_000.0


class _Table:
    """put_item and delete_item as DynamoDB does them for a state: the delete succeeds once."""

    def __init__(self) -> None:
        self.items: set[str] = set()

    def put_item(self, **call: Any) -> None:
        self.items.add(call["Item"]["pk"]["S"])

    def delete_item(self, **call: Any) -> None:
        pk = call["Key"]["pk"]["S"]
        if pk not in self.items:
            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "DeleteItem")
        self.items.remove(pk)


def test_a_valid_invite_passes() -> None:
    check_invite(SECRET, make_invite(SECRET, valid_seconds=3600, now=NOW), now=NOW)


@pytest.mark.parametrize(
    "invite",
    [
        "1790003600.\u00e9",  # compare_digest raises TypeError on a non-ASCII str
        "1790003600.\u00e9" + "A" * 42,
        "\u00e9.abc",
        "\u00b2.abc",  # a digit to isdigit(), not to int()
        "\u0661\u0667\u0669\u0660\u0660\u0660\u0663\u0666\u0660\u0660.abc",  # Arabic-Indic digits
        "1790003600.\ud800",  # half a surrogate pair: not even encodable
        "\ud800.abc",
    ],
    ids=[
        "e-acute",
        "e-acute-long",
        "non-ascii-expiry",
        "superscript-two",
        "arabic-indic-digits",
        "lone-surrogate",
        "lone-surrogate-expiry",
    ],
)
def test_a_non_ascii_invite_is_refused_as_invalid(invite: str) -> None:
    with pytest.raises(StateRefused, match="not valid"):
        check_invite(SECRET, invite, now=NOW)


def test_a_non_ascii_character_in_a_valid_invite_makes_it_invalid() -> None:
    expires, _, signature = make_invite(SECRET, valid_seconds=3600, now=NOW).partition(".")
    with pytest.raises(StateRefused, match="not valid"):
        check_invite(SECRET, f"{expires}.{signature[:-1]}\u00e9", now=NOW)


def test_a_state_is_consumed_once_with_its_cookie() -> None:
    table = _Table()
    store = StateStore(table, "t", SECRET)
    state = store.issue(now=NOW)
    assert store.consume(state.value, cookie_nonce=state.nonce, now=NOW) == state.nonce
    assert table.items == set()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda nonce, expires, signature: f"{nonce}.{expires}.{signature[:-1]}\u00e9",
        lambda nonce, expires, signature: f"{nonce}.{expires}.\u00e9",
        lambda nonce, expires, signature: f"\u00e9{nonce}.{expires}.{signature}",
        lambda nonce, expires, signature: f"{nonce}.\u00b2.{signature}",
        lambda nonce, expires, signature: f"{nonce}.{expires}.{signature[:-1]}\ud800",
        lambda nonce, expires, signature: f"\ud800.{expires}.{signature}",  # _sign cannot even encode it
    ],
    ids=[
        "signature-e-acute",
        "signature-only-e-acute",
        "nonce-e-acute",
        "expiry-superscript",
        "signature-lone-surrogate",
        "nonce-lone-surrogate",
    ],
)
def test_a_non_ascii_state_is_refused_as_not_issued_here(tamper: Any) -> None:
    table = _Table()
    store = StateStore(table, "t", SECRET)
    state = store.issue(now=NOW)
    with pytest.raises(StateRefused, match="not one this gateway issued"):
        store.consume(tamper(*state.value.split(".")), cookie_nonce=state.nonce, now=NOW)
    assert len(table.items) == 1  # still there: the browser that started it can finish it


@pytest.mark.parametrize("cookie", ["\u00e9", "\u00e9" * 32, "\ud800"], ids=["e-acute", "long", "lone-surrogate"])
def test_a_non_ascii_cookie_is_refused_as_another_browsers(cookie: str) -> None:
    table = _Table()
    store = StateStore(table, "t", SECRET)
    state = store.issue(now=NOW)
    with pytest.raises(StateRefused, match="another browser"):
        store.consume(state.value, cookie_nonce=cookie, now=NOW)
    assert len(table.items) == 1


def _refusal(refused: Any) -> Refusal | None:
    with pytest.raises(StateRefused) as caught:
        refused()
    return caught.value.reason


def test_each_refusal_names_its_reason_for_the_page() -> None:
    invite = make_invite(SECRET, valid_seconds=60, now=NOW)
    assert _refusal(lambda: check_invite(SECRET, None, now=NOW)) == Refusal.MISSING
    assert _refusal(lambda: check_invite(SECRET, "1.abc", now=NOW)) == Refusal.NOT_ISSUED_HERE
    assert _refusal(lambda: check_invite(SECRET, invite, now=NOW + 61)) == Refusal.EXPIRED
    store = StateStore(_Table(), "t", SECRET)
    state = store.issue(now=NOW)
    assert _refusal(lambda: store.consume("", cookie_nonce=state.nonce, now=NOW)) == Refusal.MISSING
    forged = state.value.rsplit(".", 1)[0] + ".forged"
    assert _refusal(lambda: store.consume(forged, cookie_nonce=state.nonce, now=NOW)) == Refusal.NOT_ISSUED_HERE
    assert _refusal(lambda: store.consume(state.value, cookie_nonce=state.nonce, now=NOW + 901)) == Refusal.EXPIRED
    assert _refusal(lambda: store.consume(state.value, cookie_nonce="another", now=NOW)) == Refusal.OTHER_BROWSER
    assert store.consume(state.value, cookie_nonce=state.nonce, now=NOW) == state.nonce
    assert _refusal(lambda: store.consume(state.value, cookie_nonce=state.nonce, now=NOW)) == Refusal.USED

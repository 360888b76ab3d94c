"""Which message an echo settles when the Send API's answer never came (igdm.meta.echoes)."""

import pytest

from igdm.meta.echoes import (
    CLOCK_SKEW_MS,
    Echo,
    Lookup,
    Unsettled,
    fingerprint,
    look_up,
    marker,
    sent_by_gateway,
    settled_by,
    settles,
)

OURS = frozenset({"1122334455667788"})
TEXT = fingerprint("Your order ships tomorrow", None)
FILE = fingerprint(None, "file")


@pytest.mark.parametrize(
    ("app_id", "metadata", "ids", "expected"),
    [
        (None, marker("k", 0), OURS, True),  # our marker, Meta names no app
        ("1122334455667788", None, OURS, True),  # our app, no metadata returned
        ("9999", marker("k", 0), OURS, False),  # another app copying the marker
        ("9999", None, OURS, False),  # another app
        (None, "SENT_FROM_OTHER_TOOL", OURS, False),  # another tool's metadata
        (None, None, OURS, None),  # a person in the Instagram app, or an echo that says nothing
        ("1122334455667788", None, frozenset(), None),  # no app id configured to compare with
    ],
)
def test_whether_the_gateway_sent_an_echo(
    app_id: str | None, metadata: str | None, ids: frozenset[str], expected: bool | None
) -> None:
    assert sent_by_gateway(app_id, metadata, ids) is expected


def waiting(key: str, print_: str = TEXT, started: int = 10_000, ended: int = 20_000) -> Unsettled:
    return Unsettled(key, print_, marker(key, 0), started, ended)


def test_a_marker_settles_the_message_it_names_whatever_the_others() -> None:
    echo = Echo("m_1", TEXT, marker("b", 0), 99_000)  # long after b's attempt: the marker is what counts
    assert settled_by(echo, [waiting("a"), waiting("b")]) == "b"


def test_a_marker_for_another_part_settles_nothing() -> None:
    assert settled_by(Echo("m_1", TEXT, marker("a", 1), 15_000), [waiting("a")]) is None


def test_without_a_marker_one_message_sent_then_with_the_same_content() -> None:
    assert settled_by(Echo("m_1", TEXT, None, 15_000), [waiting("a"), waiting("b", FILE)]) == "a"


@pytest.mark.parametrize("occurred", [10_000 - CLOCK_SKEW_MS - 1, 20_001])
def test_without_a_marker_an_echo_stamped_outside_the_attempt_settles_nothing(occurred: int) -> None:
    assert settled_by(Echo("m_1", TEXT, None, occurred), [waiting("a")]) is None


def test_without_a_marker_two_possible_messages_settle_neither() -> None:
    assert settled_by(Echo("m_1", TEXT, None, 15_000), [waiting("a"), waiting("b", started=14_000)]) is None


def test_a_message_is_settled_only_by_the_one_echo_that_fits() -> None:
    a = waiting("a")
    assert settles(a, [Echo("m_1", TEXT, None, 12_000)], [a]) == Echo("m_1", TEXT, None, 12_000)
    assert settles(a, [Echo("m_1", TEXT, None, 12_000), Echo("m_2", TEXT, None, 13_000)], [a]) is None
    assert settles(a, [Echo("m_1", TEXT, marker("a", 0), 12_000), Echo("m_2", TEXT, None, 30_000)], [a]) == Echo(
        "m_1", TEXT, marker("a", 0), 12_000
    )


# ---- an UNKNOWN message looked up in its conversation (Conversations API: no marker, times to the second)


def shown(mid: str, at_ms: int, print_: str = TEXT) -> Echo:
    """A message the account sent, as the Conversations API shows it: stamped within the second at_ms."""
    return Echo(mid, print_, None, at_ms, 999)


def test_the_one_message_sent_during_the_attempt_with_its_content_is_it() -> None:
    a = waiting("a")
    found = shown("m_1", 15_000)
    assert look_up(a, [shown("m_0", 2_000), found, shown("m_2", 25_000, FILE)], [a]) == Lookup(found=found)


def test_a_message_stamped_within_the_second_the_attempt_began_may_be_it() -> None:
    a = waiting("a")
    early = shown("m_1", 10_000 - CLOCK_SKEW_MS - 999)  # Meta's second ends as the skew allowance begins
    assert look_up(a, [early], [a]) == Lookup(found=early)
    assert look_up(a, [shown("m_1", 10_000 - CLOCK_SKEW_MS - 1_000)], [a]) == Lookup()  # a second earlier
    assert look_up(a, [shown("m_1", 20_001)], [a]) == Lookup()  # after the attempt ended


def test_nothing_with_its_content_during_the_attempt_means_it_never_reached_instagram() -> None:
    a = waiting("a")
    assert look_up(a, [shown("m_1", 15_000, FILE), shown("m_2", 40_000)], [a]) == Lookup()
    assert look_up(a, [], [a]) == Lookup()


def test_two_candidates_decide_nothing() -> None:
    a = waiting("a")
    lookup = look_up(a, [shown("m_1", 12_000), shown("m_2", 13_000)], [a])
    assert lookup.found is None and lookup.undecided == "2 messages sent during its attempt have its content"


def test_a_match_another_unknown_message_could_also_be_decides_nothing() -> None:
    a, b = waiting("a"), waiting("b", started=14_000, ended=30_000)
    lookup = look_up(a, [shown("m_1", 15_000)], [a, b])
    assert lookup.found is None and lookup.undecided is not None and "same content" in lookup.undecided


@pytest.mark.parametrize(
    ("candidate", "sent"),
    [
        (fingerprint(None, "template"), FILE),  # a template may show as anything: a message then decides nothing
        (TEXT, fingerprint(None, None)),  # a message that shows neither text nor media could be it
    ],
    ids=["template-sent", "nothing-shown"],
)
def test_absence_counts_only_when_every_message_of_the_attempt_could_be_compared(candidate: str, sent: str) -> None:
    a = waiting("a", candidate)
    assert look_up(a, [shown("m_1", 15_000, sent)], [a]).undecided is not None
    assert look_up(a, [shown("m_1", 40_000, sent)], [a]) == Lookup()  # after its attempt: not it

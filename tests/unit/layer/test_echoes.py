"""Which message an echo settles when the Send API's answer never came (igdm.meta.echoes)."""

import pytest

from igdm.meta.echoes import CLOCK_SKEW_MS, Echo, Unsettled, fingerprint, marker, sent_by_gateway, settled_by, settles

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

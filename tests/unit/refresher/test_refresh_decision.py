"""When the refresher calls refresh_access_token (instagram-platform.md §9: at least 24 hours old,
not expired), to the second."""

import pytest

from refresher.service import DAY, EXPIRED, MIN_TOKEN_AGE_SECONDS, NOT_DUE, REFRESH, TOO_YOUNG, refresh_decision

NOW = 1_800_000_000.0
WINDOW = 30 * DAY


@pytest.mark.parametrize(
    ("refreshed_ago", "expires_in", "expected"),
    [
        (23 * 3600, 5 * DAY, TOO_YOUNG),  # due, but Meta refuses a token younger than a day
        (MIN_TOKEN_AGE_SECONDS - 1, 5 * DAY, TOO_YOUNG),
        (MIN_TOKEN_AGE_SECONDS, 5 * DAY, REFRESH),
        (40 * DAY, WINDOW, REFRESH),  # exactly at the window's edge: due
        (40 * DAY, WINDOW + 1, NOT_DUE),
        (40 * DAY, 1, REFRESH),
        (40 * DAY, 0, EXPIRED),  # expired the moment it expires: only a new login helps
        (40 * DAY, -DAY, EXPIRED),
        (None, 5 * DAY, REFRESH),  # a pasted token of unknown age, due: Meta tells (code 100 if too young)
        (2 * DAY, None, REFRESH),  # unknown expiry: learnt by refreshing
        (None, None, REFRESH),
        (3600, None, TOO_YOUNG),
    ],
)
def test_the_decision_at_each_edge(refreshed_ago: float | None, expires_in: float | None, expected: str) -> None:
    decision = refresh_decision(
        NOW,
        refreshed_at=None if refreshed_ago is None else NOW - refreshed_ago,
        expires_at=None if expires_in is None else NOW + expires_in,
        window_seconds=WINDOW,
    )
    assert decision == expected

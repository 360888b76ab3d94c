"""Graph API versions: the one the gateway pins by default, and when Meta retires each.

Meta releases a Graph version about twice a year and retires each about two years later; a call to a retired
version fails. The dates are Meta's published schedule as ../shared/reference/field-2026.md records it
(2026: v25.0 on 2026-02-18, v26.0 on 2026-07-29). The refresher publishes the days left to the pinned
version's sunset (GraphApiSunsetAlarm at 90), so no deployment silently falls off a retired version: add a
version's date here when Meta announces it, and move GraphApiVersion on before the alarm's 90 days run out.
"""

from datetime import UTC, date, datetime

DEFAULT_GRAPH_API_VERSION = "v25.0"
SUNSETS: dict[str, date] = {
    "v20.0": date(2026, 9, 24),
    "v21.0": date(2027, 1, 21),
    "v22.0": date(2027, 5, 20),
    "v23.0": date(2027, 10, 8),
    "v24.0": date(2028, 2, 18),
    "v25.0": date(2028, 7, 29),
}


def days_to_sunset(version: str, now: float) -> float | None:
    """Days from ``now`` until Meta retires ``version`` (negative once it has); None when its date is unknown."""
    sunset = SUNSETS.get(version)
    if sunset is None:
        return None
    at = datetime(sunset.year, sunset.month, sunset.day, tzinfo=UTC).timestamp()
    return (at - now) / 86_400

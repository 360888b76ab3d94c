"""Meta's webhook values as plain Python: how ids and times are read, shared by the pydantic models of
igdm.inbound.meta_payload and the pydantic-free path of a text message (igdm.inbound.text_messages)."""

import math
from typing import Any


def as_id(value: Any) -> Any:
    # bool is an int subclass; an id of `true` is not an id.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


# Meta's ids are digits, and mids base64-like text: printable ASCII. Anything else in an id field is
# not an id, and must not reach a table key or a queue's message group id.
ID_PATTERN = r"^[!-~]{1,256}$"


_SECONDS_CEILING = 100_000_000_000  # below this an epoch value is seconds (year 5138 in seconds)
_MILLIS_CEILING = 100_000_000_000_000  # above this it is microseconds
MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant a datetime can hold


def as_epoch_ms(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")  # pydantic would take true as 1
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text) if "." in text or "e" in text.lower() else int(text)
        except ValueError:
            return value
    if isinstance(value, float) and not math.isfinite(value):
        return None if value != value else -1  # NaN / infinities: let the range check reject them
    if isinstance(value, (int, float)):
        try:
            if value < _SECONDS_CEILING:
                value = value * 1000
            elif value >= _MILLIS_CEILING:
                value = value / 1000
            return int(value)
        except OverflowError:  # -1e306 * 1000 is -inf, 10**400 / 1000 no float: far out of range either way
            return -1
    return value


def as_epoch_ms_or_none(value: Any) -> int | None:
    """entry.time is only a fallback: an unusable one is dropped, never a reason to refuse the batch."""
    try:
        converted = as_epoch_ms(value)
    except (ValueError, OverflowError):
        return None
    if isinstance(converted, int) and not isinstance(converted, bool) and 0 <= converted <= MAX_EPOCH_MS:
        return converted
    return None


def as_list(value: Any) -> list[Any]:
    """null is no items, and a lone object one item: neither is a reason to refuse a signed batch."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


HANDOVER_KEYS = ("pass_thread_control", "take_thread_control", "request_thread_control", "app_roles")

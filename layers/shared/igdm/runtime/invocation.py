"""How long the current invocation has left: the FIFO consumers and the scheduled runs stop starting work
in time to finish what they started."""

import time
from collections.abc import Callable
from typing import Any


def time_left(context: Any, default_seconds: float) -> Callable[[], float]:
    """Seconds left, asked again at each call: from Lambda's context, or ``default_seconds`` from now when
    invoked without one (the local stack's invoke, tests)."""
    seconds = context.get_remaining_time_in_millis() / 1000 if context else default_seconds
    deadline = time.monotonic() + seconds
    return lambda: deadline - time.monotonic()

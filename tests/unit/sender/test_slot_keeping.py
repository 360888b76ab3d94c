"""A part goes to Meta within ON_TIME_SECONDS of its rate slot, or not at all.

Calls that leave later than their slots by different amounts reach Meta closer together than the limiter spaced
them. When every instance starts on an idle account at once, the first calls, held up by the writes before them or
a loaded instance, would reach Meta in the same second as the ones that kept to their slots: more than the account's
limit. So a part that missed its slot takes a new one (the missed slot goes unused) and, if it keeps missing them,
goes back to the queue, no longer in flight: the next receive sends it, rather than take it for possibly sent.
"""

from typing import Any

import pytest

from igdm.runtime.fifo_consumer import Retry
from igdm.store.outbound_records import PENDING, SENT
from igdm.store.rate_limits import ON_TIME_SECONDS, Slot
from local.samples import outbound as out
from sender.service import MAX_SLOT_RETAKES
from tests.fakes.clock import ManualClock
from tests.fakes.sender import MemoryRecords, ScriptedGraph
from tests.unit.sender.test_service import World, world

INTERVAL = 0.0104  # 96 calls a second


class SpacedLimiter:
    """Slots one INTERVAL apart, each reserved with the moment it opens, as the GCRA limiter hands them out."""

    def __init__(self, clock: ManualClock) -> None:
        self._clock = clock
        self.next_at = clock()
        self.given: list[float] = []

    def acquire(self, account_id: str, rate_class: str, max_wait: float = 0.0) -> Slot:
        at = max(self.next_at, self._clock())
        self.next_at = at + INTERVAL
        self.given.append(at)
        return Slot(True, at - self._clock(), at)

    def pause(self, account_id: str, seconds: float) -> None:
        self.next_at = max(self.next_at, self._clock() + seconds)


class SlowWrites(MemoryRecords):
    """The write that marks a part in flight takes ``seconds`` each time (a loaded instance, a slow answer)."""

    def __init__(self, clock: ManualClock, seconds: list[float]) -> None:
        super().__init__(clock)
        self._manual, self.seconds = clock, seconds

    def claim(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("inflight_at") is not None and self.seconds:
            self._manual.advance(self.seconds.pop(0))
        return super().claim(*args, **kwargs)

    def begin_part(self, idempotency_key: str, part: int) -> bool:
        if self.seconds:
            self._manual.advance(self.seconds.pop(0))
        return super().begin_part(idempotency_key, part)


class TimedGraph(ScriptedGraph):
    """Meta's Send API, noting when each request reached it."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self._clock, self.at = clock, list[float]()

    def send(self, token: str, body: dict[str, Any], endpoint: str = "messages") -> Any:
        self.at.append(self._clock())
        return super().send(token, body, endpoint)


def slow_world(*delays: float) -> tuple[World, SpacedLimiter, TimedGraph]:
    w = world(records_of=lambda clock: SlowWrites(clock, list(delays)))
    limiter, graph = SpacedLimiter(w.clock), TimedGraph(w.clock)
    w.sender.limiter, w.sender.graph, w.graph = limiter, graph, graph
    return w, limiter, graph


def test_a_part_marked_in_flight_on_time_goes_at_its_slot_without_asking_again() -> None:
    w, limiter, graph = slow_world(ON_TIME_SECONDS / 2)
    assert w.send(out.outbound("text", key="prompt")) == SENT
    assert len(limiter.given) == 1 and len(graph.requests) == 1
    assert 0 <= graph.at[0] - limiter.given[0] <= ON_TIME_SECONDS
    assert w.metrics.total("RateSlotsMissed") == 0


def test_a_part_that_missed_its_slot_goes_once_at_a_new_one() -> None:
    w, limiter, graph = slow_world(ON_TIME_SECONDS + 0.01)  # the in-flight write came back 30 ms after the slot
    assert w.send(out.outbound("text", key="late")) == SENT
    assert len(graph.requests) == 1  # sent once, after the second slot
    assert len(limiter.given) == 2 and graph.at[0] >= limiter.given[1]
    assert graph.at[0] - limiter.given[1] <= ON_TIME_SECONDS
    assert w.metrics.total("RateSlotsMissed") == 1
    assert w.record("late").message_ids == ["m_1"]


def test_a_slot_already_gone_when_the_limiter_answered_is_not_kept() -> None:
    """A slot can open before its reservation's answer arrives (the update's round trip on a loaded instance):
    the call is then late before it even marks the part in flight, and takes a new slot."""
    w, limiter, graph = slow_world()
    first = limiter.acquire
    handed: list[Slot] = []

    def answered_late(account_id: str, rate_class: str, max_wait: float = 0.0) -> Slot:
        slot = first(account_id, rate_class, max_wait)
        if not handed:
            w.clock.advance(0.05)  # the answer took 50 ms to be read
        handed.append(slot)
        return slot

    limiter.acquire = answered_late  # type: ignore[method-assign]
    assert w.send(out.outbound("text", key="slow-answer")) == SENT
    assert len(handed) == 2 and len(graph.requests) == 1
    assert graph.at[0] - limiter.given[1] <= ON_TIME_SECONDS


def test_a_part_that_keeps_missing_its_slots_goes_back_to_the_queue_not_in_flight() -> None:
    w, limiter, graph = slow_world()
    first = limiter.acquire
    loaded = [True]  # the first receive's instance reads every answer 30 ms after its slot opened

    def answered_late(account_id: str, rate_class: str, max_wait: float = 0.0) -> Slot:
        slot = first(account_id, rate_class, max_wait)
        if loaded[0]:
            w.clock.advance(ON_TIME_SECONDS + 0.01)
        return slot

    limiter.acquire = answered_late  # type: ignore[method-assign]
    with pytest.raises(Retry) as retry:
        w.send(out.outbound("text", key="unlucky"))
    assert "missed 3 text rate slots" in retry.value.reason
    assert graph.requests == [] and len(limiter.given) == MAX_SLOT_RETAKES + 1
    record = w.record("unlucky")
    assert (record.status, record.inflight_part, record.refusals) == (PENDING, None, 0)  # not possibly sent
    assert w.metrics.total("RateSlotsMissed") == MAX_SLOT_RETAKES + 1
    # The next receive sends it, once, as a first try rather than an uncertain one.
    loaded[0] = False
    assert w.send(out.outbound("text", key="unlucky"), receive_count=2) == SENT
    assert len(graph.requests) == 1

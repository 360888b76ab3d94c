"""A part whose rate slot waited behind others goes to Meta within ON_TIME_SECONDS of it, or on a new slot.

Calls that leave later than their slots by different amounts reach Meta closer together than the limiter spaced them.
When every instance starts on an idle account at once, the first calls, held up by a loaded instance, would reach Meta
in the same second as the ones that kept to their slots: more than the account's limit. So a queued slot missed by
more than ON_TIME_SECONDS goes unused and the part takes a new one, once, then goes; a slot at the head of the
account's slots (no wait) bunches nothing and is never exchanged. The write that marks the part in flight is made
while the slot is awaited, so it makes no part late that had that long to wait.
"""

from datetime import UTC, datetime
from typing import Any

import pytest

from igdm.runtime.fifo_consumer import Retry
from igdm.store.outbound_records import FAILED, PENDING, SENT
from igdm.store.rate_limits import ON_TIME_SECONDS, RateStateUnavailable, Slot
from local.samples import outbound as out
from tests.fakes.clock import ManualClock
from tests.fakes.sender import MemoryRecords, ScriptedGraph
from tests.unit.sender.test_service import World, world

INTERVAL = 0.0104  # 96 calls a second


class SpacedLimiter:
    """Slots one INTERVAL apart, each reserved with the moment it opens, as the GCRA limiter hands them out;
    the first ``ahead`` seconds from now (other instances' slots come before it)."""

    def __init__(self, clock: ManualClock, ahead: float = 0.0) -> None:
        self._clock = clock
        self.next_at = clock() + ahead
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


def slow_world(*delays: float, ahead: float = 0.0) -> tuple[World, SpacedLimiter, TimedGraph]:
    w = world(records_of=lambda clock: SlowWrites(clock, list(delays)))
    limiter, graph = SpacedLimiter(w.clock, ahead), TimedGraph(w.clock)
    w.sender.limiter, w.sender.graph, w.graph = limiter, graph, graph
    return w, limiter, graph


def test_the_in_flight_write_is_made_while_the_slot_is_awaited() -> None:
    w, limiter, graph = slow_world(0.05, ahead=0.1)  # a slot 100 ms off, a write of 50 ms
    assert w.send(out.outbound("text", key="prompt")) == SENT
    assert len(limiter.given) == 1 and graph.at == [limiter.given[0]]  # at its slot, not 50 ms after it
    assert w.metrics.total("RateSlotsMissed") == 0


def test_a_queued_part_that_missed_its_slot_goes_once_at_a_new_one() -> None:
    w, limiter, graph = slow_world(ON_TIME_SECONDS + 0.02, ahead=0.01)  # the write came back 30 ms after the slot
    assert w.send(out.outbound("text", key="late")) == SENT
    assert len(graph.requests) == 1  # sent once, at the second slot
    assert len(limiter.given) == 2 and graph.at == [limiter.given[1]]
    assert w.metrics.total("RateSlotsMissed") == 1
    assert w.record("late").message_ids == ["m_1"]


def test_a_slot_at_the_head_goes_however_late() -> None:
    """No slot was due before it, so nothing reaches Meta bunched with it: no second update for an idle account."""
    w, limiter, graph = slow_world(0.2)
    assert w.send(out.outbound("text", key="head")) == SENT
    assert len(limiter.given) == 1 and len(graph.requests) == 1
    assert graph.at[0] - limiter.given[0] == pytest.approx(0.2)
    assert w.metrics.total("RateSlotsMissed") == 0


def test_a_slot_already_gone_when_the_limiter_answered_is_exchanged() -> None:
    """A slot can open before its reservation's answer is read (a loaded instance): the part is late before it is
    even marked in flight."""
    w, limiter, graph = slow_world(ahead=0.01)
    first = limiter.acquire
    handed: list[Slot] = []

    def answered_late(account_id: str, rate_class: str, max_wait: float = 0.0) -> Slot:
        slot = first(account_id, rate_class, max_wait)
        if not handed:
            w.clock.advance(0.05)  # the answer was read 50 ms after it was given
        handed.append(slot)
        return slot

    limiter.acquire = answered_late  # type: ignore[method-assign]
    assert w.send(out.outbound("text", key="slow-answer")) == SENT
    assert len(handed) == 2 and len(graph.requests) == 1
    assert graph.at == [limiter.given[1]]


def test_a_part_late_for_its_new_slot_too_goes_rather_than_wait_again() -> None:
    w, limiter, graph = slow_world(ON_TIME_SECONDS + 0.02, ahead=0.01)
    first = limiter.acquire

    def second_late_too(account_id: str, rate_class: str, max_wait: float = 0.0) -> Slot:
        slot = first(account_id, rate_class, max_wait)
        if len(limiter.given) == 2:
            w.clock.advance(ON_TIME_SECONDS + 0.02)
        return slot

    limiter.acquire = second_late_too  # type: ignore[method-assign]
    assert w.send(out.outbound("text", key="slow")) == SENT
    assert len(limiter.given) == 2 and len(graph.requests) == 1  # a slow instance is slower, never stuck
    assert w.metrics.total("RateSlotsMissed") == 1


def test_a_missed_slot_with_no_new_one_in_reach_goes_back_to_the_queue_not_in_flight() -> None:
    w, limiter, graph = slow_world(ON_TIME_SECONDS + 0.02, ahead=0.01)
    first = limiter.acquire

    def backlog_beyond_reach(account_id: str, rate_class: str, max_wait: float = 0.0) -> Slot:
        if limiter.given:  # the other instances reserved the next second meanwhile
            return Slot(False, 2.0, w.clock() + 2.0)
        return first(account_id, rate_class, max_wait)

    limiter.acquire = backlog_beyond_reach  # type: ignore[method-assign]
    with pytest.raises(Retry) as retry:
        w.send(out.outbound("text", key="unlucky"))
    assert retry.value.delay == 2.0 and "rate limit" in retry.value.reason
    assert graph.requests == []
    record = w.record("unlucky")
    assert (record.status, record.inflight_part, record.refusals) == (PENDING, None, 0)  # not possibly sent
    # The next receive sends it, once, as a first try rather than an uncertain one.
    limiter.acquire = first  # type: ignore[method-assign]
    assert w.send(out.outbound("text", key="unlucky"), receive_count=2) == SENT
    assert len(graph.requests) == 1


def test_a_rate_item_failing_on_the_new_slot_leaves_the_part_not_in_flight() -> None:
    w, limiter, graph = slow_world(ON_TIME_SECONDS + 0.02, ahead=0.01)
    first = limiter.acquire

    def unavailable_the_second_time(account_id: str, rate_class: str, max_wait: float = 0.0) -> Slot:
        if limiter.given:
            raise RateStateUnavailable("rate state update failed: ProvisionedThroughputExceededException")
        return first(account_id, rate_class, max_wait)

    limiter.acquire = unavailable_the_second_time  # type: ignore[method-assign]
    with pytest.raises(RateStateUnavailable):  # the queue's consumer retries it after its backoff
        w.send(out.outbound("text", key="store-down"))
    assert graph.requests == []
    record = w.record("store-down")
    assert (record.status, record.inflight_part) == (PENDING, None)  # a later receive sends it, not UNKNOWN
    limiter.acquire = first  # type: ignore[method-assign]
    assert w.send(out.outbound("text", key="store-down"), receive_count=2) == SENT
    assert len(graph.requests) == 1


def test_a_message_whose_validity_runs_out_while_its_slot_is_awaited_is_not_sent() -> None:
    w, limiter, graph = slow_world(ahead=0.5)  # a slot half a second off
    message = out.outbound("text", key="too-late", valid_until=_iso(w.clock() + 0.2))
    limiter.acquire = lambda account_id, rate_class, max_wait=0.0: Slot(True, 0.5, w.clock() + 0.5)  # type: ignore[method-assign]
    assert w.send(message) == FAILED
    record = w.record("too-late")
    assert (record.reason, record.inflight_part) == ("expired", None)
    assert graph.requests == []


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()

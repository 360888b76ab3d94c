"""Simulated time for threads (bench.simulation): exactly one thread runs at a time, and the clock moves on
only when every thread waits.

Each thread that plays a Lambda instance waits through this clock (for Meta, for AWS, for a rate slot, for a
message), and a thread that waits hands the turn to whichever waits for the earliest moment, setting the
clock to it. So the code between two waits takes no simulated time, however slow the machine,
and a thousand instances cost what their work costs, not a thousand cores.

Bounded: a run stops at a simulated-time limit and at a wall-clock limit (and if a thread keeps the turn
past it); stop() wakes every thread, which ends with Stopped.
"""

import heapq
import itertools
import threading
import time
from collections.abc import Callable

HANDOFF_LIMIT = 10.0  # real seconds past the wall-clock limit before a thread is taken to be stuck


class Stopped(BaseException):
    """The run is over: unwinds a simulated instance wherever it waits. A BaseException, so that the code
    under test (which catches Exception to retry) does not take it for a failure of its own."""


Event = tuple[float, int, threading.Event | Callable[[], None]]


class VirtualTime:
    def __init__(self, *, start: float, wall_limit: float) -> None:
        self.now = start
        self._wall_limit = wall_limit
        self._events: list[Event] = []
        self._order = itertools.count()  # ties run in the order they were scheduled: the same run twice agrees
        self._finished = threading.Event()  # the turn came back to run(): nothing left to do, or a limit
        self._local = threading.local()
        self._threads: list[threading.Thread] = []
        self._batons: list[threading.Event] = []
        self._until = float("inf")
        self._deadline = float("inf")
        self._stopped = False
        self.timed_out = False  # the run hit a limit before every thread was idle
        self.errors: list[str] = []  # exceptions that ended a thread (a harness bug: reported, not hidden)

    # ------------------------------------------------------------------ from a simulated thread

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        baton = self.baton()
        self._push(self.now + max(seconds, 0.0), baton)
        self._pass_turn(baton)

    def park(self) -> None:
        """Wait until another party wakes this thread (wake), with no time of its own."""
        self._pass_turn(self.baton())

    def baton(self) -> threading.Event:
        baton: threading.Event = self._local.baton
        return baton

    def _pass_turn(self, baton: threading.Event) -> None:
        """Hand the turn straight to the thread that waits for the earliest moment (no scheduler thread in
        between: one switch per wait, none when this thread is that one)."""
        following = self._advance()
        if following is baton:
            return
        baton.clear()  # before the turn goes on: it may come back here at once
        self._hand(following)
        if not baton.wait(self._wall_limit + HANDOFF_LIMIT) or self._stopped:
            raise Stopped

    # ------------------------------------------------------------------ from whoever holds the turn

    def wake(self, baton: threading.Event) -> None:
        self._push(self.now, baton)

    def call_at(self, at: float, action: Callable[[], None]) -> None:
        """Run ``action`` at simulated time ``at``, on whichever thread holds the turn then."""
        self._push(at, action)

    def _push(self, at: float, what: threading.Event | Callable[[], None]) -> None:
        heapq.heappush(self._events, (at, next(self._order), what))

    def _advance(self) -> threading.Event | None:
        """Run what is due up to the next thread's turn; that thread's baton, or None when the run is over."""
        while self._events:
            at, _, what = self._events[0]
            if at > self._until or time.monotonic() > self._deadline:
                self.timed_out = True
                return None
            heapq.heappop(self._events)
            self.now = max(self.now, at)
            if isinstance(what, threading.Event):
                return what
            what()
        return None

    def _hand(self, baton: threading.Event | None) -> None:
        (self._finished if baton is None else baton).set()

    # ------------------------------------------------------------------ the run

    def start_threads(self, target: Callable[[], None], count: int) -> None:
        for i in range(count):
            baton = threading.Event()
            thread = threading.Thread(target=self._body, args=(target, baton), name=f"simulated-{i}", daemon=True)
            self._batons.append(baton)
            self._threads.append(thread)
            self._push(self.now, baton)
            thread.start()

    def _body(self, target: Callable[[], None], baton: threading.Event) -> None:
        self._local.baton = baton
        if not baton.wait(self._wall_limit + HANDOFF_LIMIT) or self._stopped:
            return
        try:
            target()
        except Stopped:
            return
        except BaseException as exc:  # a thread's end must hand the turn on, whatever ended it
            self.errors.append(f"{type(exc).__name__}: {exc}")
        self._hand(self._advance())

    def run(self, *, until: float) -> None:
        """Hand out turns until nothing waits for a moment (every thread idle), or a limit."""
        self._until = until
        self._deadline = time.monotonic() + self._wall_limit
        self._finished.clear()
        first = self._advance()
        if first is None:
            return
        first.set()
        if not self._finished.wait(self._wall_limit + HANDOFF_LIMIT):
            self.timed_out = True  # a thread kept the turn: stop() ends the others

    def stop(self) -> None:
        self._stopped = True
        for baton in self._batons:
            baton.set()
        deadline = time.monotonic() + HANDOFF_LIMIT
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

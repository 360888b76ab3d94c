"""Running a Hypothesis property outside pytest, with a seed, and reading what it found."""

import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisWarning

from igdm.runtime.observability import logger


def expect(holds: bool, problem: str) -> None:
    """An assert that `python -O` does not remove: a check that vanished would pass every body."""
    if not holds:
        raise AssertionError(problem)


@dataclass
class Outcome:
    examples: int = 0
    failure: str | None = None  # the exception and Hypothesis's shrunk failing example


def check_property(
    check: Callable[[Any], None],
    strategy: st.SearchStrategy[Any],
    *,
    examples: int,
    run_seed: int,
    suppress: Sequence[HealthCheck] = (),
) -> Outcome:
    """Run ``check`` on ``examples`` values of ``strategy``; the first failure, shrunk, ends the run.
    ``run_seed`` makes the values reproducible; nothing is saved to an example database."""
    outcome = Outcome()
    if examples < 1:
        return outcome

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(suppress), print_blob=False
    )
    @seed(run_seed)
    @given(strategy)
    def holds(value: Any) -> None:
        outcome.examples += 1
        check(value)

    try:
        with warnings.catch_warnings():
            # Bodies of hundreds of kB are what some strategies are for; their repr is only a cost.
            warnings.filterwarnings("ignore", "Generating overly large repr", HypothesisWarning)
            holds()
    except Exception as exc:
        outcome.failure = _describe(exc)
    return outcome


def _describe(exc: BaseException) -> str:
    notes = "; ".join(getattr(exc, "__notes__", []))
    text = f"{type(exc).__name__}: {str(exc)[:300]} {notes[:1500]}"
    if isinstance(exc, BaseExceptionGroup):  # Hypothesis's FlakyFailure: what each run raised
        text += " | " + " | ".join(_describe(inner) for inner in exc.exceptions[:3])
    return text


@dataclass
class LoggedErrors:
    """Errors the functions logged with a traceback (logger.exception): each is a bug a guard caught."""

    records: list[str] = field(default_factory=list)


class _Collect(logging.Handler):
    def __init__(self, found: LoggedErrors) -> None:
        super().__init__(logging.ERROR)
        self.found = found

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            kind = record.exc_info[0].__name__ if record.exc_info[0] else "?"
            self.found.records.append(f"{record.getMessage()} ({kind})")


@contextmanager
def logged_errors() -> Iterator[LoggedErrors]:
    found = LoggedErrors()
    handler = _Collect(found)
    functions_logger = logging.getLogger(logger.name)  # the standard logger behind Powertools' Logger
    functions_logger.addHandler(handler)
    try:
        yield found
    finally:
        functions_logger.removeHandler(handler)

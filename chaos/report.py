"""What a scenario found: the counts its line prints, and whether they pass."""

import os
import random
import sys
from collections import Counter
from dataclasses import dataclass, field

from chaos.known import KNOWN_BUGS


@dataclass
class Result:
    """``lost``, ``duplicated`` and ``out_of_order`` must be zero; ``violations`` lists any other broken
    promise (a 5xx from parsing, an unhandled exception, a message sent for an invalid one ...). ``known``
    counts the occurrences of the bugs in chaos/known.py, which are reported but do not fail the run."""

    name: str
    summary: str
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    known: Counter[str] = field(default_factory=Counter)
    figures: dict[str, int] = field(default_factory=dict)  # the line's other counts, for the tests

    def __post_init__(self) -> None:
        unknown = set(self.known) - set(KNOWN_BUGS)
        if unknown:
            raise ValueError(f"not in chaos/known.py: {sorted(unknown)}")

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.out_of_order or self.violations)

    def line(self) -> str:
        known = "".join(f"; known bug {name}: {count}" for name, count in sorted(self.known.items()) if count)
        return f"{self.name}: {self.summary}{known} [{self.seconds:.1f} s]"


def run_seed() -> int:
    """CHAOS_SEED when given (to replay a run), else a fresh one; printed at the start of every run."""
    configured = os.environ.get("CHAOS_SEED")
    if configured:
        return int(configured)
    return random.SystemRandom().randrange(1, 2**31)


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()

"""A clock the test moves: the services take `clock` and `sleep` callables, so no test waits for real time."""

from dataclasses import dataclass, field


@dataclass
class ManualClock:
    """Epoch seconds that change only when the test (or a service's sleep) says so."""

    now: float
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        """A service's sleep: time passes at once, and the pause is remembered."""
        self.slept.append(seconds)
        self.now += seconds

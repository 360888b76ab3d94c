"""The metrics port every service counts on (Powertools' EMF metrics in Lambda)."""

from dataclasses import dataclass, field


@dataclass
class CountedMetrics:
    counted: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)

    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        self.counted.append((name, value, dimensions))

    def total(self, name: str) -> int:
        return sum(value for counted, value, _ in self.counted if counted == name)

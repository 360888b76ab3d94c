"""The inside of a child process that plays one Lambda instance: its output counted rather than printed,
its AWS requests counted (or answered by stubs), the clients it creates recorded, its peak memory read.

Imported first thing in a child, before the function's handler, because Powertools' Logger binds
sys.stdout when igdm.runtime.observability is imported.
"""

import io
import os
import resource
import sys
from collections.abc import Callable
from typing import Any

from bench.aws_ledger import Ledger, StubAnswers


class CountingSink(io.TextIOBase):
    """Stands in for stdout (where Lambda's logs go): counts the bytes CloudWatch Logs would ingest.
    BENCH_LOGS=1 also passes them to stderr, which `make bench` shows when a child fails."""

    def __init__(self) -> None:
        self.bytes = 0
        self.lines = 0  # CloudWatch Logs adds 26 bytes of metadata per log event (line)
        self._tee = sys.stderr if os.environ.get("BENCH_LOGS") == "1" else None

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        self.lines += text.count("\n")
        if self._tee is not None:
            self._tee.write(text)
        return len(text)

    def writable(self) -> bool:
        return True


class Instance:
    def __init__(self) -> None:
        self.output = CountingSink()
        sys.stdout = self.output
        self.ledger = Ledger()
        self.clients: set[str] = set()

    def watch_clients(self, answers: StubAnswers | None = None) -> None:
        """Count (or, with answers, answer) every request of every client the function creates."""
        from igdm.runtime import aws

        original: Callable[[str], Any] = aws.client

        def client(service: str) -> Any:
            made = original(service)
            if service not in self.clients:
                self.clients.add(service)
                if answers is None:
                    self.ledger.count(made)
                else:
                    self.ledger.stub(made, answers)
            return made

        # The handlers call aws.client(...) through the module at each use, so they get this wrapper.
        aws.client = client  # type: ignore[assignment]

    @staticmethod
    def peak_rss_mb() -> float:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """This process's peak resident set in MiB, which is what Lambda reports as Max Memory Used.

    Read from /proc/self/status (VmHWM) rather than getrusage: Linux carries ru_maxrss over an exec, so a
    child started by a big parent (vfork, then exec) would report the parent's peak as its own."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: the best there is

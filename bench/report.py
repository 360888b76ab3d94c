"""The table `make bench` prints, docs/performance.md and docs/performance.png."""

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, Figure

DOC = ROOT / "docs/performance.md"
CHART = ROOT / "docs/performance.png"
SECTIONS = [  # (key prefix, heading, what the figure means, for a newcomer)
    (
        "cold_",
        "1. Cold start of each function",
        "When Lambda starts a new instance of a function, it imports the handler module, and the first request "
        "creates the boto3 clients; the caller waits for both. Meta waits on the webhook's cold starts, so the issue "
        "holds the webhook to at most 1.2 times its floor, which is what any Python function talking to the same AWS "
        "services pays: `import boto3` and creating those clients. Every other function is held to at most 1.4 times "
        "its floor, a looser target: nobody waits on a cold sender, callback, onboarding page or refresher within a "
        "second.",
    ),
    (
        "webhook_",
        "2. Webhook: CPU and AWS requests per event",
        "The CPU the webhook spends per event when Meta delivers a big batch, against the least any webhook must do "
        "(check the signature, parse the JSON); and how many AWS requests it makes per event, which drive its "
        "latency and the bill. Targets: at most 2.0 times the floor's CPU per event, and at most 0.121 AWS requests "
        "per event, in 1000-event batches.",
    ),
    (
        "sender_",
        "3. Sender: sends per second against Meta's limit",
        "Meta allows 100 text sends per second per account and throttles beyond. The sender must get close to that "
        "limit without ever being throttled and without reordering a conversation. Target: at least 96 sends per "
        "second for one account, no throttling answer, every conversation in order, with every AWS request going "
        "through botocore over HTTP to a stand-in that answers in 5 ms. With 10 accounts the limit is per account, "
        "so the sender should go on scaling until the Lambda concurrency the template allows, or this machine's CPU, "
        "runs out.",
    ),
    (
        "e2e_",
        "4. End to end on the local stack",
        "How long an inbound message takes from Meta's POST to the moment your service can read its event on the "
        "events queue, through the whole local stack (`make run`). No target: on this machine the AWS emulator "
        "shares the cores with everything else.",
    ),
    (
        "memory_",
        "5. Peak memory of each function",
        "Lambda bills each function for its configured MemorySize and stops one that goes over it. Target: each "
        "function's peak fits in its MemorySize (the Globals' 512 MB unless the function sets its own).",
    ),
    (
        "cost_",
        "6. Estimated AWS cost",
        "What a million inbound events and a million outbound messages cost on AWS, estimated from this run's "
        "measurements at us-east-1 list prices. These are list prices and an estimate, not a bill.",
    ),
    (
        "reconcile_",
        "7. Reconciler: messages Meta never delivered",
        "The reconciler reads Instagram's Conversations API for messages whose webhook never came. Meta allows "
        "2 calls per second per account, so its run time is set by the calls it needs: a conversation costs its "
        "message ids and the details of each missing message (the newest one's details name the customer). No "
        "target: the figures say how long a backlog takes to catch up, and how close to the least calls it is.",
    ),
    (
        "simulation_",
        "8. Simulation: 1 to 1,000 accounts",
        "Where the sender bends as accounts are added: the real sender and rate limiter over simulated accounts, "
        "Meta and AWS, on a simulated clock (docs/scaling.md explains what it shows). No target: the figures say "
        "what limits a gateway with many accounts, and the template setting that moves each limit.",
    ),
]


@dataclass(frozen=True)
class Machine:
    cores: int
    cpu: str
    python: str
    system: str
    date: str

    @classmethod
    def this(cls) -> "Machine":
        return cls(
            os.cpu_count() or 0,
            _cpu_model(),
            platform.python_version(),
            platform.platform(terse=True),
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        )

    def line(self) -> str:
        return f"{self.cores} cores, {self.cpu}, Python {self.python}, {self.system}; {self.date}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ------------------------------------------------------------------ formatting


def value(amount: float | None, unit: str) -> str:
    if amount is None:
        return "-"
    if unit == "$":
        return f"${amount:.2f}"
    if unit == "req":
        return f"{amount:.3f}"
    digits = 1 if abs(amount) < 100 else 0
    return f"{amount:.{digits}f} {unit}"


def ratio(figure: Figure) -> str:
    return "-" if figure.ratio is None else f"{figure.ratio:.2f}x"


def verdict(figure: Figure) -> str:
    return {True: "met", False: "NOT MET", None: "-"}[figure.met]


def _rows(figures: list[Figure]) -> list[list[str]]:
    return [[f.name, value(f.value, f.unit), value(f.floor, f.unit), ratio(f), f.target, verdict(f)] for f in figures]


HEADER = ["Figure", "Measured", "Floor", "Ratio", "Target", "Met"]


def table(figures: list[Figure]) -> str:
    rows = [HEADER, *_rows(figures)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


# ------------------------------------------------------------------ docs/performance.md


def markdown(figures: list[Figure], machine: Machine, seconds: float, warnings: list[str]) -> str:
    missed = [f for f in figures if f.met is False]
    out = [
        "# Performance",
        "",
        "_This file and `performance.png` are written by `make bench` (the code is in `bench/`); a run rewrites "
        "both, so edit the code, not them._",
        "",
        f"Measured on {machine.line()}. The run took {seconds / 60:.1f} minutes.",
        "",
        "Every figure is measured next to a **floor**: the least any design could do on this machine, measured "
        "in the same run (or, where said, derived from a hard limit such as an API's batch size), with the "
        "measured thing and its floor alternating so the machine's load falls on both alike. The **ratio** is "
        "measured / floor: how far the gateway is from that least. Targets come from the issue that asked for "
        "these figures; a figure without a target is there to watch. Figures measured on a shared 2-core "
        "machine move from run to run by some percent; the ratios move less than the raw values.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(["---", "---:", "---:", "---:", "---", "---"]) + "|",
        *("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in _rows(figures)),
        "",
        "![Each figure against its floor and target](performance.png)",
        "",
    ]
    if missed:
        out += [
            "**Not met:** "
            + "; ".join(f"{f.name} ({value(f.value, f.unit)}, target {f.target})" for f in missed)
            + ". The sections below say how each was measured.",
            "",
        ]
    if warnings:
        out += ["**Warnings from this run:** " + "; ".join(warnings) + ".", ""]
    out += ["## What each figure means and how it is measured", ""]
    for prefix, heading, meaning in SECTIONS:
        members = [f for f in figures if f.key.startswith(prefix)]
        if not members:
            continue
        out += [f"### {heading}", "", meaning, ""]
        for method in (f.method for f in members if f.method):
            out += [method, ""]
        if prefix == "cost_":
            out += _prices()
        out += ["Measured in this run:", ""]
        out += [f"- {f.name}: {detail}" for f in members for detail in f.details] + [""]
    out += [
        "## Running it again",
        "",
        "`make bench` (that is, `.venv/bin/python -m bench`). It takes about five minutes on two cores, starts "
        "everything it needs on 127.0.0.1 (moto, the Graph sandbox, the local stack as a process, child processes "
        "for each function) and stops all of it, whatever happens. Nothing is sent beyond 127.0.0.1. It prints the "
        "table above and rewrites this file and `performance.png`. `python -m bench cold webhook sender instances "
        "e2e reconciler` runs some of the stages and only prints; `BENCH_LOGS=1` shows the functions' own logs.",
        "",
    ]
    return "\n".join(out)


def _prices() -> list[str]:
    from bench import cost

    lines = [
        f"Prices (us-east-1 list prices, taken {cost.PRICES_TAKEN}; named constants in `bench/cost.py`):",
        "",
        "| Service | Price | Source |",
        "|---|---|---|",
    ]
    lines += [f"| {what} | {price} | {source} |" for what, price, source in cost.PRICES]
    lines += ["", "Assumptions:", ""] + [f"- {assumption}" for assumption in cost.ASSUMPTIONS] + [""]
    return lines


def write(figures: list[Figure], machine: Machine, seconds: float, warnings: list[str]) -> None:
    from bench.chart import draw

    DOC.write_text(markdown(figures, machine, seconds, warnings))
    draw(figures, machine, CHART)

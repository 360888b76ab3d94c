"""`make bench`: every performance figure against its floor; prints the table and rewrites
docs/performance.md and docs/performance.png.

    python -m bench                          every stage, then the docs
    python -m bench cold webhook ...         only these stages (cold, webhook, sender, instances, e2e,
                                             reconciler, simulation); prints only

Each stage bounds itself (fixed counts, time limits) and stops what it started. A missed target is a
result, reported as "NOT MET", not a failure of the run.
"""

import sys
import time
from collections.abc import Callable
from typing import Any

from bench import cold_start, cost, end_to_end, instance, memory, reconciler, report, sender, simulation, webhook
from bench.common import CLIENTS, ROOT, Figure

STAGES = ("cold", "webhook", "sender", "instances", "e2e", "reconciler", "simulation")


def main(argv: list[str]) -> int:
    unknown = set(argv) - set(STAGES)
    if unknown:
        print(f"unknown stage(s) {', '.join(sorted(unknown))}; stages: {', '.join(STAGES)}", file=sys.stderr)
        return 2
    chosen = argv or list(STAGES)
    started = time.monotonic()
    machine = report.Machine.this()
    print(f"make bench on {machine.line()}", flush=True)

    def stage(name: str, what: str, run: Callable[[], Any]) -> Any:
        if name not in chosen:
            return None
        print(f"[{time.monotonic() - started:5.0f} s] {what}", flush=True)
        return run()

    cold = stage("cold", "cold starts, each against boto3 + its clients", cold_start.measure)
    hook = stage("webhook", "webhook: signed 1000-event POSTs, AWS over HTTP on loopback", webhook.measure)
    sending = stage("sender", "sender: 1 and 10 accounts against the Graph sandbox", sender.measure)
    instances = stage("instances", "one instance of each other function, against moto", instance.measure)
    e2e = stage("e2e", "end to end: 1000 POSTs through the local stack", end_to_end.measure)
    reconciling = stage("reconciler", "reconciler: 100 conversations at Meta's 2 calls per second", reconciler.measure)
    simulating = stage("simulation", "simulation: 1 to 1000 accounts in simulated time", simulation.measure)

    figures: list[Figure] = []
    figures += cold.figures if cold else []
    figures += hook.figures if hook else []
    figures += sending or []
    figures += e2e or []
    figures += reconciling or []
    figures += simulating or []
    warnings = [w for run in (instances or {}).values() if (w := run.warning()) is not None]
    if hook is not None and hook.clients != sorted(CLIENTS["WebhookFunction"]):
        warnings.append(f"webhook created clients {hook.clients}, bench.common.CLIENTS says otherwise")
    if cold and hook and instances:
        figures += memory.figures(hook, instances, cold.floor_rss_mb)
    if hook and instances:
        figures += cost.figures(hook.single, instances["SenderFunction"])
    seconds = time.monotonic() - started
    print(f"[{seconds:5.0f} s] done\n", flush=True)
    print(report.table(figures))
    for figure in figures:
        for detail in figure.details:
            print(f"  {figure.name}: {detail}")
    for warning in warnings:
        print(f"warning: {warning}")
    if set(chosen) == set(STAGES):
        report.write(figures, machine, seconds, warnings)
        print(f"\nwrote {report.DOC.relative_to(ROOT)} and {report.CHART.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

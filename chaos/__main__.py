"""`make chaos`: every fault scenario and both fuzzers, a line of counts each, then the summary; the exit
status is 1 if anything was lost, duplicated or reordered, or another promise was broken.

  CHAOS_QUICK=1    the short version CI runs (about 2 minutes); without it, the full one (about 10).
  CHAOS_SEED=<n>   replay a run: the fault schedules and the generated inputs come from this seed (thread
                   timing, as between the sender and the echo webhooks, can still differ).
  python -m chaos webhook sender   only the scenarios whose names start with these words.
"""

import contextlib
import io
import logging
import os
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from chaos import fuzz_outbound, fuzz_webhook, reconcile_faults, refresher_faults, sender_faults, webhook_faults
from chaos.known import KNOWN_BUGS
from chaos.report import Result, run_seed, say
from igdm.runtime.observability import logger


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[int], Result]


def scenarios(quick: bool) -> list[Scenario]:
    def pick[T](short: T, full: T) -> T:
        return short if quick else full

    return [
        Scenario(
            "webhook faults",
            lambda seed: webhook_faults.run(webhook_faults.WebhookFaultPlan(events=pick(400, 2000)), seed),
        ),
        Scenario(
            "sender graph faults",
            lambda seed: sender_faults.run_graph_faults(sender_faults.SenderFaultPlan(messages=pick(60, 200)), seed),
        ),
        Scenario(
            "sender crash after send",
            lambda seed: sender_faults.run_crash_after_send(sender_faults.CrashPlan(messages=pick(20, 60)), seed),
        ),
        Scenario(
            "refresher faults",
            lambda seed: refresher_faults.run(refresher_faults.RefresherFaultPlan(accounts=pick(10, 30)), seed),
        ),
        Scenario(
            "refresher faults (old token revoked)",
            lambda seed: refresher_faults.run(
                refresher_faults.RefresherFaultPlan(accounts=pick(10, 30), refresh_invalidates_old=True), seed
            ),
        ),
        Scenario(
            "reconciler faults",
            lambda seed: reconcile_faults.run(
                reconcile_faults.ReconcileFaultPlan(messages=pick(40, 120), customers=pick(6, 12)), seed
            ),
        ),
        Scenario(
            "webhook fuzzing",
            lambda seed: fuzz_webhook.run(
                pick(
                    fuzz_webhook.WebhookFuzzPlan(parsing=800, unsigned_parsing=100, handler=100, unsigned_handler=100),
                    fuzz_webhook.WebhookFuzzPlan(),
                ),
                seed,
            ),
        ),
        Scenario(
            "outbound fuzzing",
            lambda seed: fuzz_outbound.run(
                pick(fuzz_outbound.OutboundFuzzPlan(contract=300, sender=60), fuzz_outbound.OutboundFuzzPlan()), seed
            ),
        ),
    ]


def _quietly(scenario: Scenario, seed: int) -> tuple[Result, str]:
    """Run one scenario with the functions' logs, metrics and the local servers' chatter captured; the
    capture is shown only when the scenario fails."""
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
        try:
            result = scenario.run(seed)
        except Exception:
            result = Result(scenario.name, "the scenario itself raised", violations=[traceback.format_exc()])
    return result, captured.getvalue()


def main(argv: list[str]) -> int:
    quick = os.environ.get("CHAOS_QUICK", "") not in ("", "0")
    seed = run_seed()
    chosen = [s for s in scenarios(quick) if not argv or any(s.name.startswith(a) for a in argv)]
    # The functions log a JSON line per request and a metric line per invocation: tens of thousands here.
    # Their logger still runs (the fuzzers count errors it logs); only its output goes nowhere.
    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(io.StringIO())
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    say(
        f"chaos: {'quick' if quick else 'full'} run, seed {seed} (CHAOS_SEED={seed} replays it), "
        f"{len(chosen)} scenarios"
    )
    started = time.monotonic()
    results = []
    for scenario in chosen:
        result, captured = _quietly(scenario, seed)
        results.append(result)
        say(("  ok    " if result.ok else "  FAIL  ") + result.line())
        for violation in result.violations:
            say(f"          {violation[:3000]}")
        if not result.ok and captured:
            say("          last output of the scenario:\n" + captured[-4000:])
    lost = sum(r.lost for r in results)
    duplicated = sum(r.duplicated for r in results)
    out_of_order = sum(r.out_of_order for r in results)
    failed = [r.name for r in results if not r.ok]
    say(
        f"summary: {len(results)} scenarios in {time.monotonic() - started:.0f} s: lost {lost}, duplicated "
        f"{duplicated}, out of order {out_of_order}, other failures {sum(len(r.violations) for r in results)}"
        f" -> {'FAILED: ' + ', '.join(failed) if failed else 'passed'}"
    )
    known: Counter[str] = Counter()
    for result in results:
        known.update(result.known)
    if +known:
        say("known product bugs seen (not counted above; chaos/known.py, tests/chaos/test_known_bugs.py):")
        for name, count in sorted((+known).items()):
            say(f"  {name} x{count}: {KNOWN_BUGS[name]}")
    say(f"seed {seed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

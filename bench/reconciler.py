"""The reconciler: one run over conversations whose newest message's webhook Meta never sent, at Meta's 2
Conversations API calls per second per account, through the real handler, moto and the Graph sandbox (which
keeps Meta's limit too). The floor is the calls the run made at that limit: the reconciler cannot be faster
than Meta lets it call; the calls themselves are measured against the least a conversation needs."""

import contextlib
import io
import time
from typing import Any

import pytest

from bench.common import Figure, template

CONVERSATIONS = 100
META_RATE = 2  # Conversations API calls per second per account (fact sheet §10)


def run() -> tuple[dict[str, Any], float, int]:
    """The run's summary, its seconds, and how many distinct messages it published."""
    with pytest.MonkeyPatch.context() as patch:
        # The template's Globals, as Lambda sets them, before the handlers are first imported; and set on the
        # shared Metrics and Logger too, which an earlier stage of this process may have created without them.
        globals_ = template()["Globals"]["Function"]["Environment"]["Variables"]
        for name, value in globals_.items():
            patch.setenv(name, str(value))
        from igdm.runtime.observability import logger, metrics
        from local.harnesses.outbound import ACCOUNT, outbound_loop

        patch.setattr(metrics, "namespace", globals_["POWERTOOLS_METRICS_NAMESPACE"])
        patch.setattr(metrics, "service", globals_["POWERTOOLS_SERVICE_NAME"])
        logger.setLevel("ERROR")  # a line per backfilled conversation is not a figure
        with (
            outbound_loop(patch, conversations_rate_per_second=META_RATE) as loop,
            contextlib.redirect_stdout(io.StringIO()),  # the handler's metrics, printed as Lambda would
        ):
            loop.sandbox.drop_webhooks(CONVERSATIONS)
            for number in range(CONVERSATIONS):
                loop.sandbox.customer_says(ACCOUNT, f"9{number:015d}", f"message of customer {number}")
            loop.sandbox.drain_webhooks()
            started = time.monotonic()
            summary = loop.reconcile()
            seconds = time.monotonic() - started
            published = {e["message_id"] for e in loop.events() if e["kind"] == "text"}
    return summary, seconds, len(published)


def measure() -> list[Figure]:
    summary, seconds, published = run()
    if published != CONVERSATIONS or summary["backfilled"] != CONVERSATIONS:
        raise RuntimeError(f"the reconciler published {published} of {CONVERSATIONS} messages: {summary}")
    calls = summary["calls"]
    method = (
        f"The Graph sandbox withholds the webhooks of {CONVERSATIONS} customer messages, one in each of "
        f"{CONVERSATIONS} conversations; then the reconciler's real handler runs once (its first run, which is "
        "also the account's history import), against moto with the template's resources and the sandbox, both "
        f"keeping Meta's {META_RATE} Conversations API calls per second per account. Run time: the handler's "
        f"invocation, wall clock; its floor: the calls it made at {META_RATE} per second. Calls per "
        "conversation: the run's calls over the conversations; its floor is 2, the least that finds a missing "
        "message in a conversation (its message ids, then the message's details). The conversation list's "
        "pages (25 conversations each) make up the rest."
    )
    details = [
        f"{published} messages published once each; {calls} Conversations API calls; the run took {seconds:.1f} s"
    ]
    return [
        Figure(
            "reconcile_seconds",
            f"Reconciler, {CONVERSATIONS} conversations with a missed message each: run time",
            seconds,
            calls / META_RATE,
            "s",
            "-",
            None,
            method,
            details,
        ),
        Figure(
            "reconcile_calls",
            "Reconciler: Conversations API calls per conversation",
            calls / CONVERSATIONS,
            2.0,
            "calls",
            "-",
            None,
        ),
    ]

"""Scenario d: the token refresher failing mid-write. Secrets Manager's PutSecretValue (the new token, as
AWSPENDING) and UpdateSecretVersionStage (the promotion), and DynamoDB's account updates and the table's
copy of a refused token, refused or losing their answer on a share of calls, through the deployed handler
(refresher.handler) run after run.

Every write of the refresher is followed by a check of that account: its AWSCURRENT token (what the sender
reads) must be one Instagram accepts. Every run is followed by the same check of every account. A token
lost is an account that was, at any check, without a working current token. Then runs without faults
follow, and each account must end with a refreshed, working current token.

The variant ``refresh_invalidates_old`` plays an Instagram that revokes a token when it is refreshed (the
project's pessimistic reading; unconfirmed). There the current token is dead from Meta's answer until the
promotion, whatever the design, and until a later run when the promotion was refused (that run promotes
the pending token): only the end of each run is checked, and a token lost is one no later run brought back.
"""

import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from chaos.faults import AwsFaults
from chaos.report import Result
from chaos.stacks import accounts_stack
from igdm.store.accounts import ACTIVE
from local.aws.apigw import LambdaContext
from local.harnesses.accounts import AccountsHarness
from refresher import handler as refresher_handler
from refresher.scheduled_run import RefreshIncomplete

# The refresher's writes: Secrets Manager's, the account items' updates, and the table's copy of a new token
# Secrets Manager refused (igdm.store.accounts.TokenRescue, PutItem and DeleteItem).
WRITES = ("PutSecretValue", "UpdateSecretVersionStage", "UpdateItem", "PutItem", "DeleteItem")


@dataclass(frozen=True)
class RefresherFaultPlan:
    accounts: int = 30
    fault_rate: float = 0.3  # of the refresher's writes: refused or unreachable
    lost_rate: float = 0.15  # of its successful writes: done, answer lost
    faulted_runs: int = 3
    clean_runs: int = 3  # at most; they stop once every account is refreshed
    refresh_invalidates_old: bool = False  # Instagram's documented behaviour: the old token lives on


def _account(number: int) -> str:
    return f"178414000{number:08d}"


def working_token(harness: AccountsHarness, account_id: str) -> bool:
    """The account's AWSCURRENT token is one the sandbox (Instagram) would accept now."""
    document = harness.token(account_id)
    if document is None:
        return False
    now = harness.sandbox.now()
    return any(
        info.token == document.access_token and not info.revoked and info.expires_at > now
        for info in harness.sandbox.tokens_of(account_id)
    )


def run(plan: RefresherFaultPlan, seed: int) -> Result:
    rng = random.Random(seed)  # noqa: S311 - a reproducible fault schedule, no secret  # nosec B311
    started = time.monotonic()
    accounts = [_account(n) for n in range(plan.accounts)]
    without_token: set[str] = set()
    checks = 0
    outcomes: dict[str, int] = {"incomplete": 0, "complete": 0}
    errors: list[str] = []
    with accounts_stack(refresh_invalidates_old=plan.refresh_invalidates_old) as harness:
        prefix = f"{harness.stack.name}/accounts/"
        for account_id in accounts:
            harness.add(account_id, f"token-{account_id}", age_days=40)  # 20 days left: due for refresh
        original = {a: access_token(harness, a) for a in accounts}

        def check(account_id: str) -> None:
            nonlocal checks
            checks += 1
            if not working_token(harness, account_id):
                without_token.add(account_id)

        def after_write(service: str, operation: str, parsed: dict[str, Any]) -> None:
            name = parsed.get("Name")
            if plan.refresh_invalidates_old:
                return
            if service == "secrets-manager" and isinstance(name, str) and name.startswith(prefix):
                check(name.removeprefix(prefix))

        faults = AwsFaults(
            random.Random(rng.random()),  # noqa: S311  # nosec B311 - a reproducible fault schedule
            rate=plan.fault_rate,
            lost_rate=plan.lost_rate,
            operations=WRITES,
            after_call=after_write,
        ).attach("secretsmanager", "dynamodb")
        runs = 0
        for number in range(plan.faulted_runs + plan.clean_runs):
            if number == plan.faulted_runs:
                faults.pause()
            elif number > plan.faulted_runs and all(access_token(harness, a) != original[a] for a in accounts):
                break
            runs += 1
            try:
                refresher_handler.lambda_handler({}, LambdaContext("RefresherFunction", timeout_seconds=300))
                outcomes["complete"] += 1
            except RefreshIncomplete:
                outcomes["incomplete"] += 1  # raised on purpose, so Lambda retries the run
            except Exception as exc:
                errors.append(f"run {number + 1} raised {type(exc).__name__}: {exc}")
            for account_id in accounts:
                check(account_id)

        lost_for_good = {a for a in accounts if not working_token(harness, a)}
        refreshed = [a for a in accounts if access_token(harness, a) != original[a]]
        not_active = [a for a in accounts if harness.account(a).status != ACTIVE]
        pending_left = [a for a in accounts if harness.pending(a) is not None]
        stale = [a for a in accounts if harness.account(a).token_expires_at != expires_at(harness, a)]
        published = harness.account_events()
        events = [e["account"]["change"] for e in published]
        # Declared dead (a token_dead event: the producer is told the account needs a new login) while the
        # account ends with a working token: a false alarm, and the sender refused to send in between.
        declared_dead = {e["account_id"] for e in published if e["account"]["change"] == "token_dead"}
        falsely_dead = sorted(a for a in declared_dead if working_token(harness, a))
    # In the variant an account may be without a working token between two runs (a refused promotion, which
    # the next run completes); what may never happen is that no run brings it back.
    lost = len(lost_for_good) if plan.refresh_invalidates_old else len(without_token)
    for_a_while = len(without_token - lost_for_good)
    violations = list(errors)
    known: Counter[str] = Counter()
    if falsely_dead:
        violations.append(f"token_dead published for accounts whose token works: {falsely_dead[:5]}")
    if len(refreshed) < len(accounts):
        violations.append(f"{len(accounts) - len(refreshed)} accounts never refreshed after {runs} runs")
    if not_active:
        violations.append(f"accounts not active at the end: {not_active[:5]}")
    variant = " (Instagram revoking the old token on refresh)" if plan.refresh_invalidates_old else ""
    summary = (
        f"{len(accounts)} accounts due{variant}: refreshed {len(refreshed)} in {runs} runs "
        f"({outcomes['incomplete']} reported incomplete, so Lambda retries them), tokens lost {lost} "
        f"({checks} checks of the current token"
        + (f"; without a working token until a later run: {for_a_while}" if plan.refresh_invalidates_old else "")
        + f"), faults injected {faults.total} ({faults.summary()}); "
        f"afterwards: declared dead with a working token {len(falsely_dead)}, AWSPENDING labels left "
        f"{len(pending_left)}, account items with a stale "
        f"token_expires_at {len(stale)}, account events {sorted(set(events)) or 'none'}"
    )
    figures = {
        "accounts": len(accounts),
        "refreshed": len(refreshed),
        "runs": runs,
        "faults": faults.total,
        "checks": checks,
    }
    return Result(
        "refresher faults" + (" (old token revoked)" if plan.refresh_invalidates_old else ""),
        summary,
        lost=lost,
        violations=violations,
        seconds=time.monotonic() - started,
        figures=figures,
        known=known,
    )


def access_token(harness: AccountsHarness, account_id: str) -> str | None:
    """The token Secrets Manager holds as current; None when it holds none (a token lost)."""
    document = harness.token(account_id)
    return document.access_token if document is not None else None


def expires_at(harness: AccountsHarness, account_id: str) -> int | None:
    document = harness.token(account_id)
    return document.expires_at if document is not None else None

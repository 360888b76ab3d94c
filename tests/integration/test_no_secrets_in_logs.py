"""The whole loop through the real handlers, and no token, secret or signature in any line they log.

Webhook (handshake, signed, forged and unparseable POSTs), sender (delivered, retried, refused, 190 with a
renewed token, 190 with a dead one), callbacks (delivered signed, and dead-lettered after a receiver's
500s), onboarding (invite, login, callback, a replayed state, a reused code) and refresher (a refresh, a
revoked token, an incomplete run). The secrets searched for are the ones the test chose, every version
of every secret in Secrets Manager and every credential that crossed the wire (log_capture.py). The
events published and the table's items must hold none of them either: tokens belong in Secrets Manager
only.
"""

import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest
import requests

from local.aws.apigw import LambdaContext
from local.aws.template import REGION
from local.harnesses.accounts import INSTAGRAM_APP_SECRET, STATE_KEY, AccountsHarness, follow_login
from local.harnesses.outbound import APP_SECRET, SIGNING_SECRET, TOKEN, Loop
from local.samples import meta as m
from local.samples import outbound as out
from onboarding.explainer import continue_url
from refresher import handler as refresher_handler
from refresher.scheduled_run import RefreshIncomplete
from tests.integration.log_capture import Line, Secrets, WireTap, capture_logs, invoke_like_lambda
from webhook.signature import sign

VERIFY_TOKEN = "no-secrets-verify-token-4f1c9a"
WRONG_VERIFY_TOKEN = "no-secrets-verify-token-4f1c9b"  # a near miss is as telling as the real one
SECOND_APP_SECRET = "no-secrets-second-app-secret-8d2e"
FORGED_APP_SECRET = "no-secrets-forged-app-secret-77a0"
RENEWED_TOKEN = "no-secrets-renewed-token-c3b5e1"
DUE_TOKEN = "no-secrets-due-token-5a9f02"
REVOKED_TOKEN = "no-secrets-revoked-token-e61d4b"
CHOSEN = {
    "app secret": [APP_SECRET, SECOND_APP_SECRET],
    "forged app secret": [FORGED_APP_SECRET],
    "verify token": [VERIFY_TOKEN, WRONG_VERIFY_TOKEN],
    "access token": [TOKEN, RENEWED_TOKEN, DUE_TOKEN, REVOKED_TOKEN],
    "instagram app secret": [INSTAGRAM_APP_SECRET],
    "callback signing secret": [SIGNING_SECRET],
    "onboarding state_key": [STATE_KEY],
}

NEW, DUE, REVOKED = "17841400000000077", "17841400000000021", "17841400000000022"
FUNCTIONS = ("WebhookFunction", "SenderFunction", "CallbackFunction", "OnboardingFunction", "RefresherFunction")


def test_the_whole_loop_logs_no_token_secret_or_signature(
    loop: Loop,
    request: pytest.FixtureRequest,
    capfd: pytest.CaptureFixture[str],
    recwarn: pytest.WarningsRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tap = WireTap.install(monkeypatch)
    with capture_logs(capfd, recwarn) as logs:
        _webhook_sender_and_callbacks(loop, monkeypatch)
        # The accounts harness points the same variables (TABLE_NAME, GRAPH_API_BASE_URL ...) at its own
        # stack, so it is set up only now that the outbound half is done. Both share one moto.
        accounts: AccountsHarness = request.getfixturevalue("accounts")
        _onboarding_and_refresher(accounts)

    secrets = _every_secret(loop, accounts, tap)
    names = logs.function_names()
    for function in FUNCTIONS:  # a capture that missed a function's lines cannot pass
        assert any(name.endswith(function) for name in names), f"no line from {function} in {sorted(names)}"
    assert logs.metric_lines(), "no EMF metric line captured"
    assert any(line.source == "logging" for line in logs.lines), "the logging handlers captured nothing"
    leaks = secrets.leaks(logs.lines)
    assert not leaks, f"{len(leaks)} log line(s) hold a secret:\n" + "\n".join(leaks)

    stored = secrets.leaks(_published_and_stored(loop, accounts))
    assert not stored, f"{len(stored)} event(s) or item(s) hold a secret:\n" + "\n".join(stored)


def _webhook_sender_and_callbacks(loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    # A second app secret and a verify token long enough to search for (the fixture's is "t"), before the
    # webhook first reads the secret.
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=loop.stack.refs["AppSecret"],
        SecretString=json.dumps({"app_secrets": [APP_SECRET, SECOND_APP_SECRET], "verify_token": VERIFY_TOKEN}),
    )
    monkeypatch.setenv("CALLBACK_MAX_RECEIVE_COUNT", "2")  # the failing callback is dead-lettered quickly

    # The webhook over HTTP through the local API server (the sandbox's echoes arrive the same way).
    webhook = str(loop.sandbox.webhook_url)
    for verify_token, status in ((VERIFY_TOKEN, 200), (WRONG_VERIFY_TOKEN, 403)):
        answer = requests.get(
            webhook,
            timeout=10,
            params={"hub.mode": "subscribe", "hub.verify_token": verify_token, "hub.challenge": "1158201444"},
        )
        assert answer.status_code == status, answer.text
    hello = m.body(m.envelope(m.text(mid="m_no_secrets", customer=out.CUSTOMER, ts=int(time.time() * 1000))))
    for body, secret, status in (
        (hello, APP_SECRET, 200),
        (hello, FORGED_APP_SECRET, 401),
        (b"{oops", SECOND_APP_SECRET, 400),
    ):
        answer = requests.post(
            webhook,
            data=body,
            timeout=10,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)},
        )
        assert answer.status_code == status, answer.text

    loop.enqueue(out.outbound("text", key="delivered", callback_url=loop.inbox.url))
    loop.run()
    loop.run_callbacks()
    assert [r.document["status"]["status"] for r in loop.inbox.wait_for(2)] == ["SENT", "DELIVERED"]
    assert all(r.signature_ok for r in loop.inbox.received)

    loop.sandbox.inject("http_5xx")
    loop.enqueue(out.outbound("text", key="retried"))
    loop.run(seconds=1)
    assert loop.status_names("retried") == ["SENT", "DELIVERED"]

    loop.sandbox.inject("error", status=400, code=100, message="(#100) Invalid parameter")
    loop.inbox.fail_next(2, status=500)
    loop.enqueue(out.outbound("text", key="refused", callback_url=loop.inbox.url))
    loop.run()
    loop.run_callbacks(seconds=1)
    assert [(s["status"], s["reason"]) for s in loop.statuses("refused")] == [("FAILED", "meta_rejected")]
    assert [d["reason"] for d in loop.dead_callbacks()] == ["retries_exhausted"]

    # 190 after a refresh: the sender reads the token again and sends with the renewed one.
    token_secret = loop.stack.function_environment("OnboardingFunction")["ACCOUNT_SECRET_PREFIX"] + out.ACCOUNT
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=token_secret, SecretString=json.dumps({"access_token": RENEWED_TOKEN})
    )
    loop.sandbox.add_account(out.ACCOUNT, RENEWED_TOKEN)
    loop.sandbox.inject("error", status=401, code=190, message="Error validating access token")
    loop.enqueue(out.outbound("text", key="renewed"))
    loop.run()
    assert loop.status_names("renewed") == ["SENT", "DELIVERED"]

    # 190 again after reading it again: the token is dead.
    loop.sandbox.inject("error", count=2, status=401, code=190, subcode=463, message="Session has expired")
    loop.enqueue(out.outbound("text", key="dead-token"))
    loop.run()
    assert [(s["status"], s["reason"]) for s in loop.statuses("dead-token")] == [("FAILED", "token_invalid")]


def _onboarding_and_refresher(accounts: AccountsHarness) -> None:
    accounts.clock.now = time.time()  # the refresher handler's clock is the real one
    accounts.sandbox.add_login(NEW, "new_shop")
    session = requests.Session()
    connected = follow_login(accounts, session, account_id=NEW)
    assert connected.status_code == 200 and 'data-outcome="connected"' in connected.text, connected.text
    replayed = session.get(connected.url, allow_redirects=False, timeout=10)
    assert replayed.status_code == 400 and 'data-outcome="state_refused"' in replayed.text
    # The first login's code, already used, with a fresh state.
    code = dict(parse_qsl(urlsplit(connected.url).query))["code"]
    start = session.get(accounts.invite(), allow_redirects=False, timeout=10)
    state = dict(parse_qsl(urlsplit(continue_url(start.text)).query))["state"]
    reused = session.get(f"{accounts.api_url}/oauth/callback", params={"code": code, "state": state}, timeout=10)
    assert reused.status_code == 400 and 'data-outcome="code_refused"' in reused.text

    accounts.add(DUE, DUE_TOKEN, age_days=40)  # inside the refresh window
    accounts.add(REVOKED, REVOKED_TOKEN, age_days=2)
    summary = _run_refresher()
    assert isinstance(summary, dict) and summary["refreshed"] == [DUE], summary
    renewed = accounts.token(DUE)
    assert renewed is not None and renewed.access_token != DUE_TOKEN

    accounts.sandbox.revoke(REVOKED)  # a password reset
    accounts.sandbox.inject("http_5xx", endpoint="subscribed_apps", account_id=DUE)  # worth a retry
    incomplete = _run_refresher()
    assert isinstance(incomplete, RefreshIncomplete), incomplete
    assert [e["account"]["reason"] for e in accounts.account_events() if e["account_id"] == REVOKED] == [
        "token_revoked"
    ]


def _run_refresher() -> Any:
    context = LambdaContext(function_name="gw-accounts-RefresherFunction", memory_limit_in_mb=256, timeout_seconds=300)
    return invoke_like_lambda(refresher_handler.lambda_handler, {}, context)


def _every_secret(loop: Loop, accounts: AccountsHarness, tap: WireTap) -> Secrets:
    secrets = Secrets()  # a value keeps the first label it is given: the most telling sources first
    for sandbox, account_ids in ((loop.sandbox, [out.ACCOUNT]), (accounts.sandbox, [NEW, DUE, REVOKED])):
        for account_id in account_ids:
            for token in sandbox.tokens_of(account_id):  # short-lived, long-lived, refreshed, revoked
                secrets.add(f"{token.kind}-lived access token", token.token)
    for label, values in CHOSEN.items():
        for value in values:
            secrets.add(label, value)
    secrets.harvest_vault(accounts.clients["secretsmanager"])  # one moto: both stacks' secrets
    secrets.harvest_wire(tap)
    # The harvest itself worked: every kind of credential is there, so an empty search cannot pass.
    assert all(value in secrets for values in CHOSEN.values() for value in values)
    for label, at_least in (
        ("x-hub-signature-256", 6),
        ("x-hub-signature-256 digest", 6),
        ("x-gateway-signature-256", 4),
        ("Authorization header", 5),
        ("code", 1),
        ("state", 2),
        ("invite", 1),
        ("cookie", 2),
        ("short-lived access token", 1),
        ("long-lived access token", 5),
    ):
        assert len(secrets.labelled(label)) >= at_least, (label, secrets.labelled(label))
    return secrets


def _published_and_stored(loop: Loop, accounts: AccountsHarness) -> list[Line]:
    """The events queue's events (every kind), dead-lettered callbacks, callback bodies and both tables."""
    loop.statuses()  # drains the rest of the events queue into the loop's record of every event
    accounts.account_events()
    found = [Line("event", json.dumps(e)) for e in [*loop._events, *accounts.seen_events]]
    found += [Line("dead-lettered callback", json.dumps(d)) for d in loop.dead_callbacks()]
    found += [Line("callback body", r.body.decode()) for r in loop.inbox.received]
    dynamodb = accounts.clients["dynamodb"]
    for table in (loop.stack.refs["GatewayTable"], accounts.stack.refs["GatewayTable"]):
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            found += [Line(f"{table} item", json.dumps(item)) for item in page["Items"]]
    assert len(found) > 20 and any(e.source == "event" and '"account_status"' in e.text for e in found)
    return found

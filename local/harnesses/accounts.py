"""Accounts and tokens in one process: moto with the template's resources, the Graph sandbox on 127.0.0.1
as Instagram (login pages, token endpoints, /me, subscribed_apps) on a clock the caller moves, the real
refresher service on the same clock, and the real onboarding handler behind the local API server."""

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from igdm.meta.instagram_login import LONG_LIVED_SECONDS, InstagramLogin
from igdm.queues.account_publisher import AccountEventPublisher
from igdm.store.accounts import Account, AccountTable, TokenRescue
from igdm.store.tokens import CURRENT, PENDING, TokenDocument, TokenVault
from local.aws.runtime import FunctionRuntime
from local.aws.template import Stack
from local.harnesses.aws import in_process_aws
from local.meta.graph_sandbox import GraphSandbox
from local.stack import ApiServer
from onboarding import wiring as onboarding_wiring
from onboarding.explainer import continue_url
from onboarding.state import make_invite
from refresher import wiring as refresher_wiring
from refresher.service import DAY, Refresher, RunReport
from tools.accounts import register_account

APP_ID = "test-instagram-app-id"
INSTAGRAM_APP_SECRET = "test-instagram-app-secret-0123456789"
STATE_KEY = "test-onboarding-state-key-0123456789abcdef"
START = 1_790_000_000.0  # 2026-09-21: a fixed start, so day arithmetic is exact


@dataclass
class Clock:
    now: float = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def reset_function_state() -> None:
    onboarding_wiring.reset()
    refresher_wiring.reset()


@dataclass
class AccountsHarness:
    stack: Stack
    clients: dict[str, Any]
    sandbox: GraphSandbox
    clock: Clock
    api_url: str
    fields: list[str]
    seen_events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def table(self) -> AccountTable:
        return AccountTable(self.clients["dynamodb"], self.stack.refs["GatewayTable"])

    @property
    def vault(self) -> TokenVault:
        return TokenVault(self.clients["secretsmanager"], f"{self.stack.name}/accounts/")

    @property
    def rescue(self) -> TokenRescue:
        return TokenRescue(self.clients["dynamodb"], self.stack.refs["GatewayTable"])

    def login(self) -> InstagramLogin:
        return InstagramLogin(
            graph_base_url=self.sandbox.base_url,
            api_version="v24.0",
            oauth_token_url=f"{self.sandbox.base_url}/oauth/access_token",
        )

    def refresher(self, *, window_days: float = 30, warning_days: float = 7) -> Refresher:
        return Refresher(
            accounts=self.table,
            vault=self.vault,
            rescue=self.rescue,
            login=self.login(),
            events=AccountEventPublisher(self.clients["sqs"], self.stack.refs["EventsQueue"]),
            webhook_fields=self.fields,
            window_seconds=window_days * DAY,
            warning_seconds=warning_days * DAY,
            clock=self.clock,
        )

    def run(self) -> RunReport:
        return self.refresher().run()

    def add(
        self, account_id: str, token: str, *, age_days: float = 0, expires_in_days: float = 60, subscribed: bool = True
    ) -> None:
        """An account connected `age_days` ago, known to the sandbox and the gateway alike."""
        issued = self.clock.now - age_days * DAY
        self.sandbox.add_account(
            account_id, token, username=f"shop_{account_id[-2:]}", issued_at=issued, expires_in=expires_in_days * DAY
        )
        register_account(
            self.clients["dynamodb"],
            self.clients["secretsmanager"],
            table=self.stack.refs["GatewayTable"],
            secret_prefix=f"{self.stack.name}/accounts/",
            account_id=account_id,
            access_token=token,
            username=f"shop_{account_id[-2:]}",
            expires_at=int(issued + expires_in_days * DAY),
            refreshed_at=int(issued),
            now=self.clock.now,
        )
        if subscribed:
            self.login().subscribe(token, self.fields)

    def account(self, account_id: str) -> Account:
        found = self.table.get(account_id)
        assert found is not None, f"no account item for {account_id}"
        return found

    def token(self, account_id: str, stage: str = CURRENT) -> TokenDocument | None:
        stored = self.vault.read(f"{self.stack.name}/accounts/{account_id}", account_id, stage)
        return stored[0] if stored else None

    def pending(self, account_id: str) -> TokenDocument | None:
        return self.token(account_id, PENDING)

    def account_events(self) -> list[dict[str, Any]]:
        """account_status events published since the last call (the queue is drained as it is read)."""
        sqs, url = self.clients["sqs"], self.stack.refs["EventsQueue"]
        fresh: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                fresh.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        self.seen_events.extend(fresh)
        return [e for e in fresh if e["kind"] == "account_status"]

    def invite(self) -> str:
        return f"{self.api_url}/oauth/start?invite={make_invite(STATE_KEY, valid_seconds=3600)}"

    def token_alive(self, account_id: str) -> bool:
        document = self.token(account_id)
        assert document is not None
        try:
            self.login().me(document.access_token)
        except Exception:
            return False
        return True


@contextmanager
def accounts_harness(
    patch: pytest.MonkeyPatch, *, real_clock: bool = False, serve_onboarding: bool = True, **sandbox_options: Any
) -> Iterator[AccountsHarness]:
    """The onboarding and refresher functions' environment from the template, the sandbox as Instagram.

    By default the sandbox and the harness's refresher share a Clock fixed at START that the caller moves;
    ``real_clock`` puts the sandbox on time.time() (what the deployed refresher handler reads), the Clock then
    starting at now. ``serve_onboarding``: the onboarding handler behind the local API server (api_url)."""
    secrets = {
        "AppSecret": json.dumps(
            {
                "app_secrets": ["a" * 32],
                "verify_token": "t",
                "instagram_app_id": APP_ID,
                "instagram_app_secret": INSTAGRAM_APP_SECRET,
            }
        ),
        "OnboardingSecret": json.dumps({"state_key": STATE_KEY}),
    }
    with in_process_aws(patch, "gw-accounts", secrets) as (stack, clients), contextlib.ExitStack() as running:
        clock = Clock(now=time.time()) if real_clock else Clock()
        if not real_clock:
            sandbox_options = {"clock": clock, **sandbox_options}
        sandbox = GraphSandbox(app_id=APP_ID, instagram_app_secret=INSTAGRAM_APP_SECRET, **sandbox_options)
        running.callback(sandbox.stop)  # safe before start(): the sandbox checks what it started
        sandbox.start()
        overrides = {
            "LOCAL_STACK": "true",
            "GRAPH_API_BASE_URL": sandbox.base_url,
            "INSTAGRAM_AUTHORIZE_URL": f"{sandbox.base_url}/oauth/authorize",
            "INSTAGRAM_TOKEN_URL": f"{sandbox.base_url}/oauth/access_token",
        }
        for function in ("OnboardingFunction", "RefresherFunction"):
            for key, value in {**stack.function_environment(function), **overrides}.items():
                patch.setenv(key, value)
        api_url = ""
        if serve_onboarding:
            api = ApiServer(0, stack.routes(), FunctionRuntime(stack, overrides))
            running.callback(api.server_close)
            api_thread = threading.Thread(target=api.serve_forever, daemon=True)
            api_thread.start()
            running.callback(api_thread.join, 5)
            running.callback(api.shutdown)
            api_url = f"http://127.0.0.1:{api.server_address[1]}"
        running.callback(reset_function_state)
        reset_function_state()
        fields = stack.function_environment("RefresherFunction")["WEBHOOK_FIELDS"].split(",")
        yield AccountsHarness(stack, clients, sandbox, clock, api_url, fields)


def follow_login(
    harness: AccountsHarness,
    session: requests.Session,
    *,
    decision: str = "allow",
    account_id: str = "17841400000000077",
) -> requests.Response:
    """Invite -> /oauth/start's explainer -> its Continue button -> the sandbox's consent page -> Allow/Cancel ->
    the gateway's callback."""
    start = session.get(harness.invite(), allow_redirects=False, timeout=10)
    assert start.status_code == 200 and 'data-outcome="explainer"' in start.text, start.text
    authorize = continue_url(start.text)
    consent = session.get(authorize, timeout=10)
    assert consent.status_code == 200 and 'id="allow"' in consent.text
    params = dict(parse_qsl(urlsplit(authorize).query))
    answer = session.post(
        f"{harness.sandbox.base_url}/oauth/authorize",
        allow_redirects=False,
        timeout=10,
        data={**params, "account_id": account_id, "decision": decision},
    )
    assert answer.status_code == 302, answer.text
    return session.get(answer.headers["Location"], allow_redirects=False, timeout=30)


LONG_LIVED_DAYS = LONG_LIVED_SECONDS / DAY

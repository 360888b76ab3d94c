"""What one Lambda instance of the sender, callback, onboarding or refresher function talks to, all on
127.0.0.1: moto in server mode with the template's table, queues and secrets; the Graph sandbox (with
Meta's latency, bench.graph) holding the accounts; a callback inbox. It runs in the bench's own process,
so the child process that plays the function holds the function and nothing else.

Everything it starts is stopped on leaving the `with` block, whatever happened inside.
"""

import json
import logging
import time
from contextlib import ExitStack
from types import TracebackType
from typing import Any, Self

import boto3

from bench.common import LOOPBACK, REGION, clean_environment, free_port, lambda_path

APP_SECRET = "bench-app-secret-0123456789"  # noqa: S105 - the local stack's kind of secret
CALLBACK_SIGNING_SECRET = "bench-callback-signing-secret-0123456789"  # noqa: S105
SENDER_ACCOUNT = "17841400000000001"
ONBOARDING_ACCOUNT = "17841400000000002"
REFRESHED_ACCOUNTS = [f"178414000000001{i:02d}" for i in range(10)]
SENDER_TOKEN = "bench-sender-token"  # noqa: S105 - the sandbox's
DAY = 86_400


class World:
    def __init__(self, open_conversations: int) -> None:
        self._open_conversations = open_conversations
        self._exit = ExitStack()

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._exit.close()

    def _start(self) -> None:
        from moto.server import ThreadedMotoServer

        from bench.graph import SlowGraphSandbox
        from local.aws.template import provision
        from local.callback_inbox import CallbackInbox
        from local.meta.login import DEFAULT_APP_ID, DEFAULT_INSTAGRAM_APP_SECRET

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per emulator request otherwise
        self.endpoint = f"http://{LOOPBACK}:{free_port()}"
        emulator = ThreadedMotoServer(ip_address=LOOPBACK, port=int(self.endpoint.rpartition(":")[2]), verbose=False)
        emulator.start()
        self._exit.callback(emulator.stop)
        session = boto3.session.Session(
            aws_access_key_id="bench",
            aws_secret_access_key="bench",  # noqa: S106
            region_name=REGION,
        )
        self.clients = {s: session.client(s, endpoint_url=self.endpoint) for s in ("dynamodb", "sqs", "secretsmanager")}
        self.stack = provision(
            self.clients,
            "bench",
            {
                "AppSecret": json.dumps(
                    {
                        "app_secrets": [APP_SECRET],
                        "verify_token": "bench",
                        "instagram_app_id": DEFAULT_APP_ID,
                        "instagram_app_secret": DEFAULT_INSTAGRAM_APP_SECRET,
                    }
                ),
                "CallbackSigningSecret": json.dumps({"signing_secret": CALLBACK_SIGNING_SECRET}),
            },
        )
        # The sandbox allows the reconciler twice Meta's Conversations API rate, which the reconciler keeps to:
        # at the exact limit a call the machine holds back by more than the limiter's jitter allowance lands next
        # to the one after it and is throttled (80002), failing the run. The bench measures cost, not the limit
        # (tests/integration/test_rate_limiter.py holds the limiter to it); tests/integration/test_reconciler.py
        # does the same.
        self.sandbox = SlowGraphSandbox(
            app_id=DEFAULT_APP_ID, instagram_app_secret=DEFAULT_INSTAGRAM_APP_SECRET, conversations_rate_per_second=4
        )
        self.sandbox.start()
        self._exit.callback(self.sandbox.stop)
        self.inbox = CallbackInbox(CALLBACK_SIGNING_SECRET).start()
        self._exit.callback(self.inbox.stop)
        self._accounts()

    def _accounts(self) -> None:
        from igdm.store.keys import CONVERSATION_STATE_SK, conversation_pk
        from tools.accounts import register_account

        now = time.time()
        table, prefix = self.stack.refs["GatewayTable"], self.stack.resolve({"Fn::Sub": "${AWS::StackName}/accounts/"})
        self.sandbox.add_account(SENDER_ACCOUNT, SENDER_TOKEN, username="bench_sender")
        register_account(
            self.clients["dynamodb"],
            self.clients["secretsmanager"],
            table=table,
            secret_prefix=prefix,
            account_id=SENDER_ACCOUNT,
            access_token=SENDER_TOKEN,
            username="bench_sender",
            expires_at=int(now + 50 * DAY),
            refreshed_at=int(now - 10 * DAY),
        )
        for i in range(self._open_conversations):  # each customer wrote a minute ago: the window is open
            self.clients["dynamodb"].put_item(
                TableName=table,
                Item={
                    "pk": {"S": conversation_pk(SENDER_ACCOUNT, customer(i))},
                    "sk": {"S": CONVERSATION_STATE_SK},
                    "last_user_message_at": {"N": str(int((now - 60) * 1000))},
                },
            )
        # Tokens 40 days old, 20 days from expiry: inside the refresher's window, so each run renews them.
        for account in REFRESHED_ACCOUNTS:
            token = f"bench-token-{account}"
            self.sandbox.add_account(account, token, issued_at=now - 40 * DAY)
            register_account(
                self.clients["dynamodb"],
                self.clients["secretsmanager"],
                table=table,
                secret_prefix=prefix,
                account_id=account,
                access_token=token,
                expires_at=int(now + 20 * DAY),
                refreshed_at=int(now - 40 * DAY),
            )
        self.sandbox.add_login(ONBOARDING_ACCOUNT, "bench_shop")

    def environment(self, logical_id: str) -> dict[str, str]:
        """The function's environment as Lambda would set it, pointed at this world."""
        graph = self.sandbox.base_url
        return {
            **clean_environment(),
            **self.stack.function_environment(logical_id),
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": REGION,
            "GRAPH_API_BASE_URL": graph,
            "ALLOW_LOCAL_CALLBACKS": "true",
            "LOCAL_STACK": "true",
            "INSTAGRAM_AUTHORIZE_URL": f"{graph}/oauth/authorize",
            "INSTAGRAM_TOKEN_URL": f"{graph}/oauth/access_token",
            "PYTHONPATH": lambda_path(logical_id),
        }

    def state_key(self) -> str:
        secret = self.clients["secretsmanager"].get_secret_value(SecretId=self.stack.refs["OnboardingSecret"])
        return str(json.loads(secret["SecretString"])["state_key"])

    def callback_job(self, n: int) -> dict[str, Any]:
        """A callback job as the sender queues it: a SENT status, to the inbox."""
        from igdm.contracts.message_status import status_event
        from igdm.contracts.serialized import SerializedEvent
        from igdm.store.outbound_records import OutboundRecord

        record = OutboundRecord(
            idempotency_key=f"bench-callback-{n}",
            status="SENT",
            account_id=SENDER_ACCOUNT,
            customer_id=customer(n),
            kind="text",
            payload_hash="-",
            parts_total=1,
            parts_sent=1,
            inflight_part=None,
            message_ids=[f"m_bench_{n}"],
            correlation_id=f"order-{n}",
            callback_url=self.inbox.url,
            callback_data=f"customer-{n}",
        )
        event = status_event(record)
        return {"url": self.inbox.url, "event_id": event.event_id, "body": SerializedEvent.of(event).body}


def customer(n: int) -> str:
    return f"9{n:015d}"

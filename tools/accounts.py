"""Accounts of a deployed stack (or of `make run` with --local): invite links, registering a token from
Meta's App Dashboard, and a listing.

  python -m tools.accounts invite   --stack NAME [--hours 72]   a link that starts the onboarding login
  python -m tools.accounts register --stack NAME                reads a long-lived token on stdin
  python -m tools.accounts list     --stack NAME                status, token expiry, fields, last webhook, history
  python -m tools.accounts pause    --stack NAME --account ID   stop sending for one account (inbound goes on)
  python -m tools.accounts resume   --stack NAME --account ID   send again: the messages that waited go, in order
  python -m tools.accounts profile  --stack NAME --account ID --file profile.json
                                    the account's ice breakers and menu: applied now, restored by the refresher
  python -m tools.accounts forget   --stack NAME --customer IGSID
                                    erase a customer: every event, conversation state and message record that
                                    names them is deleted, and a customer_forgotten event tells your systems

The deployed stack's table, queue and secrets come from its CloudFormation outputs and parameters, with
the AWS credentials of the shell. The token is read from stdin (or a hidden prompt), never from the
command line, where shell history and the process list would keep it; it is never printed.
"""

import argparse
import getpass
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from pydantic import ValidationError

from igdm.contracts.account_status import AccountChange
from igdm.contracts.outbound import validation_reason
from igdm.contracts.profile import MessengerProfile
from igdm.meta.connect import AccountConnector
from igdm.meta.instagram_login import InstagramLogin, LoginError
from igdm.meta.webhook_fields import DEFAULT_FIELDS as WEBHOOK_FIELD_NAMES
from igdm.queues.account_publisher import AccountEventPublisher
from igdm.store.accounts import Account, AccountTable
from igdm.store.tokens import TokenDocument, TokenVault

DEFAULT_FIELDS = ",".join(WEBHOOK_FIELD_NAMES)


def register_account(
    dynamodb: Any,
    secretsmanager: Any,
    *,
    table: str,
    secret_prefix: str,
    account_id: str,
    access_token: str,
    username: str | None = None,
    expires_at: int | None = None,
    refreshed_at: int | None = None,
    scopes: tuple[str, ...] = (),
    now: float | None = None,
) -> Account:
    """Store an account's token secret, then its item (the item is what makes it usable)."""
    now = time.time() if now is None else now
    document = TokenDocument(access_token, account_id, username, scopes, expires_at, refreshed_at)
    name = TokenVault(secretsmanager, secret_prefix).store(document)
    return AccountTable(dynamodb, table).save(document, name, now=now)


@dataclass(frozen=True)
class Target:
    """Where an account lives: the stack's resources and how to reach Meta."""

    clients: dict[str, Any]
    table: str
    events_queue_url: str
    secret_prefix: str
    onboarding_secret: str
    start_url: str
    graph_base_url: str
    graph_api_version: str
    webhook_fields: list[str]


def deployed(stack_name: str) -> Target:
    cloudformation = boto3.client("cloudformation")
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    parameters = {
        p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", "")) for p in stack.get("Parameters", [])
    }
    clients = {s: boto3.client(s) for s in ("dynamodb", "secretsmanager", "sqs")}
    return Target(
        clients,
        outputs["TableName"],
        outputs["EventsQueueUrl"],
        f"{stack_name}/accounts/",
        outputs["OnboardingSecretArn"],
        outputs["OnboardingStartUrl"],
        parameters.get("GraphApiBaseUrl") or "https://graph.instagram.com",
        parameters.get("GraphApiVersion") or "v24.0",
        (parameters.get("WebhookFields") or DEFAULT_FIELDS).split(","),
    )


def local() -> Target:
    from local.stack import LOOPBACK, LocalConfig, provision_stack, require_running

    config = LocalConfig.from_environment()
    require_running(config)
    stack = provision_stack(config)
    environment = stack.function_environment("RefresherFunction")
    clients = {
        s: boto3.client(s, endpoint_url=config.endpoint, region_name="us-east-1")
        for s in ("dynamodb", "secretsmanager", "sqs")
    }
    return Target(
        clients,
        stack.refs["GatewayTable"],
        stack.refs["EventsQueue"],
        stack.resolve({"Fn::Sub": "${AWS::StackName}/accounts/"}),
        stack.refs["OnboardingSecret"],
        f"{config.api_url}/oauth/start",
        config.graph_api_base_url or f"http://{LOOPBACK}:{config.graph_port}",
        environment["GRAPH_API_VERSION"],
        environment["WEBHOOK_FIELDS"].split(","),
    )


def invite(target: Target, hours: float) -> str:
    from onboarding.state import make_invite  # the onboarding function's own code, so both always agree

    document = json.loads(
        target.clients["secretsmanager"].get_secret_value(SecretId=target.onboarding_secret)["SecretString"]
    )
    return f"{target.start_url}?invite={make_invite(document['state_key'], valid_seconds=int(hours * 3600))}"


def register(target: Target, token: str) -> str:
    connector = AccountConnector(
        login=InstagramLogin(
            graph_base_url=target.graph_base_url, api_version=target.graph_api_version, oauth_token_url=""
        ),  # nosec B106 # a URL, unused: no code is exchanged
        vault=TokenVault(target.clients["secretsmanager"], target.secret_prefix),
        accounts=AccountTable(target.clients["dynamodb"], target.table),
        events=AccountEventPublisher(target.clients["sqs"], target.events_queue_url),
        webhook_fields=target.webhook_fields,
    )
    connected = connector.connect_pasted_token(token)
    account = connected.account
    expires = (
        datetime.fromtimestamp(account.token_expires_at, UTC).date().isoformat()
        if account.token_expires_at
        else "unknown"
    )
    lines = [f"registered @{account.username or '?'} (account {account.account_id}); token expires {expires}"]
    if connected.subscription_error:
        lines.append(f"webhook subscription failed: {connected.subscription_error} (the refresher retries daily)")
    else:
        lines.append(f"webhook fields: {', '.join(connected.subscribed_fields)}")
    return "\n".join(lines)


def listing(target: Target) -> str:
    rows = []
    for account in AccountTable(target.clients["dynamodb"], target.table).all():
        expires = (
            datetime.fromtimestamp(account.token_expires_at, UTC).isoformat(timespec="minutes")
            if account.token_expires_at
            else "unknown"
        )
        fields = ",".join(account.subscribed_fields) or "-"
        rows.append(
            f"{account.account_id}  @{account.username or '?'}  {account.status}  token expires {expires}  "
            f"fields {fields}  last webhook {account.last_webhook_at or '-'}  "
            + (
                f"history imported {account.history_imported_at}"
                if account.history_imported_at
                else f"history importing (read up to {account.reconciled_until or 'not yet'})"
            )
            + (f"  PAUSED since {account.paused_at}" if account.paused_at else "")
            + (
                _profile_line(account.messenger_profile, account.profile_checked_at)
                if account.messenger_profile
                else ""
            )
            + (f"  ({account.status_detail})" if account.status_detail else "")
        )
    return "\n".join(rows) or "no accounts"


def set_paused(target: Target, account_id: str, paused: bool, *, now: float | None = None) -> str:
    """Pause or resume sending for one account, and announce it with an account_status event."""
    now = time.time() if now is None else now
    table = AccountTable(target.clients["dynamodb"], target.table)
    account = table.get(account_id)
    if account is None:
        raise SystemExit(f"no account {account_id} in this stack (python -m tools.accounts list shows them)")
    if (account.paused_at is not None) == paused:
        return f"{account_id} is already {'paused since ' + str(account.paused_at) if paused else 'sending'}"
    table.set_paused(account_id, paused, now=now)
    moment = datetime.fromtimestamp(now, UTC).isoformat()
    change = AccountChange(
        account_id,
        account.status,
        "paused" if paused else "resumed",
        reason="operator",
        detail=(
            "sending stopped: messages wait on the outbound queue (or expire); inbound events keep flowing"
            if paused
            else f"sending again (paused since {account.paused_at}): the messages that waited go, in order"
        ),
        username=account.username,
        moment=moment,
    )
    unpublished = AccountEventPublisher(target.clients["sqs"], target.events_queue_url).publish([change], now=now)
    note = "; the account_status event was not published (the events queue refused it)" if unpublished else ""
    if paused:
        return f"paused {account_id} (@{account.username or '?'}): nothing is sent until `resume`{note}"
    return f"resumed {account_id} (@{account.username or '?'}): sending within about a minute{note}"


def set_profile(target: Target, account_id: str, text: str, *, now: float | None = None) -> str:
    """Validate a profile document (igdm.contracts.profile), apply it at Meta with the account's token, and
    keep it on the account item, where the refresher checks it daily."""
    now = time.time() if now is None else now
    try:
        profile = MessengerProfile.model_validate_json(text)
    except ValidationError as exc:
        problems = validation_reason(exc.errors(include_url=False, include_input=False))
        raise SystemExit(f"profile not applied: {problems}") from None
    table = AccountTable(target.clients["dynamodb"], target.table)
    account = table.get(account_id)
    if account is None:
        raise SystemExit(f"no account {account_id} in this stack (python -m tools.accounts list shows them)")
    stored = TokenVault(target.clients["secretsmanager"], target.secret_prefix).read(
        account.token_secret_id, account_id
    )
    if stored is None:
        raise SystemExit(f"account {account_id} has no token: connect it again (tools.accounts invite)")
    login = InstagramLogin(
        graph_base_url=target.graph_base_url, api_version=target.graph_api_version, oauth_token_url=""
    )  # nosec B106 # a URL, unused: no code is exchanged
    try:
        login.set_messenger_profile(stored[0].access_token, profile.graph_body())
    except LoginError as error:
        raise SystemExit(f"profile not applied: Meta answered {error.detail}") from None
    table.set_profile(account_id, profile.to_json(), now=now)
    return f"applied to {account_id} (@{account.username or '?'}): {profile.summary()}; the refresher keeps them"


def forget(target: Target, customer_id: str, *, now: float | None = None) -> str:
    """Erase a customer (GDPR's right to erasure) with the eraser's own code, here and now: the request is
    recorded as Meta's data-deletion callback records it (requested_by operator), carried out, and summarised."""
    from eraser.service import Eraser  # the eraser function's own code, so both always agree
    from igdm.queues.erasure_queue import ErasureJob
    from igdm.queues.event_queue import SqsEventPublisher
    from igdm.runtime.observability import Counts
    from igdm.store.erasure import FAMILIES, ErasureRequest, ErasureRequests, StoredData

    now = time.time() if now is None else now
    if not customer_id.isdigit():
        raise SystemExit("--customer takes the customer's Instagram-scoped id (IGSID): digits only")
    dynamodb, sqs = target.clients["dynamodb"], target.clients["sqs"]
    data = StoredData(dynamodb, target.table)
    if customer_id in data.accounts():
        raise SystemExit(f"{customer_id} is an account of this stack, not a customer: nothing was erased")
    requests = ErasureRequests(dynamodb, target.table)
    request = ErasureRequest.new(customer_id, "operator", now=now)
    requests.add(request)
    vault = TokenVault(target.clients["secretsmanager"], target.secret_prefix)
    eraser = Eraser(
        requests=requests,
        data=data,
        vault=vault,
        events=SqsEventPublisher(sqs, target.events_queue_url),
        account_events=AccountEventPublisher(sqs, target.events_queue_url),
        secret_name=vault.secret_name,
        metrics=Counts(),
        clock=lambda: now,
    )
    done = eraser.erase(ErasureJob(request.code, customer_id))
    deleted = done.deleted if done else {}
    counted = ", ".join(f"{deleted[name]} {name.replace('_', ' ')}" for name in FAMILIES if deleted.get(name))
    return (
        f"forgot customer {customer_id}: deleted {counted or 'nothing (nothing was stored about them)'}; "
        f"customer_forgotten events published for each account; confirmation code {request.code}"
    )


def _profile_line(profile_json: str, checked_at: str | None) -> str:
    try:
        summary = MessengerProfile.model_validate_json(profile_json).summary()
    except ValidationError:
        summary = "an unreadable profile"
    return f"  {summary} (checked {checked_at or 'never'})"


def _read_token() -> str:
    token = getpass.getpass("long-lived Instagram token: ") if sys.stdin.isatty() else sys.stdin.readline()
    return token.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.accounts", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=("invite", "register", "list", "pause", "resume", "profile", "forget"))
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the deployed stack's name")
    where.add_argument("--local", action="store_true", help="the stack `make run` runs on this machine")
    parser.add_argument("--hours", type=float, default=72, help="how long an invite link works (default 72)")
    parser.add_argument("--account", help="pause, resume, profile: the account's id (as `list` shows it)")
    parser.add_argument("--file", help="profile: a JSON file with ice_breakers and/or persistent_menu")
    parser.add_argument("--customer", help="forget: the customer's Instagram-scoped id (IGSID)")
    args = parser.parse_args(argv)
    needs = {"pause": "account", "resume": "account", "profile": "account", "forget": "customer"}
    if args.command in needs and not getattr(args, needs[args.command]):
        parser.error(f"{args.command} needs --{needs[args.command]} <id>")
    if args.command == "profile" and not args.file:
        parser.error("profile needs --file <profile.json>")
    target = local() if args.local else deployed(args.stack)
    if args.command == "register":
        return _register(target)
    print(
        {
            "forget": lambda: forget(target, args.customer),
            "profile": lambda: set_profile(target, args.account, _read_file(args.file)),
            "pause": lambda: set_paused(target, args.account, True),
            "resume": lambda: set_paused(target, args.account, False),
            "invite": lambda: invite(target, args.hours),
            "list": lambda: listing(target),
        }[args.command]()
    )
    return 0


def _read_file(path: str) -> str:
    with open(path, encoding="utf-8") as document:
        return document.read()


def _register(target: Target) -> int:
    token = _read_token()
    if not token:
        print("no token given", file=sys.stderr)
        return 2
    try:
        print(register(target, token))
    except LoginError as error:
        print(f"not registered: Meta refused the token ({error.detail})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

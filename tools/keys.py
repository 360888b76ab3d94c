"""The HTTP API's keys (docs/http-api.md), for a deployed stack or `make run` (--local):

  python -m tools.keys create --stack NAME --name NAME [--scopes send,read,erase,webhooks] [--account ID]
                               prints the new key once, alone on the last line: it is never stored, only its hash
  python -m tools.keys revoke --stack NAME --id KEY_ID   refused within a minute (the authorizer's cache)
  python -m tools.keys list   --stack NAME               id, name, scopes, account, created, revoked

A key is sent as `Authorization: Bearer <key>`. `send` lets it POST messages, `read` read them, `erase` erase a
customer (DELETE /v1/customers/<id>; never given by default); `--account` restricts it to one account's messages
(such a key cannot erase: an erasure covers every account).
"""

import argparse
import sys
import time

from igdm.store.api_keys import SCOPES, ApiKey, ApiKeys
from tools.accounts import Target, deployed, local


def create(
    target: Target, name: str, scopes: tuple[str, ...], account_id: str | None, *, now: float | None = None
) -> str:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise SystemExit(f"--scopes takes a comma-separated subset of {', '.join(SCOPES)}; not {unknown or 'none'}")
    api_key, presented = ApiKey.new(name, scopes, account_id, now=time.time() if now is None else now)
    ApiKeys(target.clients["dynamodb"], target.table).add(api_key)
    restricted = f", account {account_id} only" if account_id else ""
    return (
        f"created key {api_key.key_id} ({name}; scopes {','.join(scopes)}{restricted}). It is shown once, now;\n"
        f"send it as Authorization: Bearer <key>\n{presented}"
    )


def revoke(target: Target, key_id: str, *, now: float | None = None) -> str:
    if not ApiKeys(target.clients["dynamodb"], target.table).revoke(key_id, now=time.time() if now is None else now):
        raise SystemExit(f"no key {key_id} in this stack (python -m tools.keys list shows them)")
    return f"revoked {key_id}: refused within a minute"


def listing(target: Target) -> str:
    keys = ApiKeys(target.clients["dynamodb"], target.table).all()
    if not keys:
        return "no keys (python -m tools.keys create makes one)"
    return "\n".join(
        f"{k.key_id}  {k.name}  scopes {','.join(k.scopes)}  account {k.account_id or 'any'}  created {k.created_at}"
        + (f"  REVOKED {k.revoked_at}" if k.revoked_at else "")
        for k in keys
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.keys", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=("create", "revoke", "list"))
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the deployed stack's name")
    where.add_argument("--local", action="store_true", help="the stack `make run` runs on this machine")
    parser.add_argument("--name", help="create: what the key is for (shown by list)")
    parser.add_argument(
        "--scopes",
        default="send,read",
        help="create: a comma-separated subset of send, read, erase, webhooks (default send,read)",
    )
    parser.add_argument("--account", help="create: restrict the key to this account's messages")
    parser.add_argument("--id", help="revoke: the key's id (as list shows it)")
    args = parser.parse_args(argv)
    if args.command == "create" and not args.name:
        parser.error("create needs --name <what the key is for>")
    if args.command == "revoke" and not args.id:
        parser.error("revoke needs --id <key id>")
    target = local() if args.local else deployed(args.stack)
    if args.command == "create":
        scopes = tuple(s.strip() for s in args.scopes.split(",") if s.strip())
        print(create(target, args.name, scopes, args.account))
    elif args.command == "revoke":
        print(revoke(target, args.id))
    else:
        print(listing(target))
    return 0


if __name__ == "__main__":
    sys.exit(main())

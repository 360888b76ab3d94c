"""The local console (docs/console.md): `make run`'s gateway in a browser at http://127.0.0.1:<LOCAL_API_PORT>/console.
Its accounts, their conversations with every event and every outbound message's statuses, a reply box, and the
callbacks the local inbox received. The local stack's own: not in the template, never deployed.

local.stack hands it every request for /console and below, from the API server's threads and outside the lock the
functions take turns under: it reads the emulator through boto3 clients of its own (which are thread-safe), and
keeps the little it holds itself (the replies it queued) behind a lock.

    reads.py    what the console shows, read through the gateway's store modules (igdm.store)
    replies.py  the reply box: a text on the outbound queue, as `make send` queues one
    pages.py    the routes: the page, its JSON, validation, and never an exception into the server
    static/     the page, its script, its style and its icon: plain files, no build step, nothing from elsewhere
"""

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from local.aws.template import REGION, Stack
from local.callback_inbox import CallbackInbox, Received

if TYPE_CHECKING:  # local.stack imports this package: its names are only needed for the types
    from local.console.pages import Console
    from local.stack import ConsolePages, LocalConfig


def console_pages(config: "LocalConfig", stack: Stack, inbox: CallbackInbox) -> "ConsolePages":
    """`make run`'s console: the emulator through clients of its own, the callback inbox of the same process."""
    import boto3

    dynamodb, sqs = (boto3.client(s, endpoint_url=config.endpoint, region_name=REGION) for s in ("dynamodb", "sqs"))
    # A copy: the inbox appends from its own threads (list() of a list is atomic in CPython).
    return console(stack, dynamodb, sqs, callback_url=config.callback_url, callbacks=lambda: list(inbox.received))


def console(
    stack: Stack,
    dynamodb: Any,
    sqs: Any,
    *,
    callback_url: str,
    callbacks: Callable[[], list[Received]],
    clock: Callable[[], float] = time.time,
) -> "Console":
    """The console of a provisioned stack, with the given clients (the tests' are moto's in their process)."""
    # Imported here, as local.stack's register_local_account imports igdm: once the FunctionRuntime has set the
    # template's environment, which Powertools reads when the gateway's modules are first imported.
    from local.console.pages import Console
    from local.console.reads import ConsoleReads
    from local.console.replies import Replies

    reads = ConsoleReads(
        dynamodb,
        stack.refs["GatewayTable"],
        retention_days=int(stack.function_environment("SenderFunction")["EVENT_RETENTION_DAYS"]),
        # The fields every account is kept subscribed to, as the refresher checks them.
        webhook_fields=stack.function_environment("RefresherFunction")["WEBHOOK_FIELDS"].split(","),
        callbacks=callbacks,
        clock=clock,
    )
    return Console(reads, Replies(sqs, stack.refs["OutboundQueue"], callback_url, clock=clock))

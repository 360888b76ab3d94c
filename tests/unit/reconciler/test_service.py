"""The reconciler's logic on in-memory ports: what it publishes, exactly once, and where it leaves its watermark."""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest

from igdm.contracts.events import EventKind, InboundEvent
from igdm.inbound.ingest import ingest
from igdm.inbound.meta_payload import Envelope
from igdm.meta.echoes import Unsettled, fingerprint, marker
from igdm.meta.instagram_login import LoginError
from igdm.store.accounts import ACTIVE, NEEDS_REAUTHORISATION, Account
from igdm.store.outbound_records import DELIVERED, FAILED, UNKNOWN
from local.harnesses.webhook_in_memory import MemoryQueue, MemoryStore
from local.samples import meta as m
from reconciler.service import DAY, Reconciler
from tests.fakes.accounts import MemoryAccountEvents, MemoryAccountTable
from tests.fakes.clock import ManualClock
from tests.fakes.conversations import MemoryConversations
from tests.fakes.sender import MemoryLimiter, MemoryRecords, PublishedStatuses

ACCOUNT = m.ACCOUNT
NOW = 1_800_000_000.0
HOUR = 3600.0


@dataclass
class Tokens:
    marked: dict[str, str] = field(default_factory=dict)

    def token(self, account: Account, *, fresh: bool = False) -> str:
        return f"token-{account.account_id}"

    def mark_needs_reauthorisation(self, account_id: str, detail: str, *, while_doing: str = "sending") -> None:
        self.marked[account_id] = f"{while_doing}: {detail}"


FIELDS = ["messages", "message_reactions", "messaging_seen"]


@dataclass
class Subscriptions:
    """The account's webhook subscription at Meta."""

    fields: set[str] = field(default_factory=lambda: set(FIELDS))
    subscribe_calls: int = 0

    def subscribed_fields(self, token: str) -> set[str]:
        return set(self.fields)

    def subscribe(self, token: str, wanted: list[str]) -> tuple[list[str], list[str]]:
        self.subscribe_calls += 1
        self.fields = set(wanted)
        return list(wanted), []


@dataclass
class World:
    clock: ManualClock
    accounts: MemoryAccountTable
    tokens: Tokens
    meta: MemoryConversations
    limiter: MemoryLimiter
    store: MemoryStore
    queue: MemoryQueue
    reconciler: Reconciler
    subscriptions: Subscriptions
    account_events: MemoryAccountEvents
    records: MemoryRecords
    statuses: PublishedStatuses

    def published(self) -> list[InboundEvent]:
        return self.queue.messages

    def webhook(self, customer: str, mid: str, at: float) -> None:
        """Meta's webhook for the message did come, through the webhook's own ingestion."""
        body = m.envelope(m.text(mid=mid, customer=customer, ts=int(at * 1000)))
        ingest(Envelope.model_validate(body), int(self.clock() * 1000), self.store, self.queue)


def world(
    *, connected_hours_ago: float = 48, calls_per_run: int = 2000, accounts: int = 1, history_imported: bool = True
) -> World:
    clock = ManualClock(NOW)
    table = MemoryAccountTable()
    connected = datetime.fromtimestamp(NOW - connected_hours_ago * HOUR, UTC).isoformat()
    for n in range(accounts):
        account_id = ACCOUNT if n == 0 else f"178414000000009{n:02d}"
        table.accounts[account_id] = Account(
            account_id,
            ACTIVE,
            f"accounts/{account_id}",
            connected_at=connected,
            history_imported_at=connected if history_imported else None,
        )
    meta, limiter, store, queue, tokens = (
        MemoryConversations(ACCOUNT),
        MemoryLimiter(clock),
        MemoryStore(),
        MemoryQueue(),
        Tokens(),
    )
    subscriptions, account_events = Subscriptions(), MemoryAccountEvents()
    records, statuses = MemoryRecords(clock), PublishedStatuses()
    reconciler = Reconciler(
        accounts=table,
        tokens=tokens,
        graph=meta,
        limiter=limiter,
        store=store,
        publisher=queue,
        receipts=None,
        subscriptions=subscriptions,
        events=account_events,
        webhook_fields=FIELDS,
        history_seconds=30 * DAY,
        calls_per_run=calls_per_run,
        unknown=records,
        statuses=statuses,
        clock=clock,
        sleep=clock.sleep,
    )
    return World(
        clock, table, tokens, meta, limiter, store, queue, reconciler, subscriptions, account_events, records, statuses
    )


def customers_wrote(w: World, conversations: int, messages_each: int, *, hours_ago: float = 1) -> list[str]:
    mids = []
    for c in range(conversations):
        for k in range(messages_each):
            mid = f"m_{c}_{k}"
            w.meta.add(f"90000000000000{c:02d}", mid, NOW - hours_ago * HOUR + c * 60 + k)
            mids.append(mid)
    return mids


def test_messages_whose_webhook_never_came_are_published_once_as_the_webhook_would_have() -> None:
    w = world()
    mids = customers_wrote(w, conversations=10, messages_each=5)
    report = w.reconciler.run()
    assert sorted(e.message_id for e in w.published() if e.message_id) == sorted(mids)
    assert {e.source for e in w.published()} == {"backfill"}
    assert {e.kind for e in w.published()} == {EventKind.TEXT}
    assert report.summary()["backfilled"] == 50 and report.summary()["conversations"] == 10
    first = next(e for e in w.published() if e.message_id == "m_0_0")
    assert first.occurred_at == datetime.fromtimestamp(NOW - HOUR, UTC)  # Meta's time, not the run's
    assert first.customer_id == "9000000000000000" and first.user_initiated and first.text == "hi"
    assert first.raw["id"] == "m_0_0"  # what Meta's Conversations API answered
    # The same message by webhook gives the same event id: whichever comes second is a duplicate.
    webhook = MemoryQueue()
    body = m.envelope(m.text(mid="m_0_0", customer="9000000000000000", ts=int((NOW - HOUR) * 1000)))
    ingest(Envelope.model_validate(body), int(NOW * 1000), MemoryStore(), webhook)
    assert webhook.messages[0].event_id == first.event_id


def test_a_second_run_publishes_nothing_and_redelivered_webhooks_publish_nothing() -> None:
    w = world()
    customers_wrote(w, conversations=3, messages_each=2)
    w.reconciler.run()
    published = len(w.published())
    w.clock.advance(900)
    w.reconciler.run()
    assert len(w.published()) == published
    w.webhook("9000000000000001", "m_1_0", NOW - HOUR + 60)  # Meta delivers it late after all
    assert len(w.published()) == published


def test_a_message_webhooked_first_is_not_published_again() -> None:
    w = world()
    customers_wrote(w, conversations=1, messages_each=3)
    w.webhook("9000000000000000", "m_0_1", NOW - HOUR + 1)
    w.reconciler.run()
    assert [e.message_id for e in w.published()] == ["m_0_1", "m_0_0", "m_0_2"]
    assert [e.source for e in w.published()] == ["messaging", "backfill", "backfill"]


def test_only_missing_messages_have_their_details_fetched() -> None:
    w = world()
    customers_wrote(w, conversations=1, messages_each=4)
    for k in range(4):
        w.webhook("9000000000000000", f"m_0_{k}", NOW - HOUR + k)
    w.reconciler.run()
    # The list, its conversation's messages, and the newest one's details (to learn the customer): no more.
    assert w.meta.calls == ["conversations", "messages t_9000000000000000", "message m_0_3"]
    assert len(w.published()) == 4  # the webhook's


def test_a_later_run_reads_only_conversations_updated_since_its_watermark() -> None:
    w = world()
    customers_wrote(w, conversations=5, messages_each=1, hours_ago=2)
    w.reconciler.run()
    # Two minutes before the run started: Meta's clock and ours may differ.
    assert w.accounts.accounts[ACCOUNT].reconciled_until == datetime.fromtimestamp(NOW - 120, UTC).isoformat()
    w.meta.calls.clear()
    w.clock.advance(900)
    w.meta.add("9000000000000003", "m_new", w.clock() - 60)
    w.reconciler.run()
    assert w.meta.calls == ["conversations", "messages t_9000000000000003", "message m_new"]
    assert w.published()[-1].message_id == "m_new"


def test_an_older_message_without_details_becomes_a_gap_event_once() -> None:
    w = world()
    for k in range(25):  # 25 messages in one conversation: details for the 20 newest only
        w.meta.add("9000000000000000", f"m_{k:02d}", NOW - HOUR + k)
    w.reconciler.run()
    gaps = [e for e in w.published() if e.kind == EventKind.GAP]
    assert [g.message_id for g in gaps] == [f"m_{k:02d}" for k in range(5)]
    assert {g.source for g in gaps} == {"backfill"} and gaps[0].customer_id == "9000000000000000"
    assert "20 most recent" in (gaps[0].error or "")
    assert len(w.published()) == 25
    w.clock.advance(900)
    w.meta.add("9000000000000000", "m_25", w.clock() - 10)
    w.reconciler.run()
    assert [e.message_id for e in w.published()[25:]] == ["m_25"]  # the gaps are not reported twice


def test_a_message_the_business_sent_from_the_instagram_app_comes_in_as_an_echo() -> None:
    w = world()
    w.meta.add("9000000000000000", "m_in", NOW - HOUR)
    w.meta.add("9000000000000000", "m_out", NOW - HOUR + 5, text="sent from the app", from_account=True)
    w.reconciler.run()
    echo = next(e for e in w.published() if e.message_id == "m_out")
    assert (echo.kind, echo.direction, echo.customer_id, echo.text) == (
        EventKind.ECHO,
        "outbound",
        "9000000000000000",
        "sent from the app",
    )


def test_the_first_runs_import_the_history_of_the_last_thirty_days_and_say_so_once() -> None:
    w = world(connected_hours_ago=10, history_imported=False)
    w.meta.add("9000000000000000", "m_ancient", NOW - 31 * DAY)  # beyond HistoryImportDays
    w.meta.add("9000000000000001", "m_before", NOW - 11 * HOUR)  # before the account was connected
    w.meta.add("9000000000000002", "m_after", NOW - 9 * HOUR)
    heard(w, hours_ago=0.5)  # webhooks do come: m_after's was one Meta missed
    w.reconciler.run()
    assert [e.message_id for e in w.published()] == ["m_before", "m_after"]
    [change] = w.account_events.published
    assert (change.change, change.reason) == ("history_imported", "first_reconciliation")
    assert "last 30 days" in (change.detail or "") and "2 messages" in (change.detail or "")
    assert w.accounts.accounts[ACCOUNT].history_imported_at == datetime.fromtimestamp(NOW, UTC).isoformat()
    w.clock.advance(900)
    w.reconciler.run()
    assert len(w.account_events.published) == 1  # once


def test_a_history_import_cut_short_announces_itself_only_when_it_is_whole() -> None:
    w = world(calls_per_run=4, history_imported=False)
    customers_wrote(w, conversations=4, messages_each=1, hours_ago=24 * 20)
    w.reconciler.run()
    assert w.account_events.published == [] and w.accounts.accounts[ACCOUNT].history_imported_at is None
    for _ in range(10):  # bounded
        w.clock.advance(900)
        if not w.reconciler.run().unfinished:
            break
    assert [c.change for c in w.account_events.published] == ["history_imported"]
    assert len(w.published()) == 4


def test_a_run_cut_short_by_its_budget_resumes_where_it_stopped_and_loses_nothing() -> None:
    w = world(calls_per_run=7)
    mids = customers_wrote(w, conversations=6, messages_each=2)
    first = w.reconciler.run()
    assert first.unfinished == [ACCOUNT] and 0 < len(w.published()) < 12
    for _ in range(10):  # bounded: each run makes progress
        w.clock.advance(900)
        if not w.reconciler.run().unfinished:
            break
    assert sorted(e.message_id for e in w.published() if e.message_id) == sorted(mids)  # each once
    assert len(w.published()) == len(mids)


def test_runs_cut_short_by_their_budget_go_round_every_account_the_longest_unread_first() -> None:
    w = world(accounts=3, calls_per_run=1)  # a budget that reads one account a run
    read_by_run = []
    for _ in range(3):
        before = {k: a.reconciled_until for k, a in w.accounts.accounts.items()}
        report = w.reconciler.run()
        read_by_run.append([k for k, a in w.accounts.accounts.items() if a.reconciled_until != before[k]])
        assert len(report.unfinished) == 2
        w.clock.advance(900)
    assert read_by_run == [[ACCOUNT], ["17841400000000901"], ["17841400000000902"]]  # each once, never starved
    w.reconciler.calls_per_run = 3  # and one that reads them all
    assert w.reconciler.run().unfinished == []


def test_an_account_importing_its_history_is_read_after_those_that_are_caught_up() -> None:
    w = world(accounts=3, calls_per_run=1)
    importing = w.accounts.accounts[ACCOUNT]
    w.accounts.accounts[ACCOUNT] = replace(importing, history_imported_at=None)  # newly connected
    w.reconciler.run()
    w.clock.advance(900)
    w.reconciler.run()
    assert [k for k, a in w.accounts.accounts.items() if a.reconciled_until] == [
        "17841400000000901",
        "17841400000000902",
    ]


def test_every_call_waits_for_the_accounts_conversations_rate_slot() -> None:
    w = world()
    customers_wrote(w, conversations=2, messages_each=1)
    report = w.reconciler.run()
    assert w.limiter.reserved == [(ACCOUNT, "conversations")] * report.calls
    assert report.calls == len(w.meta.calls) == 5


def test_a_dead_token_marks_the_account_and_the_others_are_still_read() -> None:
    w = world(accounts=2)
    w.meta.refuse_with = LoginError("Error validating access token", 400, 190)
    report = w.reconciler.run()
    assert set(w.tokens.marked) == {ACCOUNT, "17841400000000901"}
    assert "reading its conversations" in w.tokens.marked[ACCOUNT]
    assert len(report.errors) == 2 and report.accounts == 2


def test_an_account_that_needs_reauthorisation_is_not_read() -> None:
    w = world()
    w.accounts.accounts[ACCOUNT] = Account(ACCOUNT, NEEDS_REAUTHORISATION, f"accounts/{ACCOUNT}")
    customers_wrote(w, conversations=1, messages_each=1)
    assert w.reconciler.run().accounts == 0 and w.meta.calls == []


def test_throttling_pauses_the_account_for_every_caller() -> None:
    w = world()
    customers_wrote(w, conversations=1, messages_each=1)
    w.meta.refuse_with = LoginError("(#80002) too many calls", 400, 80002, transient=True)
    w.reconciler.run()
    assert w.limiter.paused_until[ACCOUNT] == pytest.approx(NOW + 60)
    assert w.accounts.accounts[ACCOUNT].reconciled_until is None  # nothing read, nothing skipped


def heard(w: World, hours_ago: float) -> None:
    """The webhook's heartbeat: the last webhook of the account came then."""
    at = datetime.fromtimestamp(NOW - hours_ago * HOUR, UTC).isoformat()
    w.accounts.accounts[ACCOUNT] = replace(w.accounts.accounts[ACCOUNT], last_webhook_at=at)


def test_webhooks_that_stopped_are_reported_and_a_dropped_subscription_restored_within_the_run() -> None:
    w = world()
    heard(w, hours_ago=3)
    w.subscriptions.fields = {"messaging_seen"}  # Meta dropped the others after failed deliveries
    customers_wrote(w, conversations=2, messages_each=2, hours_ago=1)
    report = w.reconciler.run()
    assert report.silent == [ACCOUNT] and report.summary()["webhooks_silent"] == 1
    changes = [(c.change, c.reason, c.missing_fields) for c in w.account_events.published]
    assert changes == [
        ("webhooks_silent", "messages_without_webhooks", []),
        ("subscription_restored", "fields_missing", ["messages", "message_reactions"]),
    ]
    assert "4 customer messages" in (w.account_events.published[0].detail or "")
    assert w.subscriptions.fields == set(FIELDS)


def test_silence_with_the_subscription_whole_is_still_reported_and_nothing_is_resubscribed() -> None:
    w = world()
    heard(w, hours_ago=3)
    customers_wrote(w, conversations=1, messages_each=1, hours_ago=1)
    w.reconciler.run()
    assert [c.change for c in w.account_events.published] == ["webhooks_silent"]
    assert w.subscriptions.subscribe_calls == 0


def test_one_missed_webhook_among_others_that_came_is_not_silence() -> None:
    w = world()
    customers_wrote(w, conversations=1, messages_each=1, hours_ago=1)
    heard(w, hours_ago=0.5)  # a webhook came after the missed message: Meta still sends them
    report = w.reconciler.run()
    assert report.silent == [] and w.account_events.published == []
    assert report.summary()["backfilled"] == 1


def test_a_message_too_recent_for_its_webhook_to_be_late_is_not_silence() -> None:
    w = world()
    heard(w, hours_ago=3)
    w.meta.add("9000000000000000", "m_just_now", NOW - 60)  # its webhook may be on its way
    assert w.reconciler.run().silent == [] and w.account_events.published == []


def test_a_conversation_whose_newest_message_was_deleted_is_still_read() -> None:
    w = world()
    w.meta.add("9000000000000000", "m_kept", NOW - HOUR)
    w.meta.add("9000000000000000", "m_deleted", NOW - HOUR + 5)
    w.meta.deleted.add("m_deleted")  # Meta answers it as gone
    report = w.reconciler.run()
    assert report.errors == []
    published = {e.message_id: e.kind for e in w.published()}
    assert published == {"m_kept": EventKind.TEXT, "m_deleted": EventKind.GAP}
    assert {e.customer_id for e in w.published()} == {"9000000000000000"}


# ---------------------------------------------------------------------------------------------- UNKNOWN sends

CUSTOMER = "9000000000000007"


def unknown_send(
    w: World,
    key: str,
    text: str | None = "Your order ships tomorrow",
    *,
    minutes_ago: float = 10,
    parts_total: int = 1,
    attachment: str | None = None,
    customer: str = CUSTOMER,
) -> Unsettled:
    """A send whose request went out ``minutes_ago`` and whose answer never came (the sender's side): UNKNOWN,
    waiting for its echo, with the uncertain part the last one."""
    record, _ = w.records.claim(
        idempotency_key=key,
        payload_hash="h",
        kind="text",
        account_id=ACCOUNT,
        customer_id=customer,
        parts_total=parts_total,
        correlation_id=None,
        callback_url=None,
        callback_data=None,
    )
    for part in range(parts_total - 1):  # the parts before it went out and were answered
        w.records.begin_part(key, part)
        w.records.part_sent(key, part, f"m_{key}_{part}", last=False)
    w.records.begin_part(key, parts_total - 1)
    w.records.settle(key, UNKNOWN, reason="ambiguous_outcome", detail="no answer")
    ended = NOW - minutes_ago * 60
    waiting = Unsettled(
        key, fingerprint(text, attachment), marker(key, parts_total - 1), int((ended - 10) * 1000), int(ended * 1000)
    )
    w.records.add_unsettled(record, waiting)
    return waiting


def customer_wrote_first(w: World, customer: str = CUSTOMER) -> None:
    """The customer's message that opened the window; its webhook came."""
    w.meta.add(customer, f"m_hello_{customer}", NOW - HOUR)
    w.webhook(customer, f"m_hello_{customer}", NOW - HOUR)


def test_an_unknown_send_found_in_its_conversation_ends_delivered_with_metas_mid() -> None:
    w = world()
    customer_wrote_first(w)
    attempt = unknown_send(w, "order-1")
    # Meta took it during the attempt; its echo webhook never came.
    w.meta.add(CUSTOMER, "m_reply", attempt.started_ms / 1000 + 3, text="Your order ships tomorrow", from_account=True)
    report = w.reconciler.run()
    assert w.records.records["order-1"].status == DELIVERED
    assert w.statuses.names("order-1") == [DELIVERED]  # published once, never resent (no Send API here)
    assert w.records.mids["m_reply"]["idempotency_key"] == "order-1"
    assert w.records.account_unsettled(ACCOUNT) == []  # no longer waiting
    assert (report.summary()["unknown_settled"], report.summary()["unknown_left"]) == (1, 0)
    w.clock.advance(900)
    w.reconciler.run()
    assert w.statuses.names("order-1") == [DELIVERED]  # the next run has nothing left to do


def test_an_unknown_send_its_conversation_does_not_show_ends_failed_not_delivered() -> None:
    w = world()
    customer_wrote_first(w)
    attempt = unknown_send(w, "order-2")
    w.meta.add(CUSTOMER, "m_other", attempt.started_ms / 1000 + 3, text="a different answer", from_account=True)
    w.meta.add(CUSTOMER, "m_customer", attempt.started_ms / 1000 + 4, text="Your order ships tomorrow")  # theirs
    report = w.reconciler.run()
    failed = w.records.records["order-2"]
    assert (failed.status, failed.reason) == (FAILED, "not_delivered")
    assert failed.detail is not None and "never reached Instagram" in failed.detail
    assert w.statuses.names("order-2") == [FAILED]
    assert report.summary()["unknown_settled"] == 1 and w.records.account_unsettled(ACCOUNT) == []


def test_an_unknown_send_to_a_customer_instagram_has_no_conversation_with_never_reached_it() -> None:
    w = world()
    customer_wrote_first(w, "9000000000000001")  # another conversation
    unknown_send(w, "order-3")
    w.reconciler.run()
    assert (w.records.records["order-3"].status, w.records.records["order-3"].reason) == (FAILED, "not_delivered")
    assert f"conversation_with {CUSTOMER}" in w.meta.calls


def test_an_unknown_send_whose_echo_may_still_come_is_left_to_the_webhook() -> None:
    w = world()
    customer_wrote_first(w)
    unknown_send(w, "order-4", minutes_ago=2)  # under UNKNOWN_SETTLE_AFTER_SECONDS
    report = w.reconciler.run()
    assert w.records.records["order-4"].status == UNKNOWN and w.statuses.published == []
    assert not any(c.startswith("conversation_with") for c in w.meta.calls)
    assert report.summary()["unknown_left"] == 0
    w.clock.advance(300)
    w.reconciler.run()
    assert w.records.records["order-4"].status == FAILED  # its time came


def test_two_messages_that_could_be_it_leave_it_unknown_with_the_reason_and_it_is_tried_again() -> None:
    w = world()
    customer_wrote_first(w)
    attempt = unknown_send(w, "order-5")
    for k in range(2):  # the same words twice during the attempt: the app and the gateway, say
        w.meta.add(
            CUSTOMER, f"m_same_{k}", attempt.started_ms / 1000 + k, text="Your order ships tomorrow", from_account=True
        )
    report = w.reconciler.run()
    left = w.records.records["order-5"]
    assert (left.status, left.reason) == (UNKNOWN, "lookup_ambiguous")
    assert left.detail is not None and "2 messages sent during its attempt have its content" in left.detail
    assert w.statuses.published == [] and report.summary()["unknown_left"] == 1
    w.meta.calls.clear()
    w.clock.advance(900)
    w.reconciler.run()
    assert f"conversation_with {CUSTOMER}" in w.meta.calls  # still waiting: looked up again


def test_an_unknown_send_beyond_the_twenty_most_recent_messages_stays_unknown() -> None:
    w = world()
    customer_wrote_first(w)
    attempt = unknown_send(w, "order-6", minutes_ago=30)
    w.meta.add(CUSTOMER, "m_reply", attempt.started_ms / 1000 + 3, text="Your order ships tomorrow", from_account=True)
    for k in range(20):  # the conversation went on: Meta no longer gives the reply's content
        w.meta.add(CUSTOMER, f"m_later_{k:02d}", NOW - 20 * 60 + k)
    w.reconciler.run()
    left = w.records.records["order-6"]
    assert (left.status, left.reason) == (UNKNOWN, "beyond_recent_messages")
    assert w.statuses.published == []


def test_a_message_that_is_another_sends_is_not_taken_for_the_unknown_one() -> None:
    w = world()
    customer_wrote_first(w)
    attempt = unknown_send(w, "order-7")
    # The previous message, with the same words, went out just before and was answered: its mid is known.
    previous = "m_previous"
    w.meta.add(CUSTOMER, previous, attempt.started_ms / 1000 - 1, text="Your order ships tomorrow", from_account=True)
    w.records.mids[previous] = {"idempotency_key": "order-6", "conversation_id": f"{ACCOUNT}:{CUSTOMER}"}
    w.reconciler.run()
    assert (w.records.records["order-7"].status, w.records.records["order-7"].reason) == (FAILED, "not_delivered")
    assert w.records.mids[previous]["idempotency_key"] == "order-6"


@pytest.mark.parametrize("reached", [True, False], ids=["found", "not-found"])
def test_the_uncertain_last_part_of_a_message_settles_the_message(reached: bool) -> None:
    w = world()
    customer_wrote_first(w)
    attempt = unknown_send(w, "order-8", parts_total=2)  # part 1 was SENT, part 2's answer never came
    if reached:
        w.meta.add(
            CUSTOMER, "m_part2", attempt.started_ms / 1000 + 3, text="Your order ships tomorrow", from_account=True
        )
    w.reconciler.run()
    record = w.records.records["order-8"]
    if reached:
        assert record.status == DELIVERED
    else:
        assert (record.status, record.reason) == (FAILED, "not_delivered")
        assert "part 2 of 2 never reached Instagram (parts 1 to 1 did)" in (record.detail or "")


def test_a_settled_message_whose_markers_remain_has_its_status_published_again_and_is_not_looked_up() -> None:
    w = world()
    customer_wrote_first(w)
    unknown_send(w, "order-9")
    w.records.settle("order-9", FAILED, reason="not_delivered")  # a run settled it, then died: not published
    w.reconciler.run()
    assert w.records.account_unsettled(ACCOUNT) == []
    assert w.statuses.names("order-9") == [FAILED]  # the same event again: the queue drops it if it went out
    assert not any(c.startswith("conversation_with") for c in w.meta.calls)


def test_a_template_is_not_declared_lost_when_the_account_sent_something_during_its_attempt() -> None:
    w = world()
    customer_wrote_first(w)
    attempt = unknown_send(w, "order-10", text=None, attachment="template")
    w.meta.add(CUSTOMER, "m_card", attempt.started_ms / 1000 + 2, text=None, from_account=True)
    w.reconciler.run()
    assert (w.records.records["order-10"].status, w.records.records["order-10"].reason) == (UNKNOWN, "lookup_ambiguous")
    lone = unknown_send(w, "order-11", text=None, attachment="template", minutes_ago=60, customer="9000000000000002")
    customer_wrote_first(w, "9000000000000002")
    assert lone.ended_ms < attempt.started_ms
    w.clock.advance(900)
    w.reconciler.run()
    assert w.records.records["order-11"].status == FAILED  # nothing at all was sent then: it never reached Meta


def test_an_unknown_send_is_never_looked_up_past_the_runs_budget() -> None:
    w = world(calls_per_run=3)
    customer_wrote_first(w)
    unknown_send(w, "order-12")
    report = w.reconciler.run()
    assert w.records.records["order-12"].status == UNKNOWN and report.unfinished == [ACCOUNT]
    assert report.calls <= 4

"""last_webhook_at: written once a minute per account by a warm container, never failing a webhook."""

from webhook.heartbeat import WebhookHeartbeat


class Accounts:
    def __init__(self, failing: set[str] | None = None) -> None:
        self.writes: list[tuple[str, str]] = []
        self.failing = failing or set()

    def record_webhook(self, account_id: str, at: str) -> None:
        if account_id in self.failing:
            raise RuntimeError("ConditionalCheckFailedException")
        self.writes.append((account_id, at))


def test_each_account_is_written_once_a_minute_however_many_webhooks_arrive() -> None:
    now = [1_767_225_600.0]
    accounts = Accounts()
    heartbeat = WebhookHeartbeat(accounts, clock=lambda: now[0])
    heartbeat.seen(["b", "a", "a"])
    for _ in range(50):
        now[0] += 1.0
        heartbeat.seen(["a", "b"])
    assert accounts.writes == [("a", "2026-01-01T00:00:00Z"), ("b", "2026-01-01T00:00:00Z")]
    now[0] += 10.0  # a minute after the first write
    heartbeat.seen(["a"])
    assert accounts.writes[-1] == ("a", "2026-01-01T00:01:00Z") and len(accounts.writes) == 3


def test_a_failed_write_is_swallowed_and_not_retried_within_the_minute() -> None:
    now = [1_767_225_600.0]
    accounts = Accounts(failing={"unknown"})
    heartbeat = WebhookHeartbeat(accounts, clock=lambda: now[0])
    heartbeat.seen(["unknown", "known"])  # must not raise: the events are already durable
    accounts.failing.clear()
    now[0] += 30.0
    heartbeat.seen(["unknown"])
    assert accounts.writes == [("known", "2026-01-01T00:00:00Z")]
    now[0] += 30.0
    heartbeat.seen(["unknown"])
    assert accounts.writes[-1] == ("unknown", "2026-01-01T00:01:00Z")

"""The fuzzers of `make chaos`, short: webhook bodies and outbound messages from Hypothesis."""

from chaos import fuzz_outbound, fuzz_webhook
from tests.chaos import SEED


def test_webhook_bodies_never_crash_parsing_and_unsigned_ones_store_nothing() -> None:
    plan = fuzz_webhook.WebhookFuzzPlan(parsing=250, unsigned_parsing=50, handler=30, unsigned_handler=30)
    result = fuzz_webhook.run(plan, SEED)
    assert result.violations == [], result.line()
    assert result.figures["bodies"] == 360  # every example ran: none was cut short by a failure


def test_outbound_messages_never_crash_the_sender_and_invalid_ones_fail_with_their_field() -> None:
    result = fuzz_outbound.run(fuzz_outbound.OutboundFuzzPlan(contract=200, sender=40), SEED)
    assert result.violations == [], result.line()
    assert result.figures["messages"] == 240

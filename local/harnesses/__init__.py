"""The gateway's functions in one process, ready to drive: what the integration tests and chaos share.

Each harness is a context manager over a ``pytest.MonkeyPatch`` (the environment it sets is restored on exit)
that starts moto with the template's resources, the real handlers and whatever plays Meta, and stops all of it
on exit: ``webhook.webhook_harness``, ``outbound.outbound_loop``, ``accounts.accounts_harness``. The pytest
fixtures in tests/integration are these, one line each; ``python -m chaos`` runs them outside pytest.
"""

"""Failures a handler answers with a retry (the webhook's 503), apart from the modules that raise them: the
webhook catches them on every request but imports those modules only for the events that use them."""


class RecordsUnavailable(Exception):
    """DynamoDB did not answer: the message is retried later."""


class StatusNotPublished(Exception):
    """The events queue or the callback queue refused the status: the caller retries."""

"""The error of a misconfigured function, apart from igdm.runtime.config's pydantic models: the webhook reads
its settings without them (webhook.settings) and raises it all the same."""


class ConfigurationError(RuntimeError):
    """The function's environment is incomplete or invalid; the message names each variable."""

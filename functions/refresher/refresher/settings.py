"""The refresher's configuration (environment variables set by template.yaml)."""

from pydantic import Field

from igdm.meta.versions import DEFAULT_GRAPH_API_VERSION
from igdm.runtime.config import CommaList, LocalStackSettings, TokenUrl


class RefresherSettings(LocalStackSettings):
    table_name: str = Field(min_length=1)
    events_queue_url: str = Field(min_length=1, description="account_status events go here.")
    account_secret_prefix: str = Field(min_length=1, description="Token secrets are named <prefix><account id>.")
    graph_api_base_url: TokenUrl = Field("https://graph.instagram.com", min_length=1)
    graph_api_version: str = Field(DEFAULT_GRAPH_API_VERSION, pattern=r"^v\d+\.\d+$")
    refresh_window_days: float = Field(
        30,
        gt=1,
        le=59,
        description="Refresh a token once it expires within this many days (and is at least a day old).",
    )
    token_expiry_warning_days: float = Field(
        7, gt=0, description="A token this close to expiry makes the account 'expiring' (and its alarm fires)."
    )
    webhook_fields: CommaList = Field(
        min_length=1,
        description="Webhook fields every account must be subscribed to (comma-separated in the environment).",
    )

"""The onboarding pages' configuration (environment variables set by template.yaml)."""

from pydantic import Field

from igdm.meta.versions import DEFAULT_GRAPH_API_VERSION
from igdm.meta.webhook_fields import DEFAULT_FIELDS, scopes_for
from igdm.runtime.config import CommaList, LocalStackSettings, TokenUrl
from onboarding.pages import Business

# An https address with a plain host (what the pages may put in their Content-Security-Policy), or nothing:
# the same expression as the AllowedPattern of BusinessLogoUrl and BusinessPrivacyPolicyUrl in template.yaml.
BUSINESS_URL_PATTERN = r"^(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#]\S*)?)?$"


class OnboardingSettings(LocalStackSettings):
    table_name: str = Field(min_length=1)
    events_queue_url: str = Field(min_length=1, description="account_status 'connected' events go here.")
    account_secret_prefix: str = Field(min_length=1)
    app_secret_name: str = Field(min_length=1, description="Holds instagram_app_id and instagram_app_secret.")
    onboarding_secret_name: str = Field(
        min_length=1, description="Holds the generated state_key that signs invites and OAuth states."
    )
    secret_max_age_seconds: int = Field(300, ge=0)
    graph_api_base_url: TokenUrl = Field("https://graph.instagram.com", min_length=1)
    graph_api_version: str = Field(DEFAULT_GRAPH_API_VERSION, pattern=r"^v\d+\.\d+$")
    instagram_authorize_url: TokenUrl = Field("https://www.instagram.com/oauth/authorize", min_length=1)
    instagram_token_url: TokenUrl = Field(
        "https://api.instagram.com/oauth/access_token",
        min_length=1,
        description="Where the login's code and the app secret go.",
    )
    instagram_scopes: str = Field(",".join(scopes_for(DEFAULT_FIELDS)), min_length=1)
    oauth_redirect_uri: str = Field(
        "",
        description="The redirect URI registered with Meta; empty: this API's "
        "own /oauth/callback, from the request's host.",
    )
    webhook_fields: CommaList = Field(min_length=1)
    erasure_queue_url: str = Field(
        min_length=1, description="Meta's data-deletion requests go here, for the eraser (igdm.queues.erasure_queue)."
    )
    business_name: str = Field("", max_length=100, description="Who asks, on every page; empty: neutral words.")
    business_logo_url: str = Field("", pattern=BUSINESS_URL_PATTERN, description="Shown next to the name.")
    business_privacy_policy_url: str = Field("", pattern=BUSINESS_URL_PATTERN, description="Linked on the first page.")

    @property
    def business(self) -> Business:
        return Business(self.business_name.strip(), self.business_logo_url, self.business_privacy_policy_url)

    @property
    def scopes(self) -> list[str]:
        return [s.strip() for s in self.instagram_scopes.replace(" ", ",").split(",") if s.strip()]

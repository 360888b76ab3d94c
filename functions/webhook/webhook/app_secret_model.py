"""The app secret's JSON as a pydantic model: the definition of what counts as configured. The webhook reads
the usual shape without it (webhook.app_secrets) and asks it about any other."""

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints


def blank_as_none(value: Any) -> Any:
    """An empty verify token is no verify token (the handshake then says so), not a broken secret."""
    return None if isinstance(value, str) and not value.strip() else value


# Meta's app secrets are 32 hex digits. A short value is a placeholder left in by mistake, and an empty
# one would let anyone sign with the empty key, so neither is ever used to verify.
MIN_APP_SECRET_LENGTH = 16
AppSecretValue = Annotated[str, StringConstraints(strip_whitespace=True, min_length=MIN_APP_SECRET_LENGTH)]


class AppSecret(BaseModel):
    model_config = ConfigDict(extra="allow")  # later issues add app ids and a callback signing secret

    app_secrets: list[AppSecretValue] = Field(default_factory=list)
    verify_token: Annotated[str | None, BeforeValidator(blank_as_none)] = None
    # Meta's echoes name the app that sent a message (app_id): which id, the Instagram app's or the Meta
    # app's, is not documented for Instagram Login, so either counts as the gateway's own.
    instagram_app_id: Annotated[str | None, BeforeValidator(blank_as_none)] = None
    meta_app_id: Annotated[str | None, BeforeValidator(blank_as_none)] = None

    @property
    def app_ids(self) -> frozenset[str]:
        """The ids Meta may put on echoes of the gateway's own messages."""
        return frozenset(str(i).strip() for i in (self.instagram_app_id, self.meta_app_id) if i)

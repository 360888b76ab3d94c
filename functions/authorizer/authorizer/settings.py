"""The authorizer's configuration (environment variables set by template.yaml)."""

from pydantic import BaseModel, Field


class AuthorizerSettings(BaseModel):
    table_name: str = Field(min_length=1, description="Holds the API keys (APIKEYS / KEY#<id>).")

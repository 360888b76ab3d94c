"""The API Gateway HTTP API (payload 2.0) request and response, as plain typed models.

Shared by the webhook and the onboarding pages. Written here rather than taken from Powertools' event
handler: importing that package loads every resolver it has (AppSync, Bedrock, ...) and measured about
300 ms of extra cold start, a third of the webhook handler's import time, for two routes.
"""

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from igdm.runtime.http_body import decoded_body
from igdm.runtime.http_reply import APPLICATION_JSON as APPLICATION_JSON
from igdm.runtime.http_reply import TEXT_PLAIN as TEXT_PLAIN
from igdm.runtime.http_reply import Reply as Reply


def _none_as_empty(value: Any) -> Any:
    return {} if value is None else value


class RequestContext(BaseModel):
    model_config = ConfigDict(extra="ignore")

    request_id: str = Field("", alias="requestId")
    time_epoch: int = Field(alias="timeEpoch")
    # A Lambda authorizer's answer (payload 2.0, simple responses): {"lambda": <its context>}.
    authorizer: Annotated[dict[str, Any], BeforeValidator(_none_as_empty)] = Field(default_factory=dict)


def _none_as_list(value: Any) -> Any:
    return [] if value is None else value


def _none_as_false(value: Any) -> Any:
    return False if value is None else value


class HttpApiRequest(BaseModel):
    """API Gateway omits what is absent; console and test invokes send null instead: both mean empty."""

    model_config = ConfigDict(extra="ignore")

    route_key: str = Field(alias="routeKey")
    query: Annotated[dict[str, str], BeforeValidator(_none_as_empty)] = Field(
        default_factory=dict, alias="queryStringParameters"
    )
    headers: Annotated[dict[str, str], BeforeValidator(_none_as_empty)] = Field(default_factory=dict)
    cookies: Annotated[list[str], BeforeValidator(_none_as_list)] = Field(default_factory=list)
    path_parameters: Annotated[dict[str, str], BeforeValidator(_none_as_empty)] = Field(
        default_factory=dict, alias="pathParameters"
    )
    body: str | None = None
    is_base64_encoded: Annotated[bool, BeforeValidator(_none_as_false)] = Field(False, alias="isBase64Encoded")
    request_context: RequestContext = Field(alias="requestContext")

    def header(self, name: str) -> str | None:
        """HTTP API lowercases header names; compare without case all the same."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def cookie(self, name: str) -> str | None:
        """A cookie's value (payload 2.0 moves the Cookie header into `cookies`, one "name=value" each)."""
        for pair in self.cookies:
            key, _, value = pair.partition("=")
            if key.strip() == name:
                return value.strip()
        return None

    def base_url(self) -> str:
        """This API's own address as the caller reached it (API Gateway says https in X-Forwarded-Proto)."""
        host = self.header("host") or "localhost"
        scheme = (self.header("x-forwarded-proto") or "https").split(",")[0].strip()
        return f"{scheme}://{host}"

    def raw_body(self) -> bytes | None:
        """The exact bytes sent; None if the body claims base64 but is not."""
        return decoded_body(self.body, self.is_base64_encoded)

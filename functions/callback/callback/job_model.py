"""The callback job as a pydantic model: the reference for callback.jobs' plain reader, and what reads a job that
reader does not take, so that a refused job's detail keeps pydantic's wording. Imported only then."""

from pydantic import BaseModel, ConfigDict, Field


class HookDeliveryModel(BaseModel):
    """An event webhook's delivery (functions/fanout): each attempt is recorded in its log."""

    model_config = ConfigDict(extra="ignore")

    webhook_id: str = Field(min_length=1, max_length=64)
    delivery_id: str = Field(min_length=1, max_length=200)


class CallbackJobModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str = Field(min_length=1)
    event_id: str = Field(min_length=1, max_length=128)
    body: str
    hook: HookDeliveryModel | None = None

"""The JSON shapes of the audience API (API.md). Ids leave the service as decimal strings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..domain.model import SubscriberStatus


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListCreate(_Request):
    name: str
    description: str | None = None


class ListUpdate(_Request):
    name: str | None = None
    description: str | None = None


class _Response(BaseModel):
    # Built from the domain objects; their bigint ids become the API's opaque string ids.
    model_config = ConfigDict(from_attributes=True, coerce_numbers_to_str=True)


class ListOut(_Response):
    id: str
    name: str
    description: str
    subscriber_count: int = Field(description="subscribers whose status is `subscribed`")
    created_at: datetime
    updated_at: datetime


class SubscriberCreate(_Request):
    email: str
    first_name: str | None = None
    last_name: str | None = None
    attributes: dict[str, Any] | None = None


class SubscriberUpdate(_Request):
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    attributes: dict[str, Any] | None = Field(default=None, description="replaces the attributes as a whole")
    status: str | None = Field(default=None, description="`subscribed` or `unsubscribed`")


class SubscriberOut(_Response):
    id: str
    list_id: str
    email: str
    first_name: str | None
    last_name: str | None
    attributes: dict[str, Any]
    status: SubscriberStatus
    created_at: datetime
    updated_at: datetime


class RecipientOut(BaseModel):
    subscriber_id: str
    email: str
    first_name: str | None
    last_name: str | None
    attributes: dict[str, Any]


class RecipientsOut(BaseModel):
    items: list[RecipientOut]
    up_to: str = Field(description="the snapshot bound: pass it back unchanged on every following call")
    next_after: str | None = Field(description="`after` for the next call; null on the last page")

"""The JSON shapes of the audience API (API.md). Ids leave the service as decimal strings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from mailstify_servicekit.text import NOT_BLANK, EmailAddress, RequestModel

from ..domain.model import (
    MAX_ATTRIBUTES_BYTES,
    MAX_DESCRIPTION,
    MAX_LIST_NAME,
    MAX_PERSON_NAME,
    OPERATOR_SETTABLE_STATUSES,
    SubscriberStatus,
)


class _Request(RequestModel):
    model_config = ConfigDict(extra="forbid")


# The constraints the domain enforces (model.py), stated for the OpenAPI document; the domain still
# checks them after trimming the surrounding whitespace.
ListName = Annotated[str, Field(min_length=1, max_length=MAX_LIST_NAME, pattern=NOT_BLANK)]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION)]
PersonName = Annotated[str, Field(max_length=MAX_PERSON_NAME, description="blank is stored as absent")]
ATTRIBUTES = (
    f"a JSON object for merge fields, at most {MAX_ATTRIBUTES_BYTES // 1024} KiB "
    f"({MAX_ATTRIBUTES_BYTES} bytes) as compact UTF-8 JSON"
)


class ListCreate(_Request):
    name: ListName
    description: Description | None = None


class ListUpdate(_Request):
    name: ListName | None = None
    description: Description | None = None


class _Response(BaseModel):
    # Built from the domain objects; their bigint ids become the API's opaque string ids.
    model_config = ConfigDict(from_attributes=True, coerce_numbers_to_str=True)


class ListOut(_Response):
    id: str
    name: str
    description: str
    subscriber_count: int = Field(description="subscribers whose status is `subscribed`")
    counts: dict[str, int] = Field(
        default_factory=dict, description="subscribers by status (statuses with none may be absent)"
    )
    created_at: datetime
    updated_at: datetime


class SubscriberCreate(_Request):
    email: EmailAddress
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    attributes: dict[str, Any] | None = Field(default=None, description=ATTRIBUTES)


class SubscriberUpdate(_Request):
    email: EmailAddress | None = None
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    attributes: dict[str, Any] | None = Field(
        default=None, description=f"replaces the attributes as a whole; {ATTRIBUTES}"
    )
    # The enum is stated for the document; the domain checks it (next_status), with the reason why.
    status: Annotated[str, Field(json_schema_extra={"enum": sorted(OPERATOR_SETTABLE_STATUSES)})] | None = Field(
        default=None, description="`bounced` and `complained` are recorded by delivery, not set by hand"
    )


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


class UnsubscribeIn(_Request):
    campaign_id: str | None = Field(default=None, max_length=200, description="the campaign whose link was followed")


class UnsubscribeOut(BaseModel):
    subscriber_id: str
    status: str
    changed: bool = Field(description="false when the subscriber had already left (nothing new happened)")


class ImportStarted(BaseModel):
    id: str
    status: str


class ImportRowError(BaseModel):
    line: int
    reason: str


class ImportOut(_Response):
    id: str
    list_id: str
    mode: str
    status: str = Field(description="queued, running, completed or failed")
    file_name: str
    processed: int = Field(description="data rows read so far")
    imported: int = Field(description="new subscribers added")
    updated: int = Field(description="subscribers already on the list whose fields were updated (mode=update)")
    skipped: int = Field(description="rows for subscribers already on the list, left unchanged (mode=skip)")
    error_count: int = Field(description="rows rejected; the first ones are in `errors`")
    errors: list[ImportRowError]
    detail: str | None = Field(description="why a failed import failed as a whole")
    created_at: datetime
    finished_at: datetime | None


class SuppressionOut(_Response):
    email: str
    reason: str
    detail: str
    created_at: datetime

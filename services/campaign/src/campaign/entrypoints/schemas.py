"""The campaign API's request and response bodies (API.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from mailstify_contracts import CampaignStatus
from mailstify_servicekit.text import NOT_BLANK, EmailAddress, RequestModel

from ..domain.model import Campaign
from ..service_layer.ports import DeliveryRecord

MAX_BODY = 2_000_000  # characters; far beyond any real email, short of a memory problem

# What the service layer enforces (campaigns._clean_fields), stated for the OpenAPI document.
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK)]
Subject = Annotated[str, Field(min_length=1, max_length=998, pattern=NOT_BLANK)]
ListId = Annotated[str, Field(min_length=1, max_length=100, pattern=NOT_BLANK, description="an audience list's id")]
FromName = Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK)]
ReplyTo = Annotated[str, Field(max_length=320, description="an email address; empty or null for none")]
Body = Annotated[str, Field(max_length=MAX_BODY, description="a template: `{{ subscriber.<field> }}` merge fields")]


class CampaignCreate(RequestModel):
    name: Name
    subject: Subject
    list_id: ListId
    from_name: FromName
    from_email: EmailAddress
    reply_to: ReplyTo | None = None
    body_html: Body
    body_text: Body | None = None


class CampaignPatch(RequestModel):
    """Only the fields present are changed; null is allowed only for the optional ones."""

    # Typed without `| None`: an explicit null for a required field is refused (422), as the
    # service layer does; absent means unchanged.
    name: Name = None  # type: ignore[assignment]
    subject: Subject = None  # type: ignore[assignment]
    list_id: ListId = None  # type: ignore[assignment]
    from_name: FromName = None  # type: ignore[assignment]
    from_email: EmailAddress = None  # type: ignore[assignment]
    reply_to: ReplyTo | None = None
    body_html: Body = None  # type: ignore[assignment]
    body_text: Body | None = None


class SendRequest(RequestModel):
    send_at: datetime | None = Field(
        default=None,
        description="schedule the send for this time (with a time zone, within a year); omit it (or null) to send now",
    )


class TestSendRequest(RequestModel):
    emails: list[EmailAddress] = Field(min_length=1, max_length=5, description="where the test mails go")
    subscriber_id: str | None = Field(
        default=None, max_length=200, description="render as this subscriber of the list; a sample person if omitted"
    )


class TestSendOut(BaseModel):
    status: str = "queued"
    emails: list[str]


class RetryRequest(RequestModel):
    include_unknown: bool = Field(default=False, description="also re-send to recipients whose outcome is unknown")


class CampaignOut(BaseModel):
    id: str
    name: str
    subject: str
    list_id: str
    from_name: str
    from_email: str
    reply_to: str | None
    body_html: str
    body_text: str | None
    status: CampaignStatus
    total: int | None
    sent_count: int
    failed_count: int
    unknown_count: int
    cancelled_count: int
    bounce_count: int
    unsubscribe_count: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    send_at: datetime | None
    started_at: datetime | None
    sent_at: datetime | None
    finished_at: datetime | None
    send_rate: float | None = Field(description="recipients settled per second since sending started")

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignOut:
        return cls.model_validate(campaign, from_attributes=True)


class DeliveryOut(BaseModel):
    subscriber_id: str
    email: str
    status: str
    detail: str
    recorded_at: datetime
    round: int = Field(description="0 for the send, n for the n-th retry of failed recipients")

    @classmethod
    def of(cls, record: DeliveryRecord) -> DeliveryOut:
        return cls.model_validate(record, from_attributes=True)

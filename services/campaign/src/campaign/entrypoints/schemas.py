"""The campaign API's request and response bodies (API.md)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from mailstify_contracts import CampaignStatus

from ..domain.model import Campaign
from ..service_layer.ports import DeliveryRecord

MAX_BODY = 2_000_000  # characters; far beyond any real email, short of a memory problem


class CampaignCreate(BaseModel):
    name: str = Field(max_length=200)
    subject: str = Field(max_length=998)
    list_id: str = Field(max_length=100)
    from_name: str = Field(max_length=200)
    from_email: str = Field(max_length=320)
    reply_to: str | None = Field(default=None, max_length=320)
    body_html: str = Field(max_length=MAX_BODY)
    body_text: str | None = Field(default=None, max_length=MAX_BODY)


class CampaignPatch(BaseModel):
    """Only the fields present are changed; null is allowed only for the optional ones."""

    name: str | None = Field(default=None, max_length=200)
    subject: str | None = Field(default=None, max_length=998)
    list_id: str | None = Field(default=None, max_length=100)
    from_name: str | None = Field(default=None, max_length=200)
    from_email: str | None = Field(default=None, max_length=320)
    reply_to: str | None = Field(default=None, max_length=320)
    body_html: str | None = Field(default=None, max_length=MAX_BODY)
    body_text: str | None = Field(default=None, max_length=MAX_BODY)


class SendRequest(BaseModel):
    send_at: datetime | None = None


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
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignOut:
        return cls.model_validate(campaign, from_attributes=True)


class DeliveryOut(BaseModel):
    subscriber_id: str
    email: str
    status: str
    detail: str
    recorded_at: datetime

    @classmethod
    def of(cls, record: DeliveryRecord) -> DeliveryOut:
        return cls.model_validate(record, from_attributes=True)

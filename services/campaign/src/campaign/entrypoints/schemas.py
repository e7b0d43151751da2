"""The campaign API's request and response bodies (API.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from mailstify_contracts import CampaignStatus
from mailstify_servicekit.text import NOT_BLANK, EmailAddress, RequestModel

from ..domain.model import Campaign
from ..domain.timeline import Timeline
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


class MilestoneOut(BaseModel):
    at: datetime
    kind: str = Field(
        description="send_requested, scheduled, unscheduled, schedule_reached, paused, resumed, cancelled,"
        " fanned_out, fanout_failed, retry_round, sent, failed"
    )
    status: CampaignStatus = Field(description="the campaign's status right after it")
    detail: str | None
    trace_id: str | None = Field(description="the trace that was current when it happened (W3C, 32 hex digits)")


class DeferralOut(BaseModel):
    reason: str = Field(description="a delivery-path problem the mailers reported (deliveries retried later)")
    count: int
    first_at: datetime
    last_at: datetime


class TimelineOut(BaseModel):
    """What happened to a campaign, for support: no tracing backend needed, but the trace id to search
    for in one if there is one."""

    campaign_id: str
    status: CampaignStatus
    trace_id: str | None = Field(description="trace of the send request (POST /send); resumes and retry rounds have theirs in their milestones")
    requested_at: datetime | None = Field(description="when sending started (send pressed, or the scheduled time)")
    send_at: datetime | None = Field(description="when a scheduled campaign starts")
    fanned_out_at: datetime | None = Field(description="when the dispatcher reported every recipient queued")
    first_delivery_at: datetime | None = Field(description="the earliest outcome a mailer reported")
    last_delivery_at: datetime | None = Field(description="the latest outcome a mailer reported")
    sent_at: datetime | None
    finished_at: datetime | None
    total: int | None
    sent_count: int
    failed_count: int
    unknown_count: int
    cancelled_count: int
    send_rounds: int = Field(description="send rounds after the first (each resume, and a cancel of a started send)")
    retry_rounds: int = Field(description="retry-failed rounds")
    last_error: str | None
    milestones: list[MilestoneOut] = Field(description="status changes and pipeline reports, oldest first")
    retries: list[MilestoneOut] = Field(description="the milestones that are retry rounds, pauses and resumes")
    deferrals: list[DeferralOut] = Field(description="delivery-path problems by reason, oldest first")

    @classmethod
    def of(cls, timeline: Timeline) -> TimelineOut:
        c = timeline.campaign
        return cls(
            campaign_id=c.id,
            status=c.status,
            trace_id=timeline.trace_id,
            requested_at=c.send_requested_at,
            send_at=c.send_at,
            fanned_out_at=c.fanned_out_at,
            first_delivery_at=c.first_delivery_at,
            last_delivery_at=c.last_delivery_at,
            sent_at=c.sent_at,
            finished_at=c.finished_at,
            total=c.total,
            sent_count=c.sent_count,
            failed_count=c.failed_count,
            unknown_count=c.unknown_count,
            cancelled_count=c.cancelled_count,
            send_rounds=c.send_round,
            retry_rounds=c.retry_round,
            last_error=c.last_error,
            milestones=[MilestoneOut.model_validate(m, from_attributes=True) for m in timeline.milestones],
            retries=[MilestoneOut.model_validate(m, from_attributes=True) for m in timeline.retries],
            deferrals=[DeferralOut.model_validate(d, from_attributes=True) for d in timeline.deferrals],
        )

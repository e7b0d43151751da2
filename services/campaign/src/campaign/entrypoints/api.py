"""Public campaign routes (/api/v1/campaigns, behind the gateway): translate HTTP to service-layer calls."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status
from opentelemetry import trace

from mailstify_servicekit import AccountId, Page, PageCursor, PageLimit
from mailstify_servicekit.pagination import DEFAULT_PAGE_SIZE

from ..service_layer.handlers import campaigns, control, previews, timeline, trial_sends
from .dependencies import Links, Lists, Recipients, Uow
from .schemas import (
    CampaignCreate,
    CampaignOut,
    CampaignPatch,
    DeliveryOut,
    RetryRequest,
    SendRequest,
    TestSendOut,
    TestSendRequest,
    TimelineOut,
)

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])

# A preview is the sender's own HTML shown on our origin: sandboxed, no scripts, no sniffing.
PREVIEW_HEADERS = {
    "Content-Security-Policy": "sandbox; default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
SubscriberId = Annotated[
    str | None, Query(max_length=200, description="preview for this subscriber of the list; a sample person if omitted")
]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_campaign(body: CampaignCreate, account_id: AccountId, uow: Uow, lists: Lists) -> CampaignOut:
    return CampaignOut.of(await campaigns.create_campaign(uow, lists, account_id, body.model_dump()))


@router.get("")
async def list_campaigns(
    account_id: AccountId, uow: Uow, limit: PageLimit = DEFAULT_PAGE_SIZE, cursor: PageCursor = None
) -> Page[CampaignOut]:
    page = await campaigns.list_campaigns(uow, account_id, limit, cursor)
    return Page(items=[CampaignOut.of(c) for c in page.items], next_cursor=page.next_cursor)


@router.get("/{campaign_id}")
async def get_campaign(campaign_id: str, account_id: AccountId, uow: Uow) -> CampaignOut:
    return CampaignOut.of(await campaigns.get_campaign(uow, account_id, campaign_id))


@router.patch("/{campaign_id}")
async def update_campaign(
    campaign_id: str, body: CampaignPatch, account_id: AccountId, uow: Uow, lists: Lists
) -> CampaignOut:
    changes = body.model_dump(exclude_unset=True)
    return CampaignOut.of(await campaigns.update_campaign(uow, lists, account_id, campaign_id, changes))


@router.delete("/{campaign_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_campaign(campaign_id: str, account_id: AccountId, uow: Uow) -> Response:
    await campaigns.delete_campaign(uow, account_id, campaign_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{campaign_id}/duplicate", status_code=status.HTTP_201_CREATED)
async def duplicate_campaign(campaign_id: str, account_id: AccountId, uow: Uow) -> CampaignOut:
    return CampaignOut.of(await campaigns.duplicate_campaign(uow, account_id, campaign_id))


@router.post("/{campaign_id}/send", status_code=status.HTTP_202_ACCEPTED)
async def send_campaign(
    campaign_id: str, account_id: AccountId, uow: Uow, lists: Lists, body: SendRequest | None = None
) -> CampaignOut:
    trace.get_current_span().set_attribute("campaign.id", campaign_id)
    send_at = body.send_at if body else None
    return CampaignOut.of(await control.request_send(uow, lists, account_id, campaign_id, send_at))


@router.post("/{campaign_id}/unschedule", status_code=status.HTTP_202_ACCEPTED)
async def unschedule_campaign(campaign_id: str, account_id: AccountId, uow: Uow) -> CampaignOut:
    return CampaignOut.of(await control.unschedule(uow, account_id, campaign_id))


@router.post("/{campaign_id}/pause", status_code=status.HTTP_202_ACCEPTED)
async def pause_campaign(campaign_id: str, account_id: AccountId, uow: Uow) -> CampaignOut:
    return CampaignOut.of(await control.pause(uow, account_id, campaign_id))


@router.post("/{campaign_id}/resume", status_code=status.HTTP_202_ACCEPTED)
async def resume_campaign(campaign_id: str, account_id: AccountId, uow: Uow) -> CampaignOut:
    return CampaignOut.of(await control.resume(uow, account_id, campaign_id))


@router.post("/{campaign_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel_campaign(campaign_id: str, account_id: AccountId, uow: Uow) -> CampaignOut:
    return CampaignOut.of(await control.cancel(uow, account_id, campaign_id))


@router.post("/{campaign_id}/retry-failed", status_code=status.HTTP_202_ACCEPTED)
async def retry_failed(
    campaign_id: str, account_id: AccountId, uow: Uow, recipients: Recipients, body: RetryRequest | None = None
) -> CampaignOut:
    include_unknown = body.include_unknown if body else False
    return CampaignOut.of(await control.retry_failed(uow, recipients, account_id, campaign_id, include_unknown))


@router.post("/{campaign_id}/test", status_code=status.HTTP_202_ACCEPTED)
async def send_test(
    campaign_id: str, body: TestSendRequest, account_id: AccountId, uow: Uow, recipients: Recipients
) -> TestSendOut:
    sent_to = await trial_sends.send_test(uow, recipients, account_id, campaign_id, body.emails, body.subscriber_id)
    return TestSendOut(emails=sent_to)


@router.get("/{campaign_id}/deliveries")
async def list_deliveries(
    campaign_id: str,
    account_id: AccountId,
    uow: Uow,
    status: Literal["sent", "failed", "unknown", "cancelled", "retrying"] | None = None,
    q: Annotated[str | None, Query(max_length=320, description="part of the recipient's address")] = None,
    limit: PageLimit = DEFAULT_PAGE_SIZE,
    cursor: PageCursor = None,
) -> Page[DeliveryOut]:
    page = await campaigns.list_deliveries(uow, account_id, campaign_id, status, limit, cursor, q)
    return Page(items=[DeliveryOut.of(d) for d in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{campaign_id}/timeline",
    responses={404: {"description": "no such campaign in this account"}},
    summary="What happened to a campaign, and the trace id to search for",
)
async def get_timeline(campaign_id: str, account_id: AccountId, uow: Uow) -> TimelineOut:
    """When it was requested, fanned out, first and last delivered; its status changes, retry
    rounds, pauses and resumes; delivery-path problems by reason; the send request's trace id."""
    return TimelineOut.of(await timeline.campaign_timeline(uow, account_id, campaign_id))


@router.get("/{campaign_id}/preview", response_class=Response)
async def preview_html(
    campaign_id: str, account_id: AccountId, uow: Uow, recipients: Recipients, links: Links,
    subscriber_id: SubscriberId = None,
) -> Response:
    found = await previews.preview(uow, recipients, links, account_id, campaign_id, subscriber_id)
    return Response(found.html, media_type="text/html; charset=utf-8", headers=PREVIEW_HEADERS)


@router.get("/{campaign_id}/preview.txt", response_class=Response)
async def preview_text(
    campaign_id: str, account_id: AccountId, uow: Uow, recipients: Recipients, links: Links,
    subscriber_id: SubscriberId = None,
) -> Response:
    found = await previews.preview(uow, recipients, links, account_id, campaign_id, subscriber_id)
    return Response(found.text, media_type="text/plain; charset=utf-8", headers=PREVIEW_HEADERS)


@router.get("/{campaign_id}/preview.eml", response_class=Response)
async def preview_message(
    campaign_id: str, account_id: AccountId, uow: Uow, recipients: Recipients, links: Links,
    subscriber_id: SubscriberId = None,
) -> Response:
    message = await previews.preview_message(uow, recipients, links, account_id, campaign_id, subscriber_id)
    return Response(message, media_type="message/rfc822", headers=PREVIEW_HEADERS)

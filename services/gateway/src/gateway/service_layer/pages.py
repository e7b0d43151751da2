"""The web pages' use cases: what each page shows, gathered from the internal services, and the
changes its forms ask for. Entrypoints only render what these return."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from mailstify_servicekit.errors import InvalidInput, NotFound, ServiceError

from ..domain import pages
from .web_ports import Campaign, Delivery, ImportJob, Listing, MailingList, Subscriber, WebBackends

SUBSCRIBERS_PER_PAGE = 25
PREVIEW_CHOICES = 20


@dataclass(frozen=True)
class ListPage:
    mailing_list: MailingList
    subscribers: Listing[Subscriber]
    q: str | None
    status: str | None
    cursor: str | None


@dataclass(frozen=True)
class CampaignRow:
    campaign: Campaign
    list_name: str | None


@dataclass(frozen=True)
class CampaignPage:
    campaign: Campaign
    mailing_list: MailingList | None  # None when the list is gone (or the audience is down)
    recipients: list[Subscriber]  # the "preview as" choices
    actions: tuple[str, ...]
    progress: pages.Progress
    deliveries: Listing[Delivery] | None
    delivery_status: str | None


async def list_page(
    web: WebBackends, account_id: str, list_id: str, q: str | None, status: str | None, cursor: str | None
) -> ListPage:
    status = pages.status_filter(status)
    q = (q or "").strip() or None
    mailing_list, subscribers = await asyncio.gather(
        web.audience.get_list(account_id, list_id),
        web.audience.subscribers(account_id, list_id, q=q, status=status, cursor=cursor, limit=SUBSCRIBERS_PER_PAGE),
    )
    return ListPage(mailing_list, subscribers, q, status, cursor)


async def add_subscriber(web: WebBackends, account_id: str, list_id: str, form: dict[str, Any]) -> Subscriber:
    return await web.audience.add_subscriber(account_id, list_id, pages.subscriber_fields(form))


async def update_subscriber(
    web: WebBackends, account_id: str, list_id: str, subscriber_id: str, form: dict[str, Any]
) -> Subscriber:
    fields: dict[str, Any] = dict(pages.subscriber_fields(form))
    if form.get("status") in ("subscribed", "unsubscribed"):
        fields["status"] = form["status"]
    return await web.audience.update_subscriber(account_id, list_id, subscriber_id, fields)


async def start_import(web: WebBackends, account_id: str, list_id: str, filename: str, content: bytes) -> ImportJob:
    if not content.strip():
        raise InvalidInput("choose a CSV file with a header line (email,first_name,last_name)", field="file")
    try:
        return await web.audience.start_import(account_id, list_id, filename, content)
    except NotFound as exc:
        if exc.detail == "not found":  # the route itself is missing: an audience without imports
            raise InvalidInput("CSV import is not available on this audience service yet", field="file") from exc
        raise


async def campaigns_index(web: WebBackends, account_id: str) -> list[CampaignRow]:
    campaigns = await web.campaigns.campaigns(account_id)
    try:
        names = {item.id: item.name for item in (await web.audience.lists(account_id)).items}
    except ServiceError:  # the list names are a nicety: the campaigns still show without them
        names = {}
    return [CampaignRow(campaign, names.get(campaign.list_id)) for campaign in campaigns.items]


async def _list_or_none(web: WebBackends, account_id: str, list_id: str) -> MailingList | None:
    try:
        return await web.audience.get_list(account_id, list_id)
    except ServiceError:
        return None


async def campaign_page(
    web: WebBackends, account_id: str, campaign_id: str, delivery_status: str | None = None
) -> CampaignPage:
    campaign = await web.campaigns.get(account_id, campaign_id)
    mailing_list = await _list_or_none(web, account_id, campaign.list_id)
    recipients: list[Subscriber] = []
    if mailing_list is not None:
        try:
            recipients = (
                await web.audience.subscribers(
                    account_id, campaign.list_id, q=None, status="subscribed", cursor=None, limit=PREVIEW_CHOICES
                )
            ).items
        except ServiceError:
            recipients = []
    deliveries = None
    if campaign.status != "draft":
        if delivery_status not in ("sent", "failed", "unknown"):
            delivery_status = None
        try:
            deliveries = await web.campaigns.deliveries(
                account_id, campaign_id, status=delivery_status, q=None, cursor=None
            )
        except ServiceError:
            deliveries = None
    return CampaignPage(
        campaign=campaign,
        mailing_list=mailing_list,
        recipients=recipients,
        actions=pages.allowed_actions(campaign.status, campaign.failed_count, campaign.unknown_count),
        progress=pages.progress(campaign.sent_count, campaign.failed_count, campaign.unknown_count, campaign.total),
        deliveries=deliveries,
        delivery_status=delivery_status,
    )


async def save_campaign(web: WebBackends, account_id: str, campaign_id: str | None, form: dict[str, Any]) -> Campaign:
    fields = pages.campaign_fields(form)
    if campaign_id is None:
        return await web.campaigns.create(account_id, fields)
    return await web.campaigns.update(account_id, campaign_id, fields)


async def campaign_action(
    web: WebBackends, account_id: str, campaign_id: str, action: str, form: dict[str, Any]
) -> Campaign | None:
    if action not in pages.ACTIONS:
        raise NotFound("no such action")
    body: dict[str, Any] = {}
    if action == "schedule":  # a send with a time
        action, body = "send", {"send_at": pages.send_at_utc(form.get("send_at"))}
    elif action == "test":
        addresses = pages.test_addresses(str(form.get("emails", "")))
        if not addresses:
            raise InvalidInput("type at least one address to send the test to", field="emails")
        body = {"emails": addresses}
    return await web.campaigns.action(account_id, campaign_id, action, body)

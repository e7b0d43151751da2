"""Previews: a campaign rendered for one subscriber (or a sample person) with the renderer the mailer
sends with and the unsubscribe link the mailer would write, so a preview is byte for byte the mail.

`preview` gives the HTML and text parts as they are on the wire once decoded (`wire_body`);
`preview_message` the whole message as `PreparedCampaign.build` makes it (Date: now).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from mailstify_contracts import Recipient, utcnow
from mailstify_contracts.unsubscribe import UnsubscribeTarget, signed_unsubscribe_url
from mailstify_rendering import SAMPLE_RECIPIENT, PreparedCampaign, RenderError, UnsupportedAddress, wire_body
from mailstify_rendering import render_preview as render
from mailstify_servicekit.errors import InvalidInput, NotFound

from ...domain.model import Campaign
from ..ports import CampaignUnitOfWork, RecipientDirectory, MessageSettings


@dataclass(frozen=True)
class Preview:
    subject: str
    html: bytes
    text: bytes


async def _target(
    uow: CampaignUnitOfWork,
    recipients: RecipientDirectory,
    links: MessageSettings,
    account_id: str,
    campaign_id: str,
    subscriber_id: str | None,
) -> tuple[Campaign, Recipient, str]:
    async with uow:
        campaign = await uow.campaigns.get(account_id, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    if subscriber_id is None:
        recipient = SAMPLE_RECIPIENT
    else:
        found = await recipients.find_recipient(account_id, campaign.list_id, subscriber_id)
        if found is None:
            raise NotFound(f"subscriber {subscriber_id} not found on the campaign's list {campaign.list_id}")
        recipient = found
    target = UnsubscribeTarget(account_id, campaign.id, recipient.subscriber_id)
    try:
        url = signed_unsubscribe_url(links.public_url, links.secret_key, target)
    except ValueError as exc:
        raise NotFound(f"subscriber {subscriber_id} not found") from exc
    return campaign, recipient, url


def _rejected(exc: Exception) -> InvalidInput:
    if isinstance(exc, RenderError):
        return InvalidInput(f"the campaign cannot be rendered for this subscriber: {exc}", field=exc.field, line=exc.line)
    return InvalidInput(f"the campaign cannot be built for this subscriber: {exc}")


async def preview(
    uow: CampaignUnitOfWork,
    recipients: RecipientDirectory,
    links: MessageSettings,
    account_id: str,
    campaign_id: str,
    subscriber_id: str | None = None,
) -> Preview:
    """Raises NotFound (campaign, subscriber) or InvalidInput (the template fails for them)."""
    campaign, recipient, url = await _target(uow, recipients, links, account_id, campaign_id, subscriber_id)
    try:
        rendered = render(campaign.content(), recipient, url)
    except RenderError as exc:
        raise _rejected(exc) from exc
    return Preview(subject=rendered.subject, html=wire_body(rendered.html), text=wire_body(rendered.text))


async def preview_message(
    uow: CampaignUnitOfWork,
    recipients: RecipientDirectory,
    links: MessageSettings,
    account_id: str,
    campaign_id: str,
    subscriber_id: str | None = None,
    now: datetime | None = None,
) -> bytes:
    """The message the mailer would send this subscriber now (same Message-ID scheme, Date = now)."""
    campaign, recipient, url = await _target(uow, recipients, links, account_id, campaign_id, subscriber_id)
    try:
        prepared = PreparedCampaign.prepare(campaign.content(), options=links.headers)
        return prepared.build(campaign.id, recipient, url, format_datetime(now or utcnow()))
    except (RenderError, UnsupportedAddress) as exc:
        raise _rejected(exc) from exc

"""Use cases of the campaign API: create, edit, duplicate, list, delete, and list deliveries."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from mailstify_contracts import utcnow
from mailstify_rendering import TemplateRejected, check_template, sanitize_html, validate_campaign
from mailstify_servicekit.emails import normalise_email
from mailstify_servicekit.errors import InvalidInput, NotFound
from mailstify_servicekit.pagination import InvalidCursor, Page, decode_cursor, split_page

from ...domain.model import Campaign
from ..ports import CampaignUnitOfWork, DeliveryRecord, ListDirectory

# Fields a client may set; the rest is the campaign's own state.
EDITABLE_FIELDS = ("name", "subject", "list_id", "from_name", "from_email", "reply_to", "body_html", "body_text")
REQUIRED_FIELDS = ("name", "subject", "list_id", "from_name", "from_email", "body_html")
HEADER_FIELDS = ("subject", "from_name", "from_email", "reply_to")
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x85\u2028\u2029]")


def _address(field: str, value: str) -> str:
    try:
        return normalise_email(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{field}: {exc.detail}") from exc


def _clean_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise client-supplied content; raises InvalidInput with the field name."""
    cleaned = dict(fields)
    for name in REQUIRED_FIELDS:
        if name in cleaned and cleaned[name] is None:
            raise InvalidInput(f"{name}: must not be null")
    for name in ("name", "subject", "from_name", "list_id"):
        if name in cleaned and not cleaned[name].strip():
            raise InvalidInput(f"{name}: must not be empty")
    for name in HEADER_FIELDS:
        # Each becomes (part of) a header line: a line break there would be header injection.
        if isinstance(cleaned.get(name), str) and _LINE_BREAKS.search(cleaned[name]):
            raise InvalidInput(f"{name}: must be a single line (no line breaks)")
    if "from_email" in cleaned:
        cleaned["from_email"] = _address("from_email", cleaned["from_email"])
    if cleaned.get("reply_to"):
        cleaned["reply_to"] = _address("reply_to", cleaned["reply_to"])
    elif "reply_to" in cleaned:
        cleaned["reply_to"] = None
    for name in ("subject", "body_html", "body_text"):
        # Checked before sanitising, so a syntax error's line number is the line the author wrote.
        try:
            check_template(name, cleaned.get(name), html=name == "body_html")
        except TemplateRejected as exc:
            raise InvalidInput(str(exc), field=exc.field, line=exc.line) from exc
    if "body_html" in cleaned:
        cleaned["body_html"] = sanitize_html(cleaned["body_html"])
    return cleaned


def _validate_rendering(campaign: Campaign) -> None:
    """Render the campaign for a sample subscriber with the send's own environment and bounds, so a
    template that would blow a bound (loops, output size, time) is refused now, not at send time."""
    try:
        validate_campaign(campaign.content())
    except TemplateRejected as exc:
        raise InvalidInput(str(exc), field=exc.field, line=exc.line) from exc


def _time_position(at: datetime, item_id: str) -> dict[str, str]:
    return {"at": at.isoformat(), "id": item_id}


def _time_key(cursor: str | None) -> tuple[datetime, str] | None:
    """The (timestamp, id) sort key both pages here are ordered by."""
    if not cursor:
        return None
    position = decode_cursor(cursor)
    try:
        return datetime.fromisoformat(position["at"]), str(position["id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidCursor() from exc


async def require_list(lists: ListDirectory, account_id: str, list_id: str) -> int:
    found = await lists.find_list(account_id, list_id)
    if found is None:
        raise InvalidInput(f"list {list_id} not found")
    return found.subscriber_count


async def load_campaign(uow: CampaignUnitOfWork, account_id: str, campaign_id: str, *, for_update: bool = False) -> Campaign:
    campaign = await uow.campaigns.get(account_id, campaign_id, for_update=for_update)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


async def create_campaign(
    uow: CampaignUnitOfWork, lists: ListDirectory, account_id: str, fields: dict[str, Any]
) -> Campaign:
    cleaned = _clean_fields(fields)
    await require_list(lists, account_id, cleaned["list_id"])
    now = utcnow()
    campaign = Campaign(
        id=uuid.uuid4().hex,
        account_id=account_id,
        created_at=now,
        updated_at=now,
        **{name: cleaned.get(name) for name in EDITABLE_FIELDS},
    )
    _validate_rendering(campaign)
    async with uow:
        await uow.campaigns.add(campaign)
        await uow.commit()
    return campaign


async def get_campaign(uow: CampaignUnitOfWork, account_id: str, campaign_id: str) -> Campaign:
    async with uow:
        return await load_campaign(uow, account_id, campaign_id)


async def list_campaigns(uow: CampaignUnitOfWork, account_id: str, limit: int, cursor: str | None) -> Page[Campaign]:
    async with uow:
        rows = await uow.campaigns.list_newest_first(account_id, limit + 1, _time_key(cursor))
    items, next_cursor = split_page(rows, limit, lambda c: _time_position(c.created_at, c.id))
    return Page(items=items, next_cursor=next_cursor)


async def update_campaign(
    uow: CampaignUnitOfWork, lists: ListDirectory, account_id: str, campaign_id: str, changes: dict[str, Any]
) -> Campaign:
    cleaned = _clean_fields({k: v for k, v in changes.items() if k in EDITABLE_FIELDS})
    async with uow:
        current = await load_campaign(uow, account_id, campaign_id)
    current.ensure_editable()
    if "list_id" in cleaned and cleaned["list_id"] != current.list_id:
        await require_list(lists, account_id, cleaned["list_id"])
    async with uow:
        # Re-read under the lock: a send may have started while the list was being checked.
        campaign = await load_campaign(uow, account_id, campaign_id, for_update=True)
        campaign.ensure_editable()
        for name, value in cleaned.items():
            setattr(campaign, name, value)
        _validate_rendering(campaign)
        campaign.updated_at = utcnow()
        await uow.campaigns.save(campaign)
        await uow.commit()
    return campaign


async def delete_campaign(uow: CampaignUnitOfWork, account_id: str, campaign_id: str) -> None:
    async with uow:
        campaign = await load_campaign(uow, account_id, campaign_id, for_update=True)
        campaign.ensure_deletable()
        await uow.campaigns.delete(campaign.id)
        await uow.commit()


async def duplicate_campaign(uow: CampaignUnitOfWork, account_id: str, campaign_id: str) -> Campaign:
    async with uow:
        original = await load_campaign(uow, account_id, campaign_id)
        copy = original.duplicate(uuid.uuid4().hex, utcnow())
        await uow.campaigns.add(copy)
        await uow.commit()
    return copy


async def list_deliveries(
    uow: CampaignUnitOfWork,
    account_id: str,
    campaign_id: str,
    status: str | None,
    limit: int,
    cursor: str | None,
    search: str | None = None,
) -> Page[DeliveryRecord]:
    async with uow:
        await load_campaign(uow, account_id, campaign_id)
        rows = await uow.results.page(campaign_id, status, limit + 1, _time_key(cursor), search)
    items, next_cursor = split_page(rows, limit, lambda d: _time_position(d.recorded_at, d.subscriber_id))
    return Page(items=items, next_cursor=next_cursor)

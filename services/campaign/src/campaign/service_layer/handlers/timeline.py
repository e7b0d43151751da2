"""The campaign timeline (GET /campaigns/{id}/timeline), and noting its milestones as they happen."""

from __future__ import annotations

from datetime import datetime

from mailstify_contracts import CampaignStatus

from ...domain.model import Campaign
from ...domain.timeline import Timeline, milestones
from ..ports import CampaignUnitOfWork
from .campaigns import load_campaign


async def note(
    uow: CampaignUnitOfWork,
    campaign: Campaign,
    before: CampaignStatus,
    now: datetime,
    kind: str | None = None,
    detail: str | None = None,
) -> None:
    """In the caller's transaction: milestone `kind`, and the campaign's ending if this change ended it."""
    await uow.timeline.add(milestones(campaign, before, now, kind, detail))


async def campaign_timeline(uow: CampaignUnitOfWork, account_id: str, campaign_id: str) -> Timeline:
    async with uow:
        campaign = await load_campaign(uow, account_id, campaign_id)
        return Timeline(
            campaign=campaign,
            milestones=await uow.timeline.milestones(campaign_id),
            deferrals=await uow.timeline.deferrals(campaign_id),
        )

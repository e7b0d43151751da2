"""Use cases driven by events: fan-out totals (completed or failed), delivery outcomes, delivery-path
problems, and the flip to `sent`."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from mailstify_contracts import subjects, utcnow

from ...domain.model import Outcome, tally_by_campaign
from ..ports import CampaignUnitOfWork
from .timeline import note

log = logging.getLogger(__name__)


async def record_fanout_completed(uow: CampaignUnitOfWork, account_id: str, campaign_id: str, total: int) -> None:
    """Set the total once; the campaign is `sent` right away if every outcome is already in (or total is 0)."""
    async with uow:
        campaign = await uow.campaigns.get(account_id, campaign_id, for_update=True)
        if campaign is None:
            log.info("fan-out completed for unknown campaign %s; ignored", campaign_id)
            return
        before, now = campaign.status, utcnow()
        if campaign.fanout_completed(total, now):
            await note(uow, campaign, before, now, "fanned_out", f"{total} recipients")
            await uow.campaigns.save(campaign)
            uow.emit(campaign.status_changed(), subjects.CAMPAIGN_STATUS_CHANGED)
            await uow.commit()
            log.info(
                "campaign %s fanned out to %d recipients; it is %s",
                campaign_id,
                total,
                campaign.status,
                extra={"campaign_id": campaign_id},
            )


async def record_fanout_failed(
    uow: CampaignUnitOfWork, account_id: str, campaign_id: str, published: int, reason: str
) -> None:
    """The fan-out gave up: the campaign is `failed` with the reason, counting the recipients already queued."""
    async with uow:
        campaign = await uow.campaigns.get(account_id, campaign_id, for_update=True)
        if campaign is None:
            log.info("fan-out failed for unknown campaign %s; ignored", campaign_id)
            return
        before, now = campaign.status, utcnow()
        if campaign.fanout_failed(published, reason, now):
            await note(uow, campaign, before, now, "fanout_failed", reason)
            await uow.campaigns.save(campaign)
            uow.emit(campaign.status_changed(), subjects.CAMPAIGN_STATUS_CHANGED)
            await uow.commit()
            log.info(
                "campaign %s is %s: its fan-out gave up (%s)",
                campaign_id,
                campaign.status,
                reason,
                extra={"campaign_id": campaign_id},
            )


def deferral_note(reason: str, smtp_code: int | None) -> str:
    code = f"{smtp_code} " if smtp_code is not None and str(smtp_code) not in reason else ""
    return f"delivery deferred: {code}{reason} (retrying)"


async def record_deferrals(uow: CampaignUnitOfWork, deferrals: list[tuple[str, str, str]]) -> None:
    """(account_id, campaign_id, note) of delivery-path problems: shown as the campaign's `last_error`
    while it is sending; the latest note per campaign wins."""
    latest: dict[tuple[str, str], str] = {}
    for account_id, campaign_id, last_error in deferrals:
        latest[(account_id, campaign_id)] = last_error
    if not latest:
        return
    now = utcnow()
    async with uow:
        campaigns = await uow.campaigns.lock_many([campaign_id for _, campaign_id in latest])
        # Every report counts in the timeline (not only the latest per campaign), once per reason.
        counted = Counter(
            (campaign_id, reason)
            for account_id, campaign_id, reason in deferrals
            if campaign_id in campaigns and campaigns[campaign_id].account_id == account_id
        )
        await uow.timeline.count_deferrals([(c, reason, n) for (c, reason), n in counted.items()], now)
        for (account_id, campaign_id), reason in latest.items():
            campaign = campaigns.get(campaign_id)
            if campaign is None or campaign.account_id != account_id:
                continue
            if campaign.delivery_deferred(reason, now):
                await uow.campaigns.save(campaign)
                uow.emit(campaign.status_changed(), subjects.CAMPAIGN_STATUS_CHANGED)
        await uow.commit()


async def record_outcomes(uow: CampaignUnitOfWork, outcomes: list[Outcome]) -> None:
    """Record a batch of delivery outcomes in one transaction; count only the ones new to the ledger."""
    first_per_recipient: dict[tuple[str, str], Outcome] = {}
    for outcome in outcomes:
        if outcome.is_test:
            continue
        key = (outcome.campaign_id, outcome.subscriber_id)
        # One row per recipient in the statement; the latest round's outcome is the one that can count.
        if key not in first_per_recipient or outcome.round > first_per_recipient[key].round:
            first_per_recipient[key] = outcome
    if not first_per_recipient:
        return
    now = utcnow()
    async with uow:
        # Locking the touched campaigns first serialises this batch with fan-out completion and with
        # other batches of the same campaign, so the counts and the flip to `sent` are never lost.
        campaigns = await uow.campaigns.lock_many([cid for cid, _ in first_per_recipient])
        known = [
            o
            for o in first_per_recipient.values()
            if o.campaign_id in campaigns and campaigns[o.campaign_id].account_id == o.account_id
        ]
        if len(known) < len(first_per_recipient):
            log.info("ignored %d outcomes of unknown campaigns", len(first_per_recipient) - len(known))
        recorded = await uow.results.record(known, now)
        # First/last delivery: a min/max per batch, never a row per email.
        times_moved = {
            campaign_id
            for campaign_id, (first, last) in _reported_between(known).items()
            if campaigns[campaign_id].deliveries_reported(first, last)
        }
        changed = []
        for campaign_id, tally in tally_by_campaign(recorded).items():
            campaign = campaigns[campaign_id]
            status_before = campaign.status
            if campaign.add_outcomes(tally, now):
                times_moved.discard(campaign_id)
                await uow.campaigns.save(campaign)
                uow.emit(campaign.status_changed(), subjects.CAMPAIGN_STATUS_CHANGED)
                if campaign.status != status_before:
                    await note(uow, campaign, status_before, now)
                    changed.append(campaign)
        for campaign_id in times_moved:
            await uow.campaigns.save(campaigns[campaign_id])
        await uow.commit()
    for campaign in changed:
        log.info(
            "campaign %s is %s: every outcome is in", campaign.id, campaign.status, extra={"campaign_id": campaign.id}
        )


def _reported_between(outcomes: list[Outcome]) -> dict[str, tuple[datetime, datetime]]:
    """Per campaign, the earliest and latest report time of its delivered (not cancelled) outcomes."""
    between: dict[str, tuple[datetime, datetime]] = {}
    for outcome in outcomes:
        at = outcome.reported_at
        if at is None or outcome.outcome == "cancelled":
            continue
        first, last = between.get(outcome.campaign_id, (at, at))
        between[outcome.campaign_id] = (min(first, at), max(last, at))
    return between


async def record_unsubscribes(uow: CampaignUnitOfWork, unsubscribes: list[tuple[str, str, str]]) -> None:
    """(account_id, campaign_id, subscriber_id) of unsubscribe-link clicks: each campaign counts a
    subscriber once, however often the event is delivered; unknown campaigns are ignored."""
    pairs: dict[tuple[str, str], str] = {}
    for account_id, campaign_id, subscriber_id in unsubscribes:
        pairs.setdefault((campaign_id, subscriber_id), account_id)
    if not pairs:
        return
    now = utcnow()
    async with uow:
        # Locked like outcome batches, so the count is never lost to a concurrent save of the campaign.
        campaigns = await uow.campaigns.lock_many([campaign_id for campaign_id, _ in pairs])
        known = [
            (campaign_id, subscriber_id)
            for (campaign_id, subscriber_id), account_id in pairs.items()
            if campaign_id in campaigns and campaigns[campaign_id].account_id == account_id
        ]
        if len(known) < len(pairs):
            log.info("ignored %d unsubscribes of unknown campaigns", len(pairs) - len(known))
        per_campaign: dict[str, int] = {}
        for campaign_id in await uow.unsubscribes.record(known, now):
            per_campaign[campaign_id] = per_campaign.get(campaign_id, 0) + 1
        for campaign_id, count in per_campaign.items():
            campaign = campaigns[campaign_id]
            if campaign.add_unsubscribes(count, now):
                await uow.campaigns.save(campaign)
        await uow.commit()

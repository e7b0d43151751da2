"""Use cases of a campaign's life after its content is written: send now or schedule, start what is
due, unschedule, pause, resume, cancel, retry the failed recipients.

Every transition is one transaction under the campaign's row lock, and stages what the rest of the
platform must hear in the same transaction (outbox): the status for whoever watches, the control state
(CAMPAIGN_CONTROL bucket) for the dispatcher and the mailers, and a send request for the dispatcher
when a fan-out must start, continue, or report its total.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from mailstify_contracts import CampaignRecipientsRequeued, CampaignSendRequested, Recipient, subjects, utcnow
from mailstify_servicekit.errors import Conflict, InvalidInput

from ...domain.model import Campaign, OutcomeKind
from ..ports import CampaignUnitOfWork, ListDirectory, RecipientDirectory
from .campaigns import load_campaign, require_list
from .timeline import note

log = logging.getLogger(__name__)

# Recipients named per CampaignRecipientsRequeued (the contract's bound).
REQUEUE_CHUNK = 500
# Subscribers looked up at once in the audience service while preparing a retry.
LOOKUP_CONCURRENCY = 20
# Scheduled campaigns started per scheduler transaction.
DUE_BATCH = 50


def _stage_send_round(uow: CampaignUnitOfWork, campaign: Campaign) -> None:
    uow.emit(
        CampaignSendRequested(
            account_id=campaign.account_id,
            campaign_id=campaign.id,
            list_id=campaign.list_id,
            content=campaign.content(),
        ),
        subjects.CAMPAIGN_SEND_REQUESTED,
        msg_id=subjects.send_requested_msg_id(campaign.id, campaign.send_round),
    )


def _stage_control(uow: CampaignUnitOfWork, campaign: Campaign) -> None:
    uow.emit(campaign.control_changed(), subjects.campaign_control(campaign.id))


def _stage_status(uow: CampaignUnitOfWork, campaign: Campaign) -> None:
    uow.emit(campaign.status_changed(), subjects.CAMPAIGN_STATUS_CHANGED)
    log.info("campaign %s is now %s", campaign.id, campaign.status, extra={"campaign_id": campaign.id})


async def request_send(
    uow: CampaignUnitOfWork,
    lists: ListDirectory,
    account_id: str,
    campaign_id: str,
    send_at: datetime | None = None,
) -> Campaign:
    """Send a draft now (→ sending, CampaignSendRequested staged) or schedule it for `send_at`."""
    async with uow:
        campaign = await load_campaign(uow, account_id, campaign_id)
    campaign.ensure_sendable()
    # The audience service is asked outside any transaction, so no row lock waits on another service.
    if await require_list(lists, account_id, campaign.list_id) == 0:
        raise InvalidInput(f"list {campaign.list_id} has no subscribed subscribers")
    async with uow:
        # The row lock makes the draft → sending transition happen once: a concurrent send waits here
        # and then finds the campaign already sending.
        campaign = await load_campaign(uow, account_id, campaign_id, for_update=True)
        now = utcnow()
        before = campaign.status
        if send_at is None:
            campaign.start_sending(now)
            _stage_send_round(uow, campaign)
            await note(uow, campaign, before, now, "send_requested")
        else:
            campaign.schedule(send_at, now)
            await note(uow, campaign, before, now, "scheduled", f"for {send_at.isoformat()}")
        await uow.campaigns.save(campaign)
        _stage_status(uow, campaign)
        await uow.commit()
    return campaign


async def start_due(uow: CampaignUnitOfWork, now: datetime | None = None) -> int:
    """Start the scheduled campaigns whose time has come; how many were started. The schedule is the
    `send_at` column, so a restart of the service loses nothing: the next pass finds what is due."""
    now = now or utcnow()
    async with uow:
        due = await uow.campaigns.lock_due(now, DUE_BATCH)
        for campaign in due:
            before = campaign.status
            campaign.start_sending(now)
            await note(uow, campaign, before, now, "schedule_reached")
            await uow.campaigns.save(campaign)
            _stage_send_round(uow, campaign)
            _stage_status(uow, campaign)
            log.info("scheduled campaign %s started", campaign.id)
        await uow.commit()
    return len(due)


async def start_all_due(new_uow: Callable[[], CampaignUnitOfWork]) -> int:
    """Start everything due, a batch per transaction; how many were started."""
    started = 0
    while (count := await start_due(new_uow())) > 0:
        started += count
        if count < DUE_BATCH:
            break
    return started


Change = Callable[[Campaign, CampaignUnitOfWork], None]


async def _transition(
    uow: CampaignUnitOfWork, account_id: str, campaign_id: str, change: Change, milestone: str
) -> Campaign:
    async with uow:
        campaign = await load_campaign(uow, account_id, campaign_id, for_update=True)
        before = campaign.status
        change(campaign, uow)
        await note(uow, campaign, before, campaign.updated_at, milestone)
        await uow.campaigns.save(campaign)
        _stage_status(uow, campaign)
        await uow.commit()
    return campaign


async def unschedule(uow: CampaignUnitOfWork, account_id: str, campaign_id: str) -> Campaign:
    return await _transition(uow, account_id, campaign_id, lambda c, _: c.unschedule(utcnow()), "unscheduled")


async def pause(uow: CampaignUnitOfWork, account_id: str, campaign_id: str) -> Campaign:
    """Sending → paused: the dispatcher stops at its next page, the mailers hold what they fetch."""

    def change(campaign: Campaign, uow: CampaignUnitOfWork) -> None:
        campaign.pause(utcnow())
        _stage_control(uow, campaign)

    return await _transition(uow, account_id, campaign_id, change, "paused")


async def resume(uow: CampaignUnitOfWork, account_id: str, campaign_id: str) -> Campaign:
    """Paused → sending: the mailers release what they held, and a new send round continues the
    fan-out from its checkpoint (a fan-out that had completed ignores it)."""

    def change(campaign: Campaign, uow: CampaignUnitOfWork) -> None:
        campaign.resume(utcnow())
        _stage_control(uow, campaign)
        _stage_send_round(uow, campaign)

    return await _transition(uow, account_id, campaign_id, change, "resumed")


async def cancel(uow: CampaignUnitOfWork, account_id: str, campaign_id: str) -> Campaign:
    """Scheduled, sending or paused → cancelled. Of a started campaign, the mailers settle every
    recipient not yet sent as `cancelled`, and a new send round wakes a paused fan-out so it stops
    and reports its total."""

    def change(campaign: Campaign, uow: CampaignUnitOfWork) -> None:
        if campaign.cancel(utcnow()):
            _stage_control(uow, campaign)
            _stage_send_round(uow, campaign)

    return await _transition(uow, account_id, campaign_id, change, "cancelled")


async def _still_subscribed(
    recipients: RecipientDirectory, account_id: str, list_id: str, subscriber_ids: list[str]
) -> list[Recipient]:
    """Current snapshots of those of `subscriber_ids` still subscribed to the list (the audience
    service answers None for an unsubscribed, bounced or removed subscriber)."""
    gate = asyncio.Semaphore(LOOKUP_CONCURRENCY)

    async def one(subscriber_id: str) -> Recipient | None:
        async with gate:
            return await recipients.find_recipient(account_id, list_id, subscriber_id)

    found = await asyncio.gather(*(one(s) for s in subscriber_ids))
    return [r for r in found if r is not None]


async def retry_failed(
    uow: CampaignUnitOfWork,
    recipients: RecipientDirectory,
    account_id: str,
    campaign_id: str,
    include_unknown: bool = False,
) -> Campaign:
    """Re-send, once, to the failed (and optionally unknown) recipients still subscribed: the campaign
    is `sending` again, those recipients move out of failed/unknown and are counted anew as they
    settle in the new delivery round."""
    kinds: list[OutcomeKind] = ["failed", "unknown"] if include_unknown else ["failed"]
    async with uow:
        campaign = await load_campaign(uow, account_id, campaign_id)
    campaign.ensure_retryable()
    eligible: list[Recipient] = []
    after: str | None = None
    while True:
        async with uow:
            ids = await uow.results.subscribers_with(campaign_id, kinds, REQUEUE_CHUNK, after)
        if not ids:
            break
        after = ids[-1]
        eligible += await _still_subscribed(recipients, account_id, campaign.list_id, ids)
    if not eligible:
        raise Conflict(f"campaign {campaign_id} has no {' or '.join(kinds)} recipients still subscribed to retry")
    by_id = {r.subscriber_id: r for r in eligible}
    async with uow:
        campaign = await load_campaign(uow, account_id, campaign_id, for_update=True)
        now = utcnow()
        before = campaign.status
        round_number = campaign.start_retry(now)
        taken = await uow.results.take_back(campaign_id, list(by_id), kinds)
        if not taken:
            raise Conflict(f"campaign {campaign_id} has no {' or '.join(kinds)} recipients left to retry")
        campaign.requeued(
            failed=sum(1 for _, was in taken if was == "failed"),
            unknown=sum(1 for _, was in taken if was == "unknown"),
            now=now,
        )
        chosen = [by_id[subscriber_id] for subscriber_id, _ in taken]
        await note(uow, campaign, before, now, "retry_round", f"round {round_number}: {len(chosen)} recipients")
        for start in range(0, len(chosen), REQUEUE_CHUNK):
            uow.emit(
                CampaignRecipientsRequeued(
                    account_id=account_id,
                    campaign_id=campaign_id,
                    round=round_number,
                    recipients=chosen[start : start + REQUEUE_CHUNK],
                ),
                subjects.CAMPAIGN_RECIPIENTS_REQUEUED,
            )
        await uow.campaigns.save(campaign)
        _stage_status(uow, campaign)
        await uow.commit()
    log.info("campaign %s: retrying %d recipients in round %d", campaign_id, len(chosen), round_number)
    return campaign

"""The fan-out: from one CampaignSendRequested to one DeliverEmail per recipient, then FanoutCompleted.

Crash-safe and idempotent by construction:
- each page's recipients are recorded (saved) before the first of them is published, and the count
  advances at the page's checkpoint, after the mail queue acknowledged all of it;
- a page recorded but not checkpointed is republished on resume exactly as recorded — not fetched
  again, the list may have changed — and JetStream drops the copies by msg id: the total is exactly
  the set of recipients published, whatever the crash and whatever changed before the resume;
- completion and the FanoutCompleted event are one transaction (outbox);
- the mail queue's backlog is paced: a page is fetched and published only while fewer than `window`
  messages wait in the queue (every campaign's), so NATS holds about a window plus a page however
  large the list (decision 0021); the wait is back-pressure, not a failure, and counts no attempt;
- the campaign's control state is read before every page: `paused` stops after the last checkpoint
  (the request is acked; the resume's new request carries on from there), `cancelled` completes the
  fan-out with the recipients published so far as its total;
- a request that keeps failing (audience down or erring, anything else) is given up on after
  `max_attempts` deliveries: the fan-out is marked failed and FanoutFailed staged in one transaction,
  so the campaign ends visibly `failed` instead of staying `sending` (decision 0007).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mailstify_contracts import CampaignSendRequested, DeliverEmail, subjects, utcnow
from mailstify_messaging.retry import backoff_delay
from mailstify_messaging.tracing import page_span
from mailstify_servicekit.errors import ServiceError

from ...domain.fanout import Fanout, PendingPage
from ..ports import (
    CampaignControl,
    ContentStore,
    DeliveryPublisher,
    FanoutUnitOfWork,
    MailBacklog,
    PublishRefused,
    RecipientPage,
    RecipientSource,
)

log = logging.getLogger(__name__)

# A long fan-out says how far it got every this many pages (and always when it completes).
MILESTONE_PAGES = 100


@dataclass
class Dispatcher:
    new_uow: Callable[[], FanoutUnitOfWork]
    recipients: RecipientSource
    publisher: DeliveryPublisher
    content: ContentStore
    control: CampaignControl
    backlog: MailBacklog
    page_size: int = 1000
    # Messages waiting in the mail queue at or above which the next page waits (Settings.fanout_window).
    window: int = 100_000
    # How often a waiting fan-out asks the queue again: one stream-info request, not one per message.
    backlog_poll_seconds: float = 0.25
    # Deliveries of one send request before its fan-out is given up on (Settings.fanout_max_attempts).
    max_attempts: int = 10
    # Retries of a refused publish (a full stream, NATS unreachable): short at first, never longer than
    # this between attempts, so the fan-out carries on within seconds of NATS coming back.
    max_publish_backoff: float = 5.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)

    async def attempt(self, request: CampaignSendRequested, attempt: int) -> bool:
        """Delivery number `attempt` (from 1) of a send request: fan out or resume. True when the request
        is settled (fanned out, held by a pause, or given up on: ack it), False to have it redelivered later.

        Any error counts, not only a `ServiceError` from the audience service: on the last attempt the
        fan-out is failed with the reason, whatever it was, so no campaign waits for a fan-out forever."""
        try:
            await self.fan_out(request)
            return True
        except Exception as exc:
            reason = _describe(exc)
            if attempt < self.max_attempts:
                log.warning(
                    "fan-out of campaign %s interrupted (attempt %d of %d): %s",
                    request.campaign_id,
                    attempt,
                    self.max_attempts,
                    reason,
                    exc_info=not isinstance(exc, ServiceError),
                )
                return False
            log.error(
                "fan-out of campaign %s failed after %d attempts: %s", request.campaign_id, attempt, reason, exc_info=True
            )
            await self.give_up(request, f"fan-out failed after {attempt} attempts: {reason}")
            return True

    async def give_up(self, request: CampaignSendRequested, reason: str) -> Fanout:
        """Mark the fan-out failed and stage FanoutFailed in one transaction. Does nothing to a fan-out
        that has already ended (the first end wins: FanoutCompleted and FanoutFailed share a msg id)."""
        while True:
            async with self.new_uow() as uow:
                fanout = await uow.fanouts.get_or_create(self._new_fanout(request))
                failed = fanout.fail(reason, utcnow())
                if failed is None:
                    return fanout
                uow.emit(failed, subjects.CAMPAIGN_FANOUT_FAILED, msg_id=subjects.fanout_msg_id(fanout.campaign_id))
                if await uow.fanouts.save(fanout):
                    await uow.commit()
                    return fanout
            # Another worker checkpointed meanwhile: read it again; it may even have completed.

    async def fan_out(self, request: CampaignSendRequested) -> Fanout:
        """Fan the campaign out, or resume it; returns the fan-out as it stands when this call is done
        (ended, or held by a pause, or left to another worker that advanced it meanwhile).

        It may wait long (a full window, a refused publish): the caller keeps its message alive meanwhile."""
        fanout = await self._start(request)
        if fanout.ended:
            return fanout
        # Before any DeliverEmail can reach a mailer; put is an overwrite, so a resume repeats it harmlessly.
        await self.content.put(request.campaign_id, request.content)
        pages = 0
        while True:
            # Before the page is fetched, so that a pause or cancel during the wait is seen.
            await self._wait_for_room(fanout)
            # A page recorded before a crash goes out as recorded, whatever the control state: some of
            # it may be queued already, and the mailers hold (or cancel) what a pause (or cancel) stops.
            pending = fanout.pending or await self._next_page(fanout)
            if pending is None:
                return fanout
            with page_span("fanout page", pages, _page_attributes(fanout, pending)):
                await self._publish(fanout, pending)
            page = fanout.checkpoint()
            if not await self._save(fanout, complete=page.last):
                return fanout
            pages += 1
            if pages % MILESTONE_PAGES == 0 and not page.last:
                log.info("fan-out of campaign %s: %d recipients published", fanout.campaign_id, fanout.published)
            if page.last:
                log.info("fan-out of campaign %s complete: %d recipients", fanout.campaign_id, fanout.published)
                return fanout

    async def _next_page(self, fanout: Fanout) -> PendingPage | None:
        """Fetch and record the next page; None when the campaign is paused or cancelled (or another
        worker advanced the fan-out meanwhile): nothing more to publish now."""
        state = await self.control.state(fanout.campaign_id)
        if state == "paused":
            log.info("campaign %s is paused; fan-out held at %d recipients", fanout.campaign_id, fanout.published)
            return None
        if state == "cancelled":
            if await self._save(fanout, complete=True):
                log.info("campaign %s cancelled; fan-out ends at %d recipients", fanout.campaign_id, fanout.published)
            return None
        page = await self.recipients.page(
            fanout.account_id,
            fanout.list_id,
            after=fanout.last_subscriber_id,
            up_to=fanout.up_to,
            limit=self.page_size,
        )
        if page is None:
            log.warning("list %s of campaign %s is gone; completing the fan-out", fanout.list_id, fanout.campaign_id)
            page = RecipientPage(items=[], up_to=fanout.up_to, next_after=None)
        if fanout.up_to is None and page.up_to is not None:
            fanout.pin(page.up_to)
        pending = fanout.record(page.items, page.next_after)
        return pending if await self._save(fanout) else None

    async def _start(self, request: CampaignSendRequested) -> Fanout:
        async with self.new_uow() as uow:
            fanout = await uow.fanouts.get_or_create(self._new_fanout(request))
            await uow.commit()
        return fanout

    @staticmethod
    def _new_fanout(request: CampaignSendRequested) -> Fanout:
        return Fanout(
            campaign_id=request.campaign_id,
            account_id=request.account_id,
            list_id=request.list_id,
            created_at=utcnow(),
        )

    async def _wait_for_room(self, fanout: Fanout) -> None:
        """Return once fewer than `window` messages wait in the mail queue. A backlog that cannot be
        read (NATS unreachable) is waited out like a refused publish."""
        polls = 0
        while True:
            try:
                waiting: int | None = await self.backlog.size()
            except PublishRefused as exc:
                waiting = None
                log.warning("cannot read the mail queue's backlog for campaign %s: %s", fanout.campaign_id, exc)
            if waiting is not None and waiting < self.window:
                if polls:
                    log.info("mail queue down to %d messages; fan-out of campaign %s continues", waiting, fanout.campaign_id)
                return
            if polls == 0 and waiting is not None:
                log.info(
                    "mail queue holds %d messages (window %d); fan-out of campaign %s waits at %d recipients",
                    waiting,
                    self.window,
                    fanout.campaign_id,
                    fanout.published,
                )
            polls += 1
            if waiting is None:
                await self.sleep(backoff_delay(polls, base=0.5, cap=self.max_publish_backoff))
            else:
                await self.sleep(self.backlog_poll_seconds)

    async def _publish(self, fanout: Fanout, page: PendingPage) -> None:
        """Publish one page until the mail queue takes all of it: a full queue is waited out, never dropped."""
        if not page.recipients:
            return
        deliveries = [
            DeliverEmail(
                account_id=fanout.account_id,
                campaign_id=fanout.campaign_id,
                recipient=recipient,
                content_key=fanout.campaign_id,
            )
            for recipient in page.recipients
        ]
        attempt = 0
        while True:
            try:
                await self.publisher.publish(deliveries)
                return
            except PublishRefused as exc:
                attempt += 1
                delay = backoff_delay(attempt, base=0.5, cap=self.max_publish_backoff)
                log.warning(
                    "mail queue refused a page of campaign %s (%s); retrying in %.1fs", fanout.campaign_id, exc, delay
                )
                await self.sleep(delay)

    async def _save(self, fanout: Fanout, *, complete: bool = False) -> bool:
        """Save a step (a recorded page, a checkpoint; with `complete` also the completion and its
        FanoutCompleted) in one short transaction. False when another worker advanced this fan-out
        meanwhile: it carries on, this one stops."""
        async with self.new_uow() as uow:
            if complete:
                uow.emit(
                    fanout.complete(utcnow()),
                    subjects.CAMPAIGN_FANOUT_COMPLETED,
                    msg_id=subjects.fanout_msg_id(fanout.campaign_id),
                )
            if not await uow.fanouts.save(fanout):
                log.warning("fan-out of campaign %s advanced elsewhere; leaving it to that worker", fanout.campaign_id)
                return False
            await uow.commit()
        return True


def _page_attributes(fanout: Fanout, page: PendingPage) -> dict[str, object]:
    return {
        "campaign.id": fanout.campaign_id,
        "account.id": fanout.account_id,
        "messaging.batch.message_count": len(page.recipients),
    }


def _describe(exc: Exception) -> str:
    if isinstance(exc, ServiceError):
        return f"the audience service could not list the recipients: {exc.detail}"
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__

"""Delivering a batch of DeliverEmail (ARCHITECTURE §3, §6 rules 2–6).

    control → claim (one statement) → render → send over the pool → record + outbox (one transaction) → settle

Control first: a paused campaign's deliveries are held (see `holds`), a cancelled campaign's are
claimed and recorded `cancelled` without a send.

The ledger row is claimed before anything goes over the wire and its outcome is committed before
the message is acked, so a redelivery never sends twice: a terminal row is acked as is, a row
another replica holds is retried after its lease, and a row whose mailer died mid-send is recorded
`unknown` rather than sent again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import format_datetime

from opentelemetry import trace

from mailstify_contracts import (
    DeliverEmail,
    DeliveryCancelled,
    DeliveryDeferred,
    DeliveryFailed,
    DeliveryOutcomeUnknown,
    DeliverySucceeded,
    subjects,
    utcnow,
)
from mailstify_contracts.unsubscribe import UnsubscribeTarget, signed_unsubscribe_url
from mailstify_messaging.retry import DEFAULT_RETRY_SCHEDULE, RetrySchedule
from mailstify_rendering import PreparedCampaign, RenderError, UnsupportedAddress

from ...domain.classification import classify
from ...domain.model import (
    CANCELLED,
    OUTCOME_UNKNOWN_REASON,
    Claim,
    ClaimState,
    DeliveryKey,
    Outcome,
    SmtpAttempt,
    Status,
    unbuildable,
)
from ..campaign_cache import CampaignCache, Unavailable
from ..metrics import record_outcomes
from ..ports import CampaignControl, ClaimRequest, MailerUnitOfWork, OutgoingMail, RecordedOutcome, Sender
from ..smtp_tracing import record_replies, smtp_span
from .holds import HoldService

log = logging.getLogger(__name__)
tracer = trace.get_tracer("mailstify.mailer")

RECORD_TRIES = 3
# Retrying a duplicate held by another replica sooner than this only spins.
MIN_BUSY_DELAY_SECONDS = 1.0


@dataclass(frozen=True)
class DeliveryTask:
    """One received DeliverEmail and where it stands in JetStream's delivery count."""

    event: DeliverEmail
    attempt: int
    last_attempt: bool

    @property
    def key(self) -> DeliveryKey:
        return DeliveryKey(self.event.campaign_id, self.event.recipient.subscriber_id)


@dataclass(frozen=True)
class Settlement:
    """What to tell JetStream: ack, or redeliver after `delay` (None: the consumer's backoff)."""

    retry: bool = False
    delay: float | None = None


ACK = Settlement()


@dataclass(frozen=True)
class DeliveryPolicy:
    public_url: str
    secret_key: bytes
    lease_seconds: float
    send_budget_seconds: float
    # Delays between deliveries after a 4xx or a delivery-path problem; its max_deliveries is the
    # consumer's max_deliver, so the last delivery it allows is the one that gives up.
    retry_schedule: RetrySchedule = DEFAULT_RETRY_SCHEDULE


class DeliveryService:
    def __init__(
        self,
        unit_of_work: Callable[[], MailerUnitOfWork],
        campaigns: CampaignCache,
        sender: Sender,
        policy: DeliveryPolicy,
        control: CampaignControl,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._unit_of_work = unit_of_work
        self._campaigns = campaigns
        self._sender = sender
        self._policy = policy
        self._control = control
        self.holds = HoldService(unit_of_work, control)
        self._clock = clock

    async def deliver(self, tasks: Sequence[DeliveryTask]) -> list[Settlement]:
        """Deliver a batch; one settlement per task, in order."""
        if not tasks:
            return []
        # The same recipient twice in one batch (a duplicate published under another msg id): the
        # first copy stands for both, the others are acked. The claim statement needs distinct keys.
        first_of: dict[DeliveryKey, DeliveryTask] = {}
        for task in tasks:
            first_of.setdefault(task.key, task)
        unique, cancelled = await self._apply_control(list(first_of.values()))
        if not unique:
            return [ACK for _ in tasks]

        campaigns = await self._campaigns.prepare_all(t.event.content_key for t in unique)
        # Measured before the claim: the lease runs from the claim transaction's start.
        claimed_at = self._clock()
        claims = await self._claim(unique, campaigns)

        settlement_of: dict[DeliveryKey, Settlement] = {}
        to_send: list[DeliveryTask] = []
        to_cancel: list[DeliveryTask] = []
        for task in unique:
            claim = claims[task.key]
            if claim.state is ClaimState.CLAIMED and task.key in cancelled:
                to_cancel.append(task)
            elif claim.state is ClaimState.CLAIMED:
                to_send.append(task)
            elif claim.state is ClaimState.BUSY:
                settlement_of[task.key] = Settlement(retry=True, delay=self._busy_delay(claim))
            else:  # DONE, or ABANDONED (its `unknown` outcome was reported with the claim)
                settlement_of[task.key] = ACK

        outcomes = await self._send(to_send, campaigns, start_before=claimed_at + self._policy.send_budget_seconds)
        outcomes.update({task.key: CANCELLED for task in to_cancel})
        to_send += to_cancel
        recorded = await self._record(to_send, claims, campaigns, outcomes)
        record_outcomes((t.event.recipient.email, outcomes[t.key]) for t in to_send if t.key in recorded)
        for task in to_send:
            outcome = outcomes[task.key]
            if task.key not in recorded:
                # Our lease ran out and another replica recorded the row `unknown` meanwhile: that
                # verdict was reported already; nothing more to do with this copy.
                log.warning("outcome of %s lost its claim; keeping the recorded verdict", task.key)
                settlement_of[task.key] = ACK
            elif outcome.status is Status.RETRY:
                delay = outcome.retry_after
                if delay is None:
                    delay = self._policy.retry_schedule.delay(task.attempt)
                settlement_of[task.key] = Settlement(retry=True, delay=delay)
            else:
                settlement_of[task.key] = ACK
        return [settlement_of.get(t.key, ACK) if first_of[t.key] is t else ACK for t in tasks]

    async def _apply_control(self, tasks: list[DeliveryTask]) -> tuple[list[DeliveryTask], set[DeliveryKey]]:
        """Hold the deliveries of paused campaigns (they are acked: the held copy stands for them);
        the rest, and the keys of those whose campaign is cancelled. Test sends are never held."""
        states = {
            campaign_id: await self._control.state(campaign_id)
            for campaign_id in {t.event.campaign_id for t in tasks if not subjects.is_test_recipient(t.key.subscriber_id)}
        }
        held = [t for t in tasks if states.get(t.event.campaign_id) == "paused"]
        if held:
            await self.holds.hold([t.event for t in held])
        cancelled = {t.key for t in tasks if states.get(t.event.campaign_id) == "cancelled"}
        return [t for t in tasks if states.get(t.event.campaign_id) != "paused"], cancelled

    async def _claim(
        self, tasks: list[DeliveryTask], campaigns: dict[str, PreparedCampaign | Unavailable]
    ) -> dict[DeliveryKey, Claim]:
        requests = [
            ClaimRequest(
                key=t.key,
                account_id=t.event.account_id,
                email=t.event.recipient.email,
                message_id=_message_id(campaigns[t.event.content_key], t.key),
                round=t.event.round,
            )
            for t in tasks
        ]
        by_key = {t.key: t for t in tasks}
        async with self._unit_of_work() as uow:
            claims = {c.key: c for c in await uow.deliveries.claim(requests, self._policy.lease_seconds)}
            # An abandoned send is reported in the same transaction that records it `unknown`.
            for claim in claims.values():
                if claim.state is ClaimState.ABANDONED:
                    event = by_key[claim.key].event
                    outcome = Outcome(Status.UNKNOWN, reason=OUTCOME_UNKNOWN_REASON, permanent=False)
                    uow.emit(*result_event(event, outcome, message_id=""))
            await uow.commit()
        return claims

    async def _send(
        self,
        tasks: list[DeliveryTask],
        campaigns: dict[str, PreparedCampaign | Unavailable],
        start_before: float,
    ) -> dict[DeliveryKey, Outcome]:
        outcomes: dict[DeliveryKey, Outcome] = {}
        mails: list[tuple[DeliveryTask, OutgoingMail]] = []
        date = format_datetime(utcnow())
        for task in tasks:
            campaign = campaigns[task.event.content_key]
            if isinstance(campaign, Unavailable):
                outcomes[task.key] = (
                    unbuildable(campaign.reason)
                    if campaign.permanent
                    else classify(SmtpAttempt(code=None, reply=campaign.reason), self._last_attempt(task))
                )
                continue
            try:
                data = campaign.build(task.event.campaign_id, task.event.recipient, self._unsubscribe_url(task), date)
            except (RenderError, UnsupportedAddress) as exc:
                outcomes[task.key] = unbuildable(str(exc))
                continue
            mails.append((task, OutgoingMail(campaign.content.from_email, task.event.recipient.email, data)))
        if mails:
            with smtp_span(len(mails)) as span:
                attempts = await self._sender.send_all([mail for _, mail in mails], start_before)
                record_replies(span, attempts)
            for (task, _), attempt in zip(mails, attempts, strict=True):
                outcomes[task.key] = classify(attempt, self._last_attempt(task))
        return outcomes

    def _last_attempt(self, task: DeliveryTask) -> bool:
        """This delivery is the last the retry schedule allows (or the consumer says it is)."""
        return task.last_attempt or task.attempt >= self._policy.retry_schedule.max_deliveries

    async def _record(
        self,
        tasks: list[DeliveryTask],
        claims: dict[DeliveryKey, Claim],
        campaigns: dict[str, PreparedCampaign | Unavailable],
        outcomes: dict[DeliveryKey, Outcome],
    ) -> set[DeliveryKey]:
        if not tasks:
            return set()
        rows = [RecordedOutcome(t.key, claims[t.key].attempts, outcomes[t.key]) for t in tasks]
        for try_number in range(1, RECORD_TRIES + 1):
            try:
                async with self._unit_of_work() as uow:
                    recorded = await uow.deliveries.record(rows)
                    deferred: dict[str, DeliveryDeferred] = {}
                    for task in tasks:
                        outcome = outcomes[task.key]
                        if task.key not in recorded:
                            continue
                        if outcome.status is not Status.RETRY:
                            message_id = _message_id(campaigns[task.event.content_key], task.key) or ""
                            uow.emit(*result_event(task.event, outcome, message_id))
                        elif outcome.path_problem and task.event.campaign_id not in deferred:
                            deferred[task.event.campaign_id] = DeliveryDeferred(
                                account_id=task.event.account_id,
                                campaign_id=task.event.campaign_id,
                                reason=outcome.reason,
                                smtp_code=outcome.smtp_code,
                            )
                    # A delivery-path problem is the campaign's to see, once per campaign and batch,
                    # never a recipient's failure.
                    for event in deferred.values():
                        uow.emit(event, subjects.MAIL_RESULT_DEFERRED)
                    await uow.commit()
                for event in deferred.values():
                    log.warning("deliveries of campaign %s deferred: %s", event.campaign_id, event.reason)
                return recorded
            except Exception:
                # Mail went out: losing these outcomes would turn them into `unknown` after the
                # lease, so the database gets a few chances before the batch is given up.
                if try_number == RECORD_TRIES:
                    raise
                log.warning("recording outcomes failed (try %d); retrying", try_number, exc_info=True)
                await asyncio.sleep(0.5 * try_number)
        raise AssertionError("unreachable")

    def _unsubscribe_url(self, task: DeliveryTask) -> str:
        target = UnsubscribeTarget(task.event.account_id, task.event.campaign_id, task.event.recipient.subscriber_id)
        return signed_unsubscribe_url(self._policy.public_url, self._policy.secret_key, target)

    def _busy_delay(self, claim: Claim) -> float:
        if claim.lease_remaining is None:
            return self._policy.lease_seconds
        return max(MIN_BUSY_DELAY_SECONDS, claim.lease_remaining + MIN_BUSY_DELAY_SECONDS)


def _message_id(campaign: PreparedCampaign | Unavailable, key: DeliveryKey) -> str | None:
    if isinstance(campaign, Unavailable):
        return None
    return campaign.message_id(key.campaign_id, key.subscriber_id)


ResultEvent = DeliverySucceeded | DeliveryFailed | DeliveryOutcomeUnknown | DeliveryCancelled


def result_event(event: DeliverEmail, outcome: Outcome, message_id: str) -> tuple[ResultEvent, str, str]:
    """The outcome event, its subject and its msg id (one result per recipient, campaign and round)."""
    msg_id = subjects.result_msg_id(event.campaign_id, event.recipient.subscriber_id, event.round)
    common = {
        "account_id": event.account_id,
        "campaign_id": event.campaign_id,
        "subscriber_id": event.recipient.subscriber_id,
        "email": event.recipient.email,
        "round": event.round,
    }
    if outcome.status is Status.CANCELLED:
        return DeliveryCancelled(**common), subjects.MAIL_RESULT_CANCELLED, msg_id
    if outcome.status is Status.SENT:
        succeeded = DeliverySucceeded(**common, message_id=message_id, smtp_reply=outcome.smtp_reply)
        return succeeded, subjects.MAIL_RESULT_SUCCEEDED, msg_id
    if outcome.status is Status.UNKNOWN:
        # It may have been delivered: never re-sent, counted apart from failures (§6 rule 3).
        unknown = DeliveryOutcomeUnknown(**common, reason=outcome.reason or outcome.smtp_reply)
        return unknown, subjects.MAIL_RESULT_UNKNOWN, msg_id
    failed = DeliveryFailed(
        **common,
        reason=outcome.reason or f"{outcome.smtp_code} {outcome.smtp_reply}".strip(),
        permanent=outcome.permanent,
        smtp_code=outcome.smtp_code,
        hard_bounce=outcome.hard_bounce,
    )
    return failed, subjects.MAIL_RESULT_FAILED, msg_id

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
import collections
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import TypeVar


from mailstify_contracts import (
    DeliveredEmail,
    DeliverEmail,
    DeliveryCancelled,
    DeliveryDeferred,
    DeliveryFailed,
    DeliveryOutcomeUnknown,
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
from ..ports import (
    CampaignControl,
    ClaimRequest,
    DeliveredReport,
    HeldClaim,
    MailerUnitOfWork,
    OutgoingMail,
    RecordedOutcome,
    Report,
    Sender,
    SettledWave,
)
from ..smtp_tracing import record_replies, smtp_span
from .holds import HoldService

log = logging.getLogger(__name__)

T = TypeVar("T")

# Waves in flight at once: one on the wire while the other commits.
LANES = 2
# A wave's messages start at once (the pool has a connection for each); one that could not start in
# this long after its claim was marked `sending` is not attempted.
START_SLACK_SECONDS = 5.0
# Retrying a duplicate held by another replica sooner than this only spins.
MIN_BUSY_DELAY_SECONDS = 1.0


@dataclass(frozen=True)
class DeliveryTask:
    """One received DeliverEmail and where it stands in JetStream's delivery count."""

    event: DeliverEmail
    attempt: int
    last_attempt: bool

    @functools.cached_property  # asked a dozen times per delivery: built once
    def key(self) -> DeliveryKey:
        return DeliveryKey(self.event.campaign_id, self.event.recipient.subscriber_id)


@dataclass(frozen=True)
class Settlement:
    """What to tell JetStream: ack, or redeliver after `delay` (None: the consumer's backoff)."""

    retry: bool = False
    delay: float | None = None


ACK = Settlement()


OnSettled = Callable[[DeliveryTask, Settlement], Awaitable[None]]


@dataclass
class _Batch:
    """Where one batch stands: its claims, what is settled, and the claims still waiting for a wave."""

    on_settled: OnSettled | None
    claims: dict[DeliveryKey, Claim] = field(default_factory=dict)
    campaigns: dict[str, PreparedCampaign | Unavailable] = field(default_factory=dict)
    claimed_at: float = 0.0
    waiting: set[DeliveryKey] = field(default_factory=set)
    settled: dict[DeliveryKey, Settlement] = field(default_factory=dict)
    # Campaigns told of a delivery-path problem in this batch: once each is enough.
    deferred: set[str] = field(default_factory=set)

    async def settle(self, task: DeliveryTask, settlement: Settlement) -> None:
        self.settled[task.key] = settlement
        await self.tell(task, settlement)

    async def tell(self, task: DeliveryTask, settlement: Settlement) -> None:
        if self.on_settled is not None:
            await self.on_settled(task, settlement)


@dataclass(frozen=True)
class DeliveryPolicy:
    public_url: str
    secret_key: bytes
    # The lease of a claim not yet on the wire: a dead replica's claims are sent by another after it.
    lease_seconds: float
    # The lease of a claim on the wire: one SMTP transaction, and time to record its outcome.
    sending_lease_seconds: float
    # SMTP connections of this replica, shared by the lanes (`lane_sizes`).
    pool_size: int = 2
    # How long outcomes of mail already sent wait for a database that is down before giving up.
    record_patience_seconds: float = 120.0
    # Delays between deliveries after a 4xx or a delivery-path problem; its max_deliveries is the
    # consumer's max_deliver, so the last delivery it allows is the one that gives up.
    retry_schedule: RetrySchedule = DEFAULT_RETRY_SCHEDULE

    @property
    def lane_sizes(self) -> tuple[int, ...]:
        """Each lane's wave: the pool split between the lanes, every connection in one of them (a
        pool of 25 is waves of 13 and 12, not two of 12; a pool of 1 is one lane), so at most a pool's
        worth is ever `sending`."""
        share, rest = divmod(self.pool_size, LANES)
        return tuple(share + 1 if lane < rest else share for lane in range(LANES) if share or lane < rest)


class DeliveryService:
    def __init__(
        self,
        unit_of_work: Callable[[], MailerUnitOfWork],
        campaigns: CampaignCache,
        sender: Sender,
        policy: DeliveryPolicy,
        control: CampaignControl,
        clock: Callable[[], float] = time.monotonic,
        admit: Callable[[list[OutgoingMail]], Awaitable[None]] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        single_statement: Callable[[], MailerUnitOfWork] | None = None,
    ):
        self._unit_of_work = unit_of_work
        # For a wave that is one statement: its own transaction, two round trips fewer.
        self._single_statement = single_statement or unit_of_work
        self._campaigns = campaigns
        self._sender = sender
        self._policy = policy
        self._control = control
        self.holds = HoldService(unit_of_work, control)
        self._clock = clock
        self._sleep = sleep
        # The shared send rate limit (None: unlimited), waited for before a wave is marked `sending`:
        # a claim waiting for its token is not on the wire, so a crash then leaves it to another replica.
        self._admit = admit

    async def deliver(self, tasks: Sequence[DeliveryTask], on_settled: OnSettled | None = None) -> list[Settlement]:
        """Deliver a batch; one settlement per task, in order. `on_settled` hears each settlement as
        soon as it is known (its outcome committed), so a wave's messages are acked while later waves
        are still on the wire."""
        if not tasks:
            return []
        # The same recipient twice in one batch (a duplicate published under another msg id): the
        # first copy stands for both, the others are acked. The claim statement needs distinct keys.
        first_of: dict[DeliveryKey, DeliveryTask] = {}
        for task in tasks:
            first_of.setdefault(task.key, task)
        unique, cancelled = await self._apply_control(list(first_of.values()))
        batch = _Batch(on_settled)
        if unique:
            campaigns = await self._campaigns.prepare_all(t.event.content_key for t in unique)
            claims = await self._claim(unique, campaigns)
            batch.claims, batch.campaigns, batch.claimed_at = claims, campaigns, self._clock()
            to_send: list[DeliveryTask] = []
            unsent: list[tuple[DeliveryTask, Outcome]] = []
            for task in unique:
                claim = claims[task.key]
                if claim.state is ClaimState.CLAIMED and task.key in cancelled:
                    unsent.append((task, CANCELLED))
                elif claim.state is ClaimState.CLAIMED:
                    to_send.append(task)
                elif claim.state is ClaimState.BUSY:
                    await batch.settle(task, Settlement(retry=True, delay=self._busy_delay(claim)))
                else:  # DONE, or ABANDONED (its `unknown` outcome was reported with the claim)
                    await batch.settle(task, ACK)
            batch.waiting = {t.key for t in to_send}
            if unsent:
                await self._commit(batch, unsent, ())
            pending = collections.deque(to_send)
            with smtp_span(len(to_send)):
                async with asyncio.TaskGroup() as lanes:
                    for size in self._policy.lane_sizes[: len(to_send)]:
                        lanes.create_task(self._lane(pending, size, batch))
        for task in tasks:
            if first_of[task.key] is not task:
                await batch.tell(task, ACK)
            elif task.key not in batch.settled:  # held for a paused campaign: the held copy stands for it
                await batch.settle(task, ACK)
        return [batch.settled.get(t.key, ACK) if first_of[t.key] is t else ACK for t in tasks]

    async def _lane(self, pending: collections.deque[DeliveryTask], size: int, batch: _Batch) -> None:
        """Send waves of up to `size` one after the other: each wave's claims move to `sending` in the
        transaction that records the previous wave's outcomes, then go on the wire. Two lanes share the
        SMTP pool, so one sends while the other commits, and at most a pool's worth of claims is ever
        `sending`."""
        previous: list[tuple[DeliveryTask, Outcome]] = []
        while pending:  # shared by the lanes: each takes the next wave in turn
            wave = [pending.popleft() for _ in range(min(size, len(pending)))]
            mails, unbuilt = self._build(wave, batch.campaigns)
            if self._admit is not None and mails:
                await self._admit([mail for _, mail in mails])
            marked = await self._commit(batch, previous + unbuilt, [task for task, _ in mails])
            ready = [(task, mail) for task, mail in mails if task.key in marked]
            for task, _ in mails:
                if task.key not in marked:
                    # Our claim lease ran out and another replica took it over: its copy decides.
                    log.warning("claim of %s was taken over; leaving it to the other replica", task.key)
                    await batch.settle(task, ACK)
            previous = await self._send(ready, start_before=self._clock() + START_SLACK_SECONDS)
        if previous:
            await self._commit(batch, previous, ())
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

        async def claim_batch() -> dict[DeliveryKey, Claim]:
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

        # A batch put back at once would come round again in a second and use up its deliveries while
        # the database is down: they would end `failed` without an attempt. Held here (the consumer
        # keeps it in progress), it goes out once the database is back.
        return await self._patiently("claiming deliveries", claim_batch)

    def _build(
        self, wave: list[DeliveryTask], campaigns: dict[str, PreparedCampaign | Unavailable]
    ) -> tuple[list[tuple[DeliveryTask, OutgoingMail]], list[tuple[DeliveryTask, Outcome]]]:
        """The wave's messages, and the outcomes of those that cannot be built (never sent)."""
        mails: list[tuple[DeliveryTask, OutgoingMail]] = []
        unbuilt: list[tuple[DeliveryTask, Outcome]] = []
        date = format_datetime(utcnow())
        for task in wave:
            campaign = campaigns[task.event.content_key]
            if isinstance(campaign, Unavailable):
                outcome = (
                    unbuildable(campaign.reason)
                    if campaign.permanent
                    else classify(SmtpAttempt(code=None, reply=campaign.reason), self._last_attempt(task))
                )
                unbuilt.append((task, outcome))
                continue
            try:
                data = campaign.build(task.event.campaign_id, task.event.recipient, self._unsubscribe_url(task), date)
            except (RenderError, UnsupportedAddress) as exc:
                unbuilt.append((task, unbuildable(str(exc))))
                continue
            mails.append((task, OutgoingMail(campaign.content.from_email, task.event.recipient.email, data)))
        return mails, unbuilt

    async def _send(
        self, mails: list[tuple[DeliveryTask, OutgoingMail]], start_before: float
    ) -> list[tuple[DeliveryTask, Outcome]]:
        if not mails:
            return []
        attempts = await self._sender.send_all([mail for _, mail in mails], start_before)
        record_replies(attempts)
        return [
            (task, classify(attempt, self._last_attempt(task)))
            for (task, _), attempt in zip(mails, attempts, strict=True)
        ]

    def _last_attempt(self, task: DeliveryTask) -> bool:
        """This delivery is the last the retry schedule allows (or the consumer says it is)."""
        return task.last_attempt or task.attempt >= self._policy.retry_schedule.max_deliveries

    async def _commit(
        self, batch: _Batch, outcomes: list[tuple[DeliveryTask, Outcome]], to_mark: Sequence[DeliveryTask]
    ) -> set[DeliveryKey]:
        """One transaction: record `outcomes` with their result events, and move `to_mark` to
        `sending`; then settle the recorded ones. Returns the keys marked.

        Mail went out for most outcomes: losing them would turn them into `unknown` after the lease,
        so a database that is down gets up to `record_patience_seconds` to come back (the consumer
        keeps the messages from being redelivered meanwhile)."""
        if not outcomes and not to_mark:
            return set()
        rows = [RecordedOutcome(t.key, batch.claims[t.key].attempts, o, self._report(t, o, batch)) for t, o in outcomes]
        marks = [HeldClaim(t.key, batch.claims[t.key].attempts) for t in to_mark]
        deferred: dict[str, DeliveryDeferred] = {}

        async def settle_wave() -> SettledWave:
            nonlocal deferred
            deferred = {}
            batch.waiting.difference_update(t.key for t in to_mark)
            renew = self._clock() - batch.claimed_at > self._policy.lease_seconds / 2 and bool(batch.waiting)
            # A wave is one statement, its own transaction, unless it renews the waiting claims or may
            # tell of a deferral: then a transaction holds those statements together with it. Which
            # campaigns were told is read once: another lane's failed commit may untell one meanwhile.
            told = frozenset(batch.deferred)
            defers = any(_defers(outcome, task.event.campaign_id, told) for task, outcome in outcomes)
            unit_of_work = self._unit_of_work if renew or defers else self._single_statement
            try:
                async with unit_of_work() as uow:
                    settled = await uow.deliveries.settle_wave(rows, marks, self._policy.sending_lease_seconds)
                    deferred = self._emit_deferrals(uow, outcomes, settled.recorded, batch, told)
                    if renew:
                        still_waiting = [HeldClaim(k, batch.claims[k].attempts) for k in batch.waiting]
                        await uow.deliveries.extend_claims(still_waiting, self._policy.lease_seconds)
                        batch.claimed_at = self._clock()
                    await uow.commit()
            except Exception:
                batch.deferred.difference_update(deferred)  # not told after all: the retry tells them
                raise
            return settled

        settled = await self._patiently("recording outcomes", settle_wave)
        recorded, marked = settled.recorded, settled.marked
        for event in deferred.values():
            log.warning("deliveries of campaign %s deferred: %s", event.campaign_id, event.reason)
        record_outcomes((t.event.recipient.email, o) for t, o in outcomes if t.key in recorded)
        for task, outcome in outcomes:
            await batch.settle(task, self._settlement(task, outcome, task.key in recorded))
        return marked

    async def _patiently(self, what: str, transaction: Callable[[], Awaitable[T]]) -> T:
        """Run `transaction`, trying again while the database is away, for up to
        `record_patience_seconds`."""
        deadline = self._clock() + self._policy.record_patience_seconds
        try_number = 0
        while True:
            try_number += 1
            try:
                return await transaction()
            except Exception:
                if self._clock() >= deadline:
                    raise
                log.warning("%s failed (try %d); retrying", what, try_number, exc_info=try_number == 1)
                await self._sleep(min(0.5 * try_number, 5.0))

    @staticmethod
    def _report(task: DeliveryTask, outcome: Outcome, batch: _Batch) -> Report | DeliveredReport | None:
        """The report of an outcome, staged with it if it is recorded; a retry reports nothing."""
        if outcome.status is Status.RETRY:
            return None
        message_id = _message_id(batch.campaigns[task.event.content_key], task.key) or ""
        if outcome.status is Status.SENT:
            return delivered_report(task.event, outcome, message_id)
        return result_event(task.event, outcome, message_id)

    def _emit_deferrals(
        self,
        uow: MailerUnitOfWork,
        outcomes: list[tuple[DeliveryTask, Outcome]],
        recorded: set[DeliveryKey],
        batch: _Batch,
        told: frozenset[str],
    ) -> dict[str, DeliveryDeferred]:
        deferred: dict[str, DeliveryDeferred] = {}
        # `told` as the wave's unit of work was chosen, and any told since by the other lane.
        told = told | batch.deferred
        for task, outcome in outcomes:
            campaign_id = task.event.campaign_id
            if task.key in recorded and _defers(outcome, campaign_id, told) and campaign_id not in deferred:
                deferred[campaign_id] = DeliveryDeferred(
                    account_id=task.event.account_id,
                    campaign_id=campaign_id,
                    reason=outcome.reason,
                    smtp_code=outcome.smtp_code,
                )
        # A delivery-path problem is the campaign's to see, once per campaign and batch (lanes commit
        # concurrently, so it is noted before the commit), never a recipient's failure.
        for event in deferred.values():
            uow.emit(event, subjects.MAIL_RESULT_DEFERRED)
        batch.deferred.update(deferred)
        return deferred

    def _settlement(self, task: DeliveryTask, outcome: Outcome, recorded: bool) -> Settlement:
        if not recorded:
            # Our lease ran out and another replica recorded the row `unknown` meanwhile: that
            # verdict was reported already; nothing more to do with this copy.
            log.warning("outcome of %s lost its claim; keeping the recorded verdict", task.key)
            return ACK
        if outcome.status is Status.RETRY:
            delay = outcome.retry_after
            if delay is None:
                delay = self._policy.retry_schedule.delay(task.attempt)
            return Settlement(retry=True, delay=delay)
        return ACK

    def _unsubscribe_url(self, task: DeliveryTask) -> str:
        target = UnsubscribeTarget(task.event.account_id, task.event.campaign_id, task.event.recipient.subscriber_id)
        return signed_unsubscribe_url(self._policy.public_url, self._policy.secret_key, target)

    def _busy_delay(self, claim: Claim) -> float:
        if claim.lease_remaining is None:
            return self._policy.lease_seconds
        return max(MIN_BUSY_DELAY_SECONDS, claim.lease_remaining + MIN_BUSY_DELAY_SECONDS)


def _defers(outcome: Outcome, campaign_id: str, told: frozenset[str]) -> bool:
    """The outcome tells its campaign of a delivery-path problem, unless the campaign was told already."""
    return outcome.path_problem and outcome.status is Status.RETRY and campaign_id not in told


def _message_id(campaign: PreparedCampaign | Unavailable, key: DeliveryKey) -> str | None:
    if isinstance(campaign, Unavailable):
        return None
    return campaign.message_id(key.campaign_id, key.subscriber_id)


ResultEvent = DeliveryFailed | DeliveryOutcomeUnknown | DeliveryCancelled


def delivered_report(event: DeliverEmail, outcome: Outcome, message_id: str) -> DeliveredReport:
    """A success, reported with the wave's others of its campaign (a DeliveriesSucceeded)."""
    delivery = DeliveredEmail(
        subscriber_id=event.recipient.subscriber_id,
        email=event.recipient.email,
        round=event.round,
        message_id=message_id,
        smtp_reply=outcome.smtp_reply,
    )
    return DeliveredReport(event.account_id, event.campaign_id, delivery)


def result_event(event: DeliverEmail, outcome: Outcome, message_id: str) -> tuple[ResultEvent, str, str]:
    """The event of an outcome other than a success, its subject and its msg id (one result per
    recipient, campaign and round)."""
    if outcome.status is Status.SENT:
        raise ValueError("a success is reported with its wave: delivered_report")
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

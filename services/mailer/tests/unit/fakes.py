"""In-memory stand-ins for the mailer's ports: ledger + unit of work, content store, SMTP pool."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from mailstify_contracts import (
    CampaignContent,
    ControlState,
    DeliveredEmail,
    DeliveriesSucceeded,
    DeliverEmail,
    Event,
    subjects,
)
from mailstify_servicekit.testing import FakeUnitOfWork

from mailstify_messaging.content import StoredContent
from mailer.service_layer.ports import (
    ClaimRequest,
    DeliveredReport,
    GiveUp,
    HeldClaim,
    OutgoingMail,
    RecordedOutcome,
    SettledWave,
)
from mailer.domain.model import Claim, DeliveryKey, SmtpAttempt, Status, claim_state


@dataclass
class Row:
    status: Status
    attempts: int
    lease_until: float | None = None
    smtp_code: int | None = None
    smtp_reply: str | None = None
    round: int = 0


@dataclass
class FakeLedger:
    """Same semantics as the claim / record statements of `adapters.ledger`."""

    now: float = 1000.0
    rows: dict[DeliveryKey, Row] = field(default_factory=dict)
    # Where a recorded outcome's report is staged: the unit of work's outbox (set by the fake UoW).
    stage: Callable[[Event, str, str], None] = lambda *report: None
    # Told of each statement (set by the fake UoW, which allows a single-statement one only one).
    on_statement: Callable[[], None] = lambda: None

    async def claim(self, requests: list[ClaimRequest], lease_seconds: float) -> list[Claim]:
        self.on_statement()
        assert len({r.key for r in requests}) == len(requests), "the claim statement needs distinct keys"
        claims = []
        for request in requests:
            row = self.rows.get(request.key)
            before = None if row is None else (row.status, row.lease_until)
            changed = True
            if row is None:
                row = self.rows[request.key] = Row(Status.CLAIMED, 1, self.now + lease_seconds, round=request.round)
            elif row.round < request.round and row.status in (Status.FAILED, Status.UNKNOWN):
                row.status, row.attempts, row.lease_until = Status.CLAIMED, 1, self.now + lease_seconds
                row.round, row.smtp_code, row.smtp_reply = request.round, None, None
            elif row.status is Status.RETRY or (row.status is Status.CLAIMED and row.lease_until < self.now):
                row.status, row.attempts, row.lease_until = Status.CLAIMED, row.attempts + 1, self.now + lease_seconds
            elif row.status is Status.SENDING and row.lease_until < self.now:
                row.status, row.lease_until = Status.UNKNOWN, None
            else:
                changed = False
            remaining = before[1] - self.now if before and before[1] is not None else None
            claims.append(
                Claim(request.key, claim_state(row.status if changed else before[0], changed), row.attempts, remaining)
            )
        return claims

    def _held(self, claim: HeldClaim) -> Row | None:
        row = self.rows.get(claim.key)
        return row if row is not None and row.status is Status.CLAIMED and row.attempts == claim.attempts else None

    async def extend_claims(self, claims: list[HeldClaim], lease_seconds: float) -> None:
        self.on_statement()
        for claim in claims:
            if (row := self._held(claim)) is not None:
                row.lease_until = self.now + lease_seconds

    async def settle_wave(
        self, outcomes: list[RecordedOutcome], to_mark: list[HeldClaim], lease_seconds: float
    ) -> SettledWave:
        self.on_statement()
        settled = SettledWave(set(), set())
        delivered: dict[tuple[str, str], list[DeliveredEmail]] = {}
        for item in outcomes:
            row = self.rows[item.key]
            if row.status in (Status.CLAIMED, Status.SENDING) and row.attempts == item.attempts:
                row.status, row.lease_until = item.outcome.status, None
                row.smtp_code, row.smtp_reply = item.outcome.smtp_code, item.outcome.smtp_reply
                settled.recorded.add(item.key)
                if isinstance(item.report, DeliveredReport):
                    delivered.setdefault((item.report.account_id, item.report.campaign_id), []).append(
                        item.report.delivery
                    )
                elif item.report is not None:
                    self.stage(*item.report)
        # As the statement does: the recorded successes of each campaign, together.
        for (account_id, campaign_id), deliveries in delivered.items():
            event = DeliveriesSucceeded(account_id=account_id, campaign_id=campaign_id, deliveries=tuple(deliveries))
            self.stage(event, subjects.MAIL_RESULT_SUCCEEDED_MANY, str(event.event_id))
        for claim in to_mark:
            if (row := self._held(claim)) is not None:
                row.status, row.lease_until = Status.SENDING, self.now + lease_seconds
                settled.marked.add(claim.key)
        return settled

    async def give_up(self, request: GiveUp) -> Status | None:
        self.on_statement()
        row = self.rows.get(request.key)
        if row is None:
            self.rows[request.key] = Row(Status.FAILED, 0, smtp_reply=request.reason)
            return Status.FAILED
        if row.status is Status.RETRY or (row.status is Status.CLAIMED and row.lease_until < self.now):
            row.status, row.smtp_reply, row.lease_until = Status.FAILED, request.reason, None
            return Status.FAILED
        if row.status is Status.SENDING and row.lease_until < self.now:
            row.status, row.lease_until = Status.UNKNOWN, None
            return Status.UNKNOWN
        return None


@dataclass
class FakeHeld:
    """Held deliveries by (campaign, subscriber, round), as `adapters.holds` keeps them."""

    rows: dict[tuple[str, str, int], bytes] = field(default_factory=dict)

    async def hold(self, deliveries: list[DeliverEmail]) -> None:
        for d in deliveries:
            self.rows.setdefault((d.campaign_id, d.recipient.subscriber_id, d.round), d.to_json())

    async def held_campaigns(self) -> list[str]:
        return sorted({campaign_id for campaign_id, _, _ in self.rows})

    async def release(self, campaign_id: str, limit: int) -> list[bytes]:
        keys = [k for k in self.rows if k[0] == campaign_id][:limit]
        return [self.rows.pop(k) for k in keys]


@dataclass
class FakeControl:
    states: dict[str, ControlState] = field(default_factory=dict)

    async def state(self, campaign_id: str) -> ControlState:
        return self.states.get(campaign_id, "active")


class FakeMailerUnitOfWork(FakeUnitOfWork):
    """Writes straight to the ledger: the service never leaves a block without committing."""

    def __init__(self, ledger: FakeLedger, held: FakeHeld | None = None):
        super().__init__()
        # The ledger's statements stage their own reports, as the SQL does with `OutboxArrays`.
        ledger.stage = functools.partial(FakeUnitOfWork.emit, self)
        ledger.on_statement = self._statement
        self.deliveries = ledger
        self.held = held or FakeHeld()
        self.single_statement = False
        self.single_statement_opened = 0
        self._statements = 0

    def opened_as(self, single_statement: bool) -> Self:
        """This unit of work, as the transaction or as the single-statement one (one statement, no
        `emit`: what SingleStatementUnitOfWork allows)."""
        self.single_statement, self._statements = single_statement, 0
        self.single_statement_opened += single_statement
        return self

    def _statement(self) -> None:
        self._statements += 1
        if self.single_statement and self._statements > 1:
            raise TypeError("a second statement in a single-statement unit of work would commit apart")

    def emit(self, event: Event, subject: str, msg_id: str | None = None) -> None:
        if self.single_statement:
            raise TypeError("a single-statement unit of work cannot stage events apart from its statement")
        super().emit(event, subject, msg_id)


@dataclass
class FakeContentStore:
    contents: dict[str, CampaignContent] = field(default_factory=dict)
    reads: int = 0

    async def get(self, key: str) -> StoredContent | None:
        self.reads += 1
        content = self.contents.get(key)
        return StoredContent(content, 1) if content else None


@dataclass
class FakeSender:
    """Replies per recipient from a script (default 250); records what went over the wire."""

    replies: dict[str, list[SmtpAttempt]] = field(default_factory=dict)
    sent: list[OutgoingMail] = field(default_factory=list)
    out_of_time: bool = False

    # Called with the mails of each send_all before they "go out" (to look at the ledger then).
    on_send: Callable[[list[OutgoingMail]], None] | None = None

    async def send_all(self, mails: list[OutgoingMail], start_before: float) -> list[SmtpAttempt]:
        if self.on_send is not None:
            self.on_send(mails)
        await asyncio.sleep(0)  # the other lane runs meanwhile, as it would while mail is on the wire
        attempts = []
        for mail in mails:
            if self.out_of_time:
                attempts.append(SmtpAttempt.not_attempted())
                continue
            script = self.replies.get(mail.rcpt_to)
            attempt = script.pop(0) if script else SmtpAttempt(250, "2.0.0 Ok")
            if attempt.code == 250:
                self.sent.append(mail)
            attempts.append(attempt)
        return attempts

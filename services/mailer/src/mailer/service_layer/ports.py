"""What the mailer's use cases need from the outside world, and the data that crosses: the delivery
ledger (PostgreSQL), the SMTP sender (a connection pool) and the campaign content (JetStream KV),
all implemented in `adapters/`; in-memory fakes in the unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mailstify_contracts import CampaignContent, ControlState, DeliveredEmail, DeliverEmail, Event
from mailstify_servicekit.ports import AbstractUnitOfWork

from ..domain.model import Claim, DeliveryKey, Outcome, SmtpAttempt, Status


@dataclass(frozen=True)
class ClaimRequest:
    key: DeliveryKey
    account_id: str
    email: str
    # None while the campaign's content is unavailable (the sender domain is part of the id).
    message_id: str | None
    # The delivery round (retry-failed rounds re-claim a recipient their earlier round failed).
    round: int = 0


@dataclass(frozen=True)
class HeldClaim:
    """A claim this replica holds: the key, and the attempt counter that fences it."""

    key: DeliveryKey
    attempts: int


# A result event to stage in the outbox: (event, subject, msg id).
Report = tuple[Event, str, str]


@dataclass(frozen=True)
class DeliveredReport:
    """A success to report: a wave's recorded successes of one campaign go out as one
    DeliveriesSucceeded (decision 0027), which only the statement that records them can assemble."""

    account_id: str
    campaign_id: str
    delivery: DeliveredEmail


@dataclass(frozen=True)
class RecordedOutcome:
    key: DeliveryKey
    # The attempt counter our claim set: the update applies only while the row is still that claim.
    attempts: int
    outcome: Outcome
    # Staged in the outbox in the same statement, if (and only if) the outcome is recorded.
    report: Report | DeliveredReport | None = None


@dataclass(frozen=True)
class SettledWave:
    """The keys a wave's statement recorded, and those it moved to `sending` (still held by our claim)."""

    recorded: set[DeliveryKey]
    marked: set[DeliveryKey]


@dataclass(frozen=True)
class GiveUp:
    """A delivery whose message JetStream stopped delivering (max_deliver reached)."""

    key: DeliveryKey
    account_id: str
    email: str
    reason: str


class DeliveryLedger(Protocol):
    """One row per (campaign, subscriber): the mailer's memory of what it sent (ARCHITECTURE §6.3)."""

    async def claim(self, requests: Sequence[ClaimRequest], lease_seconds: float) -> list[Claim]:
        """Claim each (distinct) key of a batch in one statement; one Claim per request, any order."""
        ...

    async def extend_claims(self, claims: Sequence[HeldClaim], lease_seconds: float) -> None:
        """Renew the lease of claims still waiting for their turn."""
        ...

    async def settle_wave(
        self, outcomes: Sequence[RecordedOutcome], to_mark: Sequence[HeldClaim], lease_seconds: float
    ) -> SettledWave:
        """In one statement: write the outcomes, staging the report of each one actually written
        (still held by our claim) in the outbox — the successes written of each campaign in one
        DeliveriesSucceeded — and move `to_mark` to `sending`, durably, before they go on the wire."""
        ...

    async def give_up(self, request: GiveUp) -> Status | None:
        """Settle an exhausted delivery; the status written (FAILED or UNKNOWN), or None when the row
        was terminal or is held by a live lease and so was left alone."""
        ...


class HeldDeliveries(Protocol):
    """Deliveries of paused campaigns, kept in the mailer's database until the campaign moves on."""

    async def hold(self, deliveries: Sequence[DeliverEmail]) -> None: ...

    async def held_campaigns(self) -> list[str]: ...

    async def release(self, campaign_id: str, limit: int) -> list[bytes]:
        """Take up to `limit` held deliveries of the campaign out (their DeliverEmail messages)."""
        ...


class MailerUnitOfWork(AbstractUnitOfWork, Protocol):
    deliveries: DeliveryLedger
    held: HeldDeliveries


class CampaignControl(Protocol):
    """Whether a campaign's recipients may be sent to now (the CAMPAIGN_CONTROL bucket, watched)."""

    async def state(self, campaign_id: str) -> ControlState: ...


@dataclass(frozen=True)
class OutgoingMail:
    mail_from: str
    rcpt_to: str
    # The message with CRLF line endings only, as `mailstify_rendering` builds it: sent as it is.
    data: bytes


class Sender(Protocol):
    async def send_all(self, mails: list[OutgoingMail], start_before: float) -> list[SmtpAttempt]:
        """One attempt per mail, in order; a mail not handed to a connection before `start_before`
        (time.monotonic), or after `stop_starting()`, is not attempted."""
        ...


class VersionedContent(Protocol):
    @property
    def content(self) -> CampaignContent: ...

    @property
    def revision(self) -> int: ...


class ContentSource(Protocol):
    async def get(self, key: str) -> VersionedContent | None:
        """The content under `key`, None when absent. Raises on transport errors."""
        ...


class SendRateLimiter(Protocol):
    """The send rate limit shared by every mailer replica (MAILSTIFY_RATE_LIMIT*): overall and per
    recipient domain, slowed for a domain whose server answers with a throttling reply."""

    async def acquire(self, domain: str, count: int = 1) -> None:
        """Wait until `count` emails to `domain` may go on the wire now."""
        ...

    async def throttled(self, domain: str, reply: str) -> None:
        """The server asked us to slow down for `domain` (421, a 4.7.x or a rate hint): every replica
        sends to it more slowly for a while."""
        ...

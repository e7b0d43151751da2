"""What the service layer needs from the outside world, as protocols: the SQL adapters implement them
in production, in-memory fakes in the unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mailstify_contracts import Recipient
from mailstify_rendering import DEFAULT_HEADER_OPTIONS, HeaderOptions
from mailstify_servicekit.ports import AbstractUnitOfWork

from ..domain.model import Campaign, Outcome, OutcomeKind, RecordedOutcome
from ..domain.timeline import DeferralTally, Milestone


@dataclass(frozen=True)
class DeliveryRecord:
    subscriber_id: str
    email: str
    status: str
    detail: str
    recorded_at: datetime
    round: int = 0


@dataclass(frozen=True)
class ListInfo:
    id: str
    subscriber_count: int


class CampaignRepository(Protocol):
    async def add(self, campaign: Campaign) -> None: ...

    async def get(self, account_id: str, campaign_id: str, *, for_update: bool = False) -> Campaign | None: ...

    async def lock_many(self, campaign_ids: Sequence[str]) -> dict[str, Campaign]: ...

    async def lock_due(self, now: datetime, limit: int) -> list[Campaign]:
        """Scheduled campaigns whose time has come, locked, skipping those another worker holds."""
        ...

    async def save(self, campaign: Campaign) -> None: ...

    async def delete(self, campaign_id: str) -> None: ...

    async def list_newest_first(
        self, account_id: str, limit: int, before: tuple[datetime, str] | None
    ) -> list[Campaign]: ...


class ResultLedger(Protocol):
    async def record(self, outcomes: Sequence[Outcome], now: datetime) -> list[RecordedOutcome]: ...

    async def subscribers_with(
        self, campaign_id: str, outcomes: Sequence[OutcomeKind], limit: int, after: str | None
    ) -> list[str]: ...

    async def take_back(
        self, campaign_id: str, subscriber_ids: Sequence[str], outcomes: Sequence[OutcomeKind]
    ) -> list[tuple[str, OutcomeKind]]: ...

    async def page(
        self,
        campaign_id: str,
        outcome: str | None,
        limit: int,
        after: tuple[datetime, str] | None,
        search: str | None = None,
    ) -> list[DeliveryRecord]: ...


class UnsubscribeLedger(Protocol):
    async def record(self, unsubscribes: Sequence[tuple[str, str]], now: datetime) -> list[str]:
        """Insert (campaign_id, subscriber_id) pairs not seen before; the campaign id of each row inserted."""
        ...


class TimelineLog(Protocol):
    async def add(self, milestones: Sequence[Milestone]) -> None:
        """Append milestones; the store notes the trace current at the call with each."""
        ...

    async def count_deferrals(self, deferrals: Sequence[tuple[str, str, int]], now: datetime) -> None:
        """(campaign_id, reason, how many) delivery-path problems reported now."""
        ...

    async def milestones(self, campaign_id: str) -> list[Milestone]: ...

    async def deferrals(self, campaign_id: str) -> list[DeferralTally]: ...


class CampaignUnitOfWork(AbstractUnitOfWork, Protocol):
    campaigns: CampaignRepository
    results: ResultLedger
    unsubscribes: UnsubscribeLedger
    timeline: TimelineLog


class ListDirectory(Protocol):
    """The audience service's view of a list; None when the account has no such list."""

    async def find_list(self, account_id: str, list_id: str) -> ListInfo | None: ...


class RecipientDirectory(Protocol):
    """One subscriber's merge fields from the audience service, as the fan-out would snapshot them;
    None when the subscriber is not on that list of the account."""

    async def find_recipient(self, account_id: str, list_id: str, subscriber_id: str) -> Recipient | None: ...


@dataclass(frozen=True)
class MessageSettings:
    """What the mailer builds messages with, so previews match: the unsubscribe links' base and key
    (MAILSTIFY_PUBLIC_URL, MAILSTIFY_SECRET_KEY) and the operator's message headers."""

    public_url: str
    secret_key: bytes
    headers: HeaderOptions = DEFAULT_HEADER_OPTIONS

"""What the fan-out needs from the outside world, as protocols: NATS/HTTP/SQL adapters in
production, in-memory fakes in the unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mailstify_contracts import CampaignContent, ControlState, DeliverEmail, Recipient
from mailstify_servicekit.ports import AbstractUnitOfWork

from ..domain.fanout import Fanout


class PublishRefused(Exception):
    """The mail queue did not accept (all of) a batch: full (back-pressure), or NATS is unreachable.
    Nothing is known about which messages made it; republishing the batch is safe (msg ids).
    `MailBacklog.size` raises it too when NATS cannot tell the backlog: a publish would fail as well."""


@dataclass(frozen=True)
class RecipientPage:
    items: list[Recipient]
    # The snapshot bound the audience service pinned (None for an empty list).
    up_to: str | None
    # Keyset position for the next page; None on the last page.
    next_after: str | None


class RecipientSource(Protocol):
    async def page(
        self, account_id: str, list_id: str, *, after: str | None, up_to: str | None, limit: int
    ) -> RecipientPage | None:
        """A page of subscribed recipients in ascending id order; None when the list no longer exists.
        Raises a `ServiceError` (e.g. `UpstreamUnavailable`) when the audience service cannot answer."""
        ...


class DeliveryPublisher(Protocol):
    async def publish(self, deliveries: Sequence[DeliverEmail]) -> None:
        """Return once the mail queue has acknowledged every message; raise PublishRefused otherwise."""
        ...


class MailBacklog(Protocol):
    async def size(self) -> int:
        """Messages in the mail queue that no mailer has settled yet, every campaign's (a work queue
        drops a message once acked). Raises PublishRefused when the queue cannot be asked."""
        ...


class ContentStore(Protocol):
    async def put(self, key: str, content: CampaignContent) -> None: ...


class CampaignControl(Protocol):
    async def state(self, campaign_id: str) -> ControlState:
        """The campaign's control state as the campaign service last wrote it (active when never written)."""
        ...


class FanoutRepository(Protocol):
    async def get_or_create(self, fanout: Fanout) -> Fanout:
        """The stored fan-out of this campaign, creating it from `fanout` on first sight."""
        ...

    async def save(self, fanout: Fanout) -> bool:
        """Store `fanout` if nobody saved since it was read (its version); bump the version. False if somebody did."""
        ...


class FanoutUnitOfWork(AbstractUnitOfWork, Protocol):
    fanouts: FanoutRepository

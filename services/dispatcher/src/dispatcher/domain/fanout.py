"""A fan-out's progress: which recipients of the pinned list snapshot have been handed to the mail
queue, and how many. The count advances only at a checkpoint, after the queue acknowledged the page,
so the total reported at the end is exactly the number of recipients fanned out to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailstify_contracts import FanoutCompleted


@dataclass
class Fanout:
    campaign_id: str
    account_id: str
    list_id: str
    created_at: datetime
    # The list's highest subscriber id when the fan-out began: later subscribers are not included.
    up_to: str | None = None
    # Keyset checkpoint: every recipient up to this id has been published.
    last_subscriber_id: str | None = None
    published: int = 0
    completed_at: datetime | None = None
    # Optimistic-concurrency token: bumped by every saved step, so two workers on one fan-out
    # (a redelivery while the first still runs) cannot both advance it.
    version: int = 0

    @property
    def completed(self) -> bool:
        return self.completed_at is not None

    def pin(self, up_to: str | None) -> None:
        self.up_to = up_to

    def advance(self, checkpoint: str | None, count: int) -> None:
        """A page of `count` recipients, ending at `checkpoint`, was accepted by the mail queue."""
        if self.completed:
            raise ValueError(f"fan-out of campaign {self.campaign_id} is already complete")
        if checkpoint is not None:
            self.last_subscriber_id = checkpoint
        self.published += count

    def complete(self, now: datetime) -> FanoutCompleted:
        self.completed_at = now
        return FanoutCompleted(account_id=self.account_id, campaign_id=self.campaign_id, total=self.published)

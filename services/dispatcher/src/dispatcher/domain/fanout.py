"""A fan-out's progress: which recipients of the pinned list snapshot have been handed to the mail
queue, and how many. The count advances only at a checkpoint, after the queue acknowledged the page,
so the total reported at the end is exactly the number of recipients fanned out to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailstify_contracts import FanoutCompleted, FanoutFailed


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
    # Set when the fan-out gave up (decision 0007): it ended, with `published` recipients queued.
    failed_at: datetime | None = None
    failure_reason: str | None = None
    # Optimistic-concurrency token: bumped by every saved step, so two workers on one fan-out
    # (a redelivery while the first still runs) cannot both advance it.
    version: int = 0

    @property
    def completed(self) -> bool:
        return self.completed_at is not None

    @property
    def failed(self) -> bool:
        return self.failed_at is not None

    @property
    def ended(self) -> bool:
        """Completed or failed: either way nothing more is published, and a redelivery does nothing."""
        return self.completed or self.failed

    def pin(self, up_to: str | None) -> None:
        self.up_to = up_to

    def advance(self, checkpoint: str | None, count: int) -> None:
        """A page of `count` recipients, ending at `checkpoint`, was accepted by the mail queue."""
        if self.ended:
            raise ValueError(f"fan-out of campaign {self.campaign_id} has already ended")
        if checkpoint is not None:
            self.last_subscriber_id = checkpoint
        self.published += count

    def complete(self, now: datetime) -> FanoutCompleted:
        if self.failed:
            raise ValueError(f"fan-out of campaign {self.campaign_id} has already failed")
        self.completed_at = now
        return FanoutCompleted(account_id=self.account_id, campaign_id=self.campaign_id, total=self.published)

    def fail(self, reason: str, now: datetime) -> FanoutFailed | None:
        """Give up: the recipients published so far still go out; None if the fan-out had already ended
        (the first end wins)."""
        if self.ended:
            return None
        self.failed_at = now
        self.failure_reason = reason
        return FanoutFailed(
            account_id=self.account_id, campaign_id=self.campaign_id, published=self.published, reason=reason
        )

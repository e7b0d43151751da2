"""A fan-out's progress: which recipients of the pinned list snapshot have been handed to the mail
queue, and how many.

Each page goes through two saved steps: `record` (the page's recipients, as snapshots, are stored
before any of them is published) and `checkpoint` (the queue acknowledged all of them: the count
advances). A page recorded but not checkpointed — the process died while publishing it — is
republished as recorded on resume, not fetched again: the list may have changed meanwhile, and the
total must be exactly the set of recipients published."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailstify_contracts import FanoutCompleted, FanoutFailed, Recipient


@dataclass(frozen=True)
class PendingPage:
    """A page recorded for publishing and not yet acknowledged by the mail queue in full."""

    recipients: tuple[Recipient, ...]
    # The audience cursor after this page; None when it is the list's last page.
    next_after: str | None

    @property
    def last(self) -> bool:
        return self.next_after is None

    @property
    def checkpoint(self) -> str | None:
        """Where the next page starts: every recipient up to this id is then published."""
        if self.next_after is not None:
            return self.next_after
        return self.recipients[-1].subscriber_id if self.recipients else None


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
    # The page being published: recorded before its first message, cleared by its checkpoint.
    pending: PendingPage | None = None

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

    def record(self, recipients: list[Recipient], next_after: str | None) -> PendingPage:
        """The next page, to be stored before any of it is published."""
        if self.ended:
            raise ValueError(f"fan-out of campaign {self.campaign_id} has already ended")
        if self.pending is not None:
            raise ValueError(f"fan-out of campaign {self.campaign_id} has a page still to publish")
        self.pending = PendingPage(tuple(recipients), next_after)
        return self.pending

    def checkpoint(self) -> PendingPage:
        """The mail queue acknowledged every message of the pending page: count it, move past it."""
        page = self.pending
        if page is None:
            raise ValueError(f"fan-out of campaign {self.campaign_id} has no page to checkpoint")
        if self.ended:
            raise ValueError(f"fan-out of campaign {self.campaign_id} has already ended")
        if page.checkpoint is not None:
            self.last_subscriber_id = page.checkpoint
        self.published += len(page.recipients)
        self.pending = None
        return page

    def complete(self, now: datetime) -> FanoutCompleted:
        """The end: the last page is checkpointed, or the campaign was cancelled between pages. The
        total is the recipients published, exactly."""
        if self.failed:
            raise ValueError(f"fan-out of campaign {self.campaign_id} has already failed")
        if self.pending is not None:
            raise ValueError(f"fan-out of campaign {self.campaign_id} has a page still to publish")
        self.completed_at = now
        return FanoutCompleted(account_id=self.account_id, campaign_id=self.campaign_id, total=self.published)

    def fail(self, reason: str, now: datetime) -> FanoutFailed | None:
        """Give up: the recipients published so far still go out; None if the fan-out had already ended
        (the first end wins). A pending page is left as it is: part of it may have been queued, and
        `published` counts only the pages the queue acknowledged in full."""
        if self.ended:
            return None
        self.failed_at = now
        self.failure_reason = reason
        return FanoutFailed(
            account_id=self.account_id, campaign_id=self.campaign_id, published=self.published, reason=reason
        )

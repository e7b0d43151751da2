"""A campaign and the rules of its life: what may be edited, when it may be sent, how delivery
outcomes add up, and when it counts as sent (ARCHITECTURE.md §3, §6.5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from mailstify_contracts import CampaignContent, CampaignStatus, CampaignStatusChanged
from mailstify_rendering import body_is_empty
from mailstify_servicekit.errors import Conflict, InvalidInput

# `failed` too: a fan-out that could not proceed leaves nothing to wait for (decision 0007).
DELETABLE: frozenset[CampaignStatus] = frozenset({"draft", "sent", "cancelled", "failed"})

# What a send attempt hears for each status it cannot leave by sending.
_ALREADY = {
    "scheduled": "campaign is already scheduled",
    "sending": "campaign is already sending",
    "paused": "campaign is already sending (paused)",
    "sent": "campaign was already sent",
    "cancelled": "campaign was cancelled",
    "failed": "campaign failed; duplicate it to send again",
}

# Outcomes of test sends are reported by the mailer like any other; their subscriber ids carry this
# prefix so they never reach the result ledger or the counts.
TEST_SUBSCRIBER_PREFIX = "test:"


@dataclass
class Campaign:
    id: str
    account_id: str
    name: str
    subject: str
    list_id: str
    from_name: str
    from_email: str
    body_html: str
    created_at: datetime
    updated_at: datetime
    reply_to: str | None = None
    body_text: str | None = None
    status: CampaignStatus = "draft"
    total: int | None = None
    sent_count: int = 0
    failed_count: int = 0
    unknown_count: int = 0
    # Recipients who followed this campaign's unsubscribe link, each counted once.
    unsubscribe_count: int = 0
    # Why the campaign is not progressing as it should, in words for its owner: a delivery-path
    # problem being retried, or why the fan-out failed. Kept after the campaign ends (decision 0007).
    last_error: str | None = None
    send_requested_at: datetime | None = None
    sent_at: datetime | None = None

    def ensure_editable(self) -> None:
        if self.status != "draft":
            raise Conflict(f"only a draft campaign can be edited; this one is {self.status}")

    def ensure_deletable(self) -> None:
        if self.status not in DELETABLE:
            raise Conflict(f"a {self.status} campaign cannot be deleted")

    def ensure_sendable(self) -> None:
        """The guards that need nothing but the campaign itself; the list is checked by the caller."""
        if self.status != "draft":
            raise Conflict(_ALREADY.get(self.status, f"campaign is {self.status}"))
        if body_is_empty(self.body_html):
            raise InvalidInput("the campaign body is empty")

    def start_sending(self, now: datetime) -> None:
        self.ensure_sendable()
        self.status = "sending"
        self.total = None
        self.sent_count = 0
        self.failed_count = 0
        self.unknown_count = 0
        self.last_error = None
        self.send_requested_at = now
        self.updated_at = now

    def content(self) -> CampaignContent:
        return CampaignContent(
            subject=self.subject,
            from_name=self.from_name,
            from_email=self.from_email,
            reply_to=self.reply_to,
            body_html=self.body_html,
            body_text=self.body_text,
        )

    def status_changed(self) -> CampaignStatusChanged:
        return CampaignStatusChanged(
            account_id=self.account_id,
            campaign_id=self.id,
            status=self.status,
            total=self.total,
            sent_count=self.sent_count,
            failed_count=self.failed_count,
            unknown_count=self.unknown_count,
            last_error=self.last_error,
        )

    def fanout_completed(self, total: int, now: datetime) -> bool:
        """Record how many recipients were fanned out to; True when anything changed.

        The first report wins: a redelivered FanoutCompleted must not move the finish line."""
        if self.total is not None:
            return False
        self.total = total
        self.updated_at = now
        self._finish_if_complete(now)
        return True

    def fanout_failed(self, published: int, reason: str, now: datetime) -> bool:
        """The fan-out could not proceed: the campaign is `failed`, and its total is what was published,
        so the recipients already queued still go out and are counted. True when anything changed.

        The first end of fan-out wins, as for `fanout_completed`: once a total is known (completed or
        failed), a later or redelivered report changes nothing."""
        if self.total is not None or self.status not in ("sending", "paused"):
            return False
        self.total = published
        self.last_error = reason
        self.updated_at = now
        self.status = "failed"
        return True

    def delivery_deferred(self, reason: str, now: datetime) -> bool:
        """A delivery-path problem is being retried; show it. True when anything changed."""
        if self.status != "sending" or self.last_error == reason:
            return False
        self.last_error = reason
        self.updated_at = now
        return True

    def add_outcomes(self, sent: int, failed: int, now: datetime, unknown: int = 0) -> bool:
        """Count newly recorded outcomes (never duplicates: the ledger filters them); True when anything changed."""
        if not sent and not failed and not unknown:
            return False
        self.sent_count += sent
        self.failed_count += failed
        self.unknown_count += unknown
        self.updated_at = now
        self._finish_if_complete(now)
        return True

    def add_unsubscribes(self, count: int, now: datetime) -> bool:
        """Count newly recorded unsubscribes (the unsubscribe ledger filters repeats); True when anything changed."""
        if count <= 0:
            return False
        self.unsubscribe_count += count
        self.updated_at = now
        return True

    @property
    def outcomes_recorded(self) -> int:
        return self.sent_count + self.failed_count + self.unknown_count

    def _finish_if_complete(self, now: datetime) -> None:
        # `>=` rather than `==`: a recipient re-published across a crash of the dispatcher can add one
        # outcome beyond the total, and a campaign must never stay `sending` for that.
        if self.status == "sending" and self.total is not None and self.outcomes_recorded >= self.total:
            self.status = "sent"
            self.sent_at = now
            # A deferral note says "(retrying)": once every recipient has an outcome it is no longer
            # true, and per-recipient failures are in the deliveries listing (decision 0007).
            self.last_error = None


OutcomeKind = Literal["sent", "failed", "unknown"]


@dataclass(frozen=True)
class Outcome:
    """One delivery outcome as the result ledger stores it."""

    campaign_id: str
    account_id: str
    subscriber_id: str
    email: str
    outcome: OutcomeKind
    detail: str

    @property
    def is_test(self) -> bool:
        return self.subscriber_id.startswith(TEST_SUBSCRIBER_PREFIX)


@dataclass
class Tally:
    sent: int = 0
    failed: int = 0
    unknown: int = 0

    def add(self, outcome: OutcomeKind) -> None:
        if outcome == "sent":
            self.sent += 1
        elif outcome == "unknown":
            self.unknown += 1
        else:
            self.failed += 1


def tally_by_campaign(recorded: list[tuple[str, OutcomeKind]]) -> dict[str, Tally]:
    """(campaign_id, outcome) pairs of newly recorded results → counts per campaign."""
    tallies: dict[str, Tally] = {}
    for campaign_id, outcome in recorded:
        tallies.setdefault(campaign_id, Tally()).add(outcome)
    return tallies

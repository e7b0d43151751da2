"""A campaign and the rules of its life: what may be edited, when it may be sent, how delivery
outcomes add up, and when it counts as sent (ARCHITECTURE.md §3, §6.5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from mailstify_contracts import (
    CampaignContent,
    CampaignControlChanged,
    CampaignStatus,
    CampaignStatusChanged,
    ControlState,
    subjects,
)
from mailstify_rendering import body_is_empty
from mailstify_servicekit.errors import Conflict, InvalidInput

# `failed` too: a fan-out that could not proceed leaves nothing to wait for (decision 0007).
DELETABLE: frozenset[CampaignStatus] = frozenset({"draft", "sent", "cancelled", "failed"})

# The furthest ahead a send may be scheduled.
MAX_SCHEDULE_AHEAD = timedelta(days=365)

# What a send attempt hears for each status it cannot leave by sending.
_ALREADY = {
    "scheduled": "campaign is already scheduled",
    "sending": "campaign is already sending",
    "paused": "campaign is already sending (paused)",
    "sent": "campaign was already sent",
    "cancelled": "campaign was cancelled",
    "failed": "campaign failed; duplicate it to send again",
}

# The status machine (ARCHITECTURE.md §3): the statuses each transition may start from.
PAUSABLE: frozenset[CampaignStatus] = frozenset({"sending"})
RESUMABLE: frozenset[CampaignStatus] = frozenset({"paused"})
CANCELLABLE: frozenset[CampaignStatus] = frozenset({"scheduled", "sending", "paused"})
RETRYABLE: frozenset[CampaignStatus] = frozenset({"sent"})

# Outcomes of test sends are reported by the mailer like any other; their subscriber ids carry the
# contracts' test prefix so they never reach the result ledger or the counts.
TEST_SUBSCRIBER_PREFIX = subjects.TEST_SUBSCRIBER_PREFIX


def _refuse(action: str, status: CampaignStatus) -> Conflict:
    return Conflict(f"cannot {action} a campaign that is {status}")


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
    # Recipients settled without a send because the campaign was cancelled first.
    cancelled_count: int = 0
    # Hard bounces among the failures (the audience service suppresses those addresses).
    bounce_count: int = 0
    # Recipients who followed this campaign's unsubscribe link, each counted once.
    unsubscribe_count: int = 0
    # Why the campaign is not progressing as it should, in words for its owner: a delivery-path
    # problem being retried, or why the fan-out failed. Kept after the campaign ends (decision 0007).
    last_error: str | None = None
    # When a scheduled campaign starts; None unless scheduled.
    send_at: datetime | None = None
    # When sending started (the send request, or the scheduled time being reached).
    send_requested_at: datetime | None = None
    sent_at: datetime | None = None
    # When the last recipient was settled: sent, or cancelled with every recipient accounted for.
    finished_at: datetime | None = None
    # Send rounds requested of the dispatcher: the first send is 0, each resume (and a cancel, which
    # wakes a paused fan-out so it reports its total) one more; each has its own msg id.
    send_round: int = 0
    # Retry-failed rounds so far; the n-th retry re-sends in delivery round n.
    retry_round: int = 0
    # When the dispatcher reported the fan-out complete (the first report).
    fanned_out_at: datetime | None = None
    # When the mailers reported the earliest and the latest outcome of a recipient (any round).
    first_delivery_at: datetime | None = None
    last_delivery_at: datetime | None = None

    # --- content -------------------------------------------------------------------------------

    def ensure_editable(self) -> None:
        if self.status != "draft":
            raise Conflict(
                f"only a draft campaign can be edited; this one is {self.status}"
                + ("; unschedule it first" if self.status == "scheduled" else "; duplicate it to make a new draft")
            )

    def ensure_deletable(self) -> None:
        if self.status not in DELETABLE:
            raise Conflict(f"a {self.status} campaign cannot be deleted; cancel it first")

    def duplicate(self, new_id: str, now: datetime) -> Campaign:
        """A new draft with this campaign's content, whatever this one's status."""
        return Campaign(
            id=new_id,
            account_id=self.account_id,
            name=f"Copy of {self.name}"[:200],
            subject=self.subject,
            list_id=self.list_id,
            from_name=self.from_name,
            from_email=self.from_email,
            reply_to=self.reply_to,
            body_html=self.body_html,
            body_text=self.body_text,
            created_at=now,
            updated_at=now,
        )

    # --- the status machine --------------------------------------------------------------------

    def ensure_sendable(self) -> None:
        """The guards that need nothing but the campaign itself; the list is checked by the caller."""
        if self.status != "draft":
            raise Conflict(_ALREADY.get(self.status, f"campaign is {self.status}"))
        if body_is_empty(self.body_html):
            raise InvalidInput("the campaign body is empty")

    def schedule(self, send_at: datetime, now: datetime) -> None:
        self.ensure_sendable()
        if send_at.tzinfo is None:
            raise InvalidInput("send_at: must include a time zone (e.g. 2027-01-01T09:00:00Z)")
        if send_at <= now:
            raise InvalidInput("send_at: must be in the future")
        if send_at > now + MAX_SCHEDULE_AHEAD:
            raise InvalidInput("send_at: must be within a year from now")
        self.status = "scheduled"
        self.send_at = send_at
        self.updated_at = now

    def unschedule(self, now: datetime) -> None:
        if self.status != "scheduled":
            raise _refuse("unschedule", self.status)
        self.status = "draft"
        self.send_at = None
        self.updated_at = now

    def is_due(self, now: datetime) -> bool:
        return self.status == "scheduled" and self.send_at is not None and self.send_at <= now

    def start_sending(self, now: datetime) -> None:
        """Draft → sending (send now), or scheduled → sending once its time has come."""
        if not self.is_due(now):
            self.ensure_sendable()
        self.status = "sending"
        self.total = None
        self.sent_count = self.failed_count = self.unknown_count = self.cancelled_count = self.bounce_count = 0
        self.last_error = None
        self.send_round = 0
        self.send_requested_at = now
        self.updated_at = now

    def pause(self, now: datetime) -> None:
        if self.status not in PAUSABLE:
            raise _refuse("pause", self.status)
        self.status = "paused"
        self.updated_at = now

    def resume(self, now: datetime) -> None:
        """Paused → sending; the next send round continues the fan-out from its checkpoint. A campaign
        whose every recipient was settled while it was paused is sent at once."""
        if self.status not in RESUMABLE:
            raise _refuse("resume", self.status)
        self.status = "sending"
        self.send_round += 1
        self.updated_at = now
        self._finish_if_complete(now)

    def cancel(self, now: datetime) -> bool:
        """Cancel; True when a fan-out was under way (the dispatcher must be woken to report its total)."""
        if self.status not in CANCELLABLE:
            raise _refuse("cancel", self.status)
        was_started = self.status != "scheduled"
        self.status = "cancelled"
        self.send_at = None
        self.updated_at = now
        if was_started:
            self.send_round += 1
            self._finish_if_complete(now)
        return was_started

    def ensure_retryable(self) -> None:
        if self.status not in RETRYABLE:
            raise _refuse("retry the failed recipients of", self.status)

    def start_retry(self, now: datetime) -> int:
        """Sent → sending again for a retry of its failed recipients; the new delivery round."""
        self.ensure_retryable()
        self.status = "sending"
        self.retry_round += 1
        self.sent_at = self.finished_at = None
        self.updated_at = now
        return self.retry_round

    def requeued(self, failed: int, unknown: int, now: datetime) -> None:
        """`failed` + `unknown` recipients were taken back for a retry round: they count again as they settle."""
        self.failed_count -= failed
        self.unknown_count -= unknown
        self.updated_at = now
        self._finish_if_complete(now)

    @property
    def control_state(self) -> ControlState:
        """What the dispatcher and the mailers are told about this campaign's recipients."""
        if self.status == "paused":
            return "paused"
        if self.status == "cancelled":
            return "cancelled"
        return "active"

    def control_changed(self) -> CampaignControlChanged:
        return CampaignControlChanged(account_id=self.account_id, campaign_id=self.id, state=self.control_state)

    def content(self) -> CampaignContent:
        return CampaignContent(
            subject=self.subject,
            from_name=self.from_name,
            from_email=self.from_email,
            reply_to=self.reply_to,
            body_html=self.body_html,
            body_text=self.body_text,
            list_id=self.list_id,
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
            cancelled_count=self.cancelled_count,
            unsubscribe_count=self.unsubscribe_count,
            last_error=self.last_error,
        )

    # --- what the pipeline reports -------------------------------------------------------------

    def fanout_completed(self, total: int, now: datetime) -> bool:
        """Record how many recipients were fanned out to; True when anything changed.

        The first report wins: a redelivered FanoutCompleted must not move the finish line."""
        if self.total is not None:
            return False
        self.total = total
        self.fanned_out_at = now
        self.updated_at = now
        self._finish_if_complete(now)
        return True

    def fanout_failed(self, published: int, reason: str, now: datetime) -> bool:
        """The fan-out could not proceed: the campaign is `failed`, and its total is what was published,
        so the recipients already queued still go out and are counted. True when anything changed.

        The first end of fan-out wins, as for `fanout_completed`: once a total is known (completed or
        failed), a later or redelivered report changes nothing."""
        if self.total is not None:
            return False
        self.total = published
        self.last_error = reason
        self.updated_at = now
        if self.status in ("sending", "paused"):
            self.status = "failed"
        return True

    def delivery_deferred(self, reason: str, now: datetime) -> bool:
        """A delivery-path problem is being retried; show it. True when anything changed."""
        if self.status != "sending" or self.last_error == reason:
            return False
        self.last_error = reason
        self.updated_at = now
        return True

    def add_outcomes(self, tally: Tally, now: datetime) -> bool:
        """Count newly recorded outcomes (never duplicates: the ledger filters them); True when anything changed."""
        if not tally:
            return False
        self.sent_count += tally.sent
        self.failed_count += tally.failed
        self.unknown_count += tally.unknown
        self.cancelled_count += tally.cancelled
        self.bounce_count += tally.bounced
        self.updated_at = now
        self._finish_if_complete(now)
        return True

    def deliveries_reported(self, first: datetime, last: datetime) -> bool:
        """Outcomes the mailers reported between `first` and `last` (a batch's min and max): widen the
        first/last delivery times. True when they moved."""
        changed = False
        if self.first_delivery_at is None or first < self.first_delivery_at:
            self.first_delivery_at, changed = first, True
        if self.last_delivery_at is None or last > self.last_delivery_at:
            self.last_delivery_at, changed = last, True
        return changed

    def add_unsubscribes(self, count: int, now: datetime) -> bool:
        """Count newly recorded unsubscribes (the unsubscribe ledger filters repeats); True when anything changed."""
        if count <= 0:
            return False
        self.unsubscribe_count += count
        self.updated_at = now
        return True

    @property
    def settled(self) -> int:
        """Recipients with a final outcome: sent, failed, unknown or cancelled."""
        return self.sent_count + self.failed_count + self.unknown_count + self.cancelled_count

    @property
    def started_at(self) -> datetime | None:
        return self.send_requested_at

    @property
    def send_rate(self) -> float | None:
        """Recipients settled per second since sending started (until it finished)."""
        if self.send_requested_at is None or not self.settled:
            return None
        end = self.finished_at or self.updated_at
        seconds = (end - self.send_requested_at).total_seconds()
        return round(self.settled / seconds, 1) if seconds > 0 else None

    def _finish_if_complete(self, now: datetime) -> None:
        # `==`: the dispatcher's total is exactly the recipients it published (it records each page
        # before publishing it and republishes that same page on resume), and the ledger counts each
        # recipient once, so the settled count reaches the total exactly (decision 0005).
        if self.total is None or self.settled != self.total:
            return
        if self.status == "sending":
            self.status = "sent"
            self.sent_at = now
            # A deferral note says "(retrying)": once every recipient has an outcome it is no longer
            # true, and per-recipient failures are in the deliveries listing (decision 0007).
            self.last_error = None
        if self.status in ("sent", "cancelled") and self.finished_at is None:
            self.finished_at = now


OutcomeKind = Literal["sent", "failed", "unknown", "cancelled"]


@dataclass(frozen=True)
class Outcome:
    """One delivery outcome as the result ledger stores it."""

    campaign_id: str
    account_id: str
    subscriber_id: str
    email: str
    outcome: OutcomeKind
    detail: str
    # The delivery round it settles (0: the send; n: the n-th retry of failed recipients).
    round: int = 0
    hard_bounce: bool = False
    # When the mailer reported it (the event's occurred_at); feeds the first/last delivery times.
    reported_at: datetime | None = None

    @property
    def is_test(self) -> bool:
        return subjects.is_test_recipient(self.subscriber_id)


@dataclass(frozen=True)
class RecordedOutcome:
    """An outcome the result ledger took (new, or settling a recipient taken back for a retry)."""

    campaign_id: str
    outcome: OutcomeKind
    hard_bounce: bool = False


@dataclass
class Tally:
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0
    bounced: int = 0

    def __bool__(self) -> bool:
        return bool(self.sent or self.failed or self.unknown or self.cancelled)

    def add(self, recorded: RecordedOutcome) -> None:
        if recorded.outcome == "sent":
            self.sent += 1
        elif recorded.outcome == "unknown":
            self.unknown += 1
        elif recorded.outcome == "cancelled":
            self.cancelled += 1
        else:
            self.failed += 1
            self.bounced += recorded.hard_bounce


def tally_by_campaign(recorded: list[RecordedOutcome]) -> dict[str, Tally]:
    """Newly recorded results → counts per campaign."""
    tallies: dict[str, Tally] = {}
    for outcome in recorded:
        tallies.setdefault(outcome.campaign_id, Tally()).add(outcome)
    return tallies

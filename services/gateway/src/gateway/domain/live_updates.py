"""What the gateway's event streams carry, and the rule that keeps them to a few updates per second.

A campaign update is a full snapshot of the campaign's status and counts, whether it was built from
a `CampaignStatusChanged` event or from the campaign service's answer on connect: the same fields,
so a client treats the first message of a stream and every later one alike. A list update says
that something changed on a list (the latest change wins within the coalescing window): a page
showing the list re-reads what it shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from mailstify_contracts import CampaignStatusChanged, SubscriberChanged

Topic = Literal["campaign", "list"]

# The campaign resource's fields a stream repeats (names as in the public API).
CAMPAIGN_PROGRESS_FIELDS = (
    "status",
    "total",
    "sent_count",
    "failed_count",
    "unknown_count",
    "cancelled_count",
    "unsubscribe_count",
    "last_error",
)
LIST_CHANGE_FIELDS = ("change", "subscriber_id", "email", "status", "import_id", "imported", "updated")


@dataclass(frozen=True)
class LiveUpdate:
    """One message for the streams of `account_id`: the SSE event name is `topic`, the JSON data
    is `data`; `subject_id` is the campaign's or the list's id."""

    topic: Topic
    account_id: str
    subject_id: str
    data: Mapping[str, Any]

    @property
    def key(self) -> tuple[Topic, str]:
        """What coalescing keeps one latest update for."""
        return self.topic, self.subject_id


def campaign_progress(event: CampaignStatusChanged) -> LiveUpdate:
    data = {"id": event.campaign_id, **{name: getattr(event, name) for name in CAMPAIGN_PROGRESS_FIELDS}}
    return LiveUpdate("campaign", event.account_id, event.campaign_id, data)


def campaign_progress_of_resource(account_id: str, campaign: Mapping[str, Any]) -> LiveUpdate:
    """The same snapshot from the campaign service's JSON for the campaign (`GET /campaigns/{id}`)."""
    campaign_id = str(campaign["id"])
    data = {"id": campaign_id, **{name: campaign.get(name) for name in CAMPAIGN_PROGRESS_FIELDS}}
    return LiveUpdate("campaign", account_id, campaign_id, data)


def list_change(event: SubscriberChanged) -> LiveUpdate:
    data = {"id": event.list_id, **{name: getattr(event, name) for name in LIST_CHANGE_FIELDS}}
    return LiveUpdate("list", event.account_id, event.list_id, data)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def supersedes(newer: LiveUpdate, older: LiveUpdate) -> bool:
    """Whether `newer` makes a waiting `older` update of the same campaign or list redundant: a
    newer snapshot in the same status does; a status change (sending → sent) is a moment a page
    shows, so it is never swallowed by what follows it."""
    return newer.topic != "campaign" or newer.data.get("status") == older.data.get("status")


class Coalescer(Generic[K, V]):
    """At most one delivery per key every `min_interval` seconds, and nothing lost for good: a
    value offered too soon after the key's last delivery waits, replaced by a newer value for that
    key when `supersedes(newer, waiting)` (else the newer one queues behind it), and falls due when
    the interval has passed. The caller passes the time (monotonic seconds) and asks again at
    `next_due_at()`.
    """

    def __init__(self, min_interval: float, supersedes: Callable[[V, V], bool] = lambda newer, older: True):
        self._min_interval = min_interval
        self._supersedes = supersedes
        self._pending: dict[K, list[V]] = {}
        self._last_taken: dict[K, float] = {}

    def offer(self, key: K, value: V) -> None:
        waiting = self._pending.pop(key, [])  # re-inserted last: keys fall due in the order they changed
        if waiting and self._supersedes(value, waiting[-1]):
            waiting[-1] = value
        else:
            waiting.append(value)
        self._pending[key] = waiting

    def take_due(self, now: float) -> list[V]:
        due = [key for key in self._pending if now - self._last_taken.get(key, -math.inf) >= self._min_interval]
        # Keys whose interval passed no longer hold anything back; forgetting them keeps this small.
        self._last_taken = {k: t for k, t in self._last_taken.items() if now - t < self._min_interval}
        for key in due:
            self._last_taken[key] = now
        return [value for key in due for value in self._pending.pop(key)]

    def next_due_at(self) -> float | None:
        """When the earliest waiting value falls due; None when nothing waits."""
        if not self._pending:
            return None
        return min(self._last_taken.get(key, -math.inf) + self._min_interval for key in self._pending)

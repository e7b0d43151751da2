"""In-memory stand-ins for the dispatcher's ports."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Self

from mailstify_contracts import CampaignContent, DeliverEmail, Recipient
from mailstify_servicekit.testing import FakeUnitOfWork

from dispatcher.domain.fanout import Fanout
from dispatcher.service_layer.ports import PublishRefused, RecipientPage


class FakeRecipients:
    """A list of subscribers with ids 1..n, paged like the audience service's recipients cursor."""

    def __init__(self, count: int, list_id: str = "list-1"):
        self.ids = list(range(1, count + 1))
        self.list_id = list_id
        self.calls: list[dict] = []
        # Raise this on the call with that (1-based) number, as an unreachable audience service would.
        self.failure: tuple[int, Exception] | None = None

    async def page(
        self, account_id: str, list_id: str, *, after: str | None, up_to: str | None, limit: int
    ) -> RecipientPage | None:
        self.calls.append({"after": after, "up_to": up_to, "limit": limit})
        if self.failure is not None and self.failure[0] == len(self.calls):
            raise self.failure[1]
        if list_id != self.list_id:
            return None
        bound = int(up_to) if up_to is not None else (max(self.ids) if self.ids else None)
        if bound is None:
            return RecipientPage(items=[], up_to=None, next_after=None)
        eligible = [i for i in self.ids if (after is None or i > int(after)) and i <= bound]
        chosen = eligible[:limit]
        more = len(eligible) > limit
        return RecipientPage(
            items=[Recipient(subscriber_id=str(i), email=f"s{i}@example.com", first_name=f"S{i}") for i in chosen],
            up_to=str(bound),
            next_after=str(chosen[-1]) if more else None,
        )


class FakeMailQueue:
    """Keeps one message per msg id, like JetStream's de-duplication; can refuse like a full stream."""

    def __init__(self) -> None:
        self.by_msg_id: dict[str, DeliverEmail] = {}
        # Every delivery of every accepted publish, copies included: what de-duplication would hide.
        self.published: list[DeliverEmail] = []
        self.publish_calls = 0
        self.refusals_left = 0
        self.crash_after_publish: int | None = None  # raise after this many successful publishes

    async def publish(self, deliveries: Sequence[DeliverEmail]) -> None:
        self.publish_calls += 1
        if self.refusals_left:
            self.refusals_left -= 1
            raise PublishRefused("maximum messages exceeded")
        self.published.extend(deliveries)
        for d in deliveries:
            self.by_msg_id.setdefault(f"deliver:{d.campaign_id}:{d.recipient.subscriber_id}", d)
        if self.crash_after_publish is not None:
            self.crash_after_publish -= 1
            if self.crash_after_publish < 0:
                self.crash_after_publish = None
                raise SimulatedCrash("process died after the page was acknowledged")


class SimulatedCrash(Exception):
    pass


class FakeContentStore:
    def __init__(self) -> None:
        self.values: dict[str, CampaignContent] = {}
        self.puts = 0

    async def put(self, key: str, content: CampaignContent) -> None:
        self.puts += 1
        self.values[key] = content


class FakeFanoutRepository:
    def __init__(self, rows: dict[str, Fanout]):
        self.rows = rows

    async def get_or_create(self, fanout: Fanout) -> Fanout:
        self.rows.setdefault(fanout.campaign_id, copy.copy(fanout))
        return copy.copy(self.rows[fanout.campaign_id])

    async def save(self, fanout: Fanout) -> bool:
        if self.rows[fanout.campaign_id].version != fanout.version:
            return False
        fanout.version += 1
        self.rows[fanout.campaign_id] = copy.copy(fanout)
        return True


class FakeDispatcherUnitOfWork(FakeUnitOfWork):
    """Works on copies of the committed fanouts; commit makes them durable along with the staged events."""

    def __init__(self) -> None:
        super().__init__()
        self.committed: dict[str, Fanout] = {}

    def __call__(self) -> Self:
        # The fanout handler opens a fresh unit of work per page; the fake hands out itself.
        return self

    def begin(self) -> None:
        self._rows = {k: copy.copy(v) for k, v in self.committed.items()}
        self.fanouts = FakeFanoutRepository(self._rows)

    def on_commit(self) -> None:
        self.committed = self._rows

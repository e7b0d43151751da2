"""In-memory stand-ins for the dispatcher's ports."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Self

from mailstify_contracts import CampaignContent, CampaignSendRequested, ControlState, DeliverEmail, FanoutCompleted, Recipient, subjects
from mailstify_servicekit.testing import FakeUnitOfWork

from dispatcher.domain.fanout import Fanout
from dispatcher.service_layer.handlers import Dispatcher
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
        # (publishes to let through, messages of the next one stored before the process dies)
        self.crash_mid_publish: tuple[int, int] | None = None
        # Messages the mailers have taken and settled (a work queue then drops them).
        self.taken = 0
        # Raise PublishRefused from this many backlog reads, as NATS unreachable would.
        self.unreadable_backlogs = 0

    async def publish(self, deliveries: Sequence[DeliverEmail]) -> None:
        self.publish_calls += 1
        if self.refusals_left:
            self.refusals_left -= 1
            raise PublishRefused("maximum messages exceeded")
        if self.crash_mid_publish is not None:
            whole, part = self.crash_mid_publish
            if whole == 0:
                self.crash_mid_publish = None
                self._store(deliveries[:part])
                raise SimulatedCrash(f"process died after {part} messages of a page")
            self.crash_mid_publish = (whole - 1, part)
        self._store(deliveries)
        if self.crash_after_publish is not None:
            self.crash_after_publish -= 1
            if self.crash_after_publish < 0:
                self.crash_after_publish = None
                raise SimulatedCrash("process died after the page was acknowledged")

    def _store(self, deliveries: Sequence[DeliverEmail]) -> None:
        self.published.extend(deliveries)
        for d in deliveries:
            self.by_msg_id.setdefault(subjects.deliver_msg_id(d.campaign_id, d.recipient.subscriber_id, d.round), d)

    async def size(self) -> int:
        """The backlog: messages stored and not yet taken by a mailer."""
        if self.unreadable_backlogs:
            self.unreadable_backlogs -= 1
            raise PublishRefused("no responders")
        return len(self.by_msg_id) - self.taken

    def take(self, count: int) -> None:
        self.taken = min(len(self.by_msg_id), self.taken + count)

    def subscribers(self) -> list[int]:
        """Distinct subscribers queued (what JetStream keeps), in id order."""
        return sorted(int(d.recipient.subscriber_id) for d in self.by_msg_id.values())


class SimulatedCrash(Exception):
    pass


class FakeContentStore:
    def __init__(self) -> None:
        self.values: dict[str, CampaignContent] = {}
        self.puts = 0

    async def put(self, key: str, content: CampaignContent) -> None:
        self.puts += 1
        self.values[key] = content


class FakeControl:
    """The campaigns' control states; `script` gives the state answered on each read, in turn (the
    last one repeats), for a campaign that changes state mid-fan-out."""

    def __init__(self) -> None:
        self.states: dict[str, ControlState] = {}
        self.script: list[ControlState] = []
        self.reads = 0

    async def state(self, campaign_id: str) -> ControlState:
        self.reads += 1
        if self.script:
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return self.states.get(campaign_id, "active")


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


CONTENT = CampaignContent(subject="Hi", from_name="Team", from_email="team@example.com", body_html="<p>Hi</p>")


def request(campaign_id: str = "camp-1", list_id: str = "list-1") -> CampaignSendRequested:
    return CampaignSendRequested(account_id="acct-1", campaign_id=campaign_id, list_id=list_id, content=CONTENT)


class Harness:
    """A Dispatcher over fakes: subscribers 1..`recipients` on list-1, every campaign active."""

    def __init__(self, recipients: int, page_size: int = 1000, max_attempts: int = 10, window: int = 100_000):
        self.uow = FakeDispatcherUnitOfWork()
        self.recipients = FakeRecipients(recipients)
        self.queue = FakeMailQueue()
        self.content = FakeContentStore()
        self.control = FakeControl()
        self.sleeps: list[float] = []
        # What each sleep does meanwhile (a mailer draining the queue, say); nothing by default.
        self.while_sleeping = lambda: None

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            self.while_sleeping()

        self.dispatcher = Dispatcher(
            new_uow=self.uow,
            recipients=self.recipients,
            publisher=self.queue,
            content=self.content,
            control=self.control,
            backlog=self.queue,
            page_size=page_size,
            window=window,
            max_attempts=max_attempts,
            sleep=sleep,
        )

    async def run(self, req: CampaignSendRequested | None = None):
        return await self.dispatcher.fan_out(req or request())

    def completions(self) -> list[tuple[FanoutCompleted, str, str | None]]:
        return [(e, s, m) for e, s, m in self.uow.events if isinstance(e, FanoutCompleted)]

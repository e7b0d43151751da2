"""The open event streams of this gateway process and the updates fanned out to them, in memory.

Every stream is a `Listener` registered under its account; `LiveStreams.publish` (called by the
event feed for each event off NATS) hands the update to that account's listeners whose filter
takes it, without awaiting anything. A listener keeps only the latest update per campaign or list
(and each status change; `Coalescer`), so a slow client costs a bounded amount of memory and never holds the feed up; its
stream task sleeps on an `asyncio.Event` until something falls due. Nothing here holds a thread
or a database connection per client.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager

from opentelemetry import metrics

from mailstify_servicekit.errors import ServiceError

from ..domain import sse
from ..domain.live_updates import Coalescer, LiveUpdate, supersedes

_open_streams = metrics.get_meter("mailstify.gateway").create_up_down_counter(
    "mailstify.gateway.sse.streams", unit="{stream}", description="Server-sent event streams open at this gateway"
)


@contextmanager
def _counted_stream() -> Iterator[None]:
    _open_streams.add(1)
    try:
        yield
    finally:
        _open_streams.add(-1)


class Listener:
    """One open stream's inbox."""

    def __init__(self, takes: Callable[[LiveUpdate], bool], min_interval: float, clock: Callable[[], float]):
        self._takes = takes
        self._clock = clock
        self._waiting: Coalescer[tuple[str, str], LiveUpdate] = Coalescer(min_interval, supersedes)
        self._wake = asyncio.Event()
        self._closed = False
        self._missed_some = False

    def offer(self, update: LiveUpdate) -> None:
        if self._takes(update):
            self._waiting.offer(update.key, update)
            self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def missed_some(self) -> None:
        """Updates may have been lost (the feed was disconnected): the stream should re-read the state."""
        self._missed_some = True
        self._wake.set()

    def take_missed(self) -> bool:
        missed, self._missed_some = self._missed_some, False
        return missed

    async def next_updates(self, idle_timeout: float) -> list[LiveUpdate] | None:
        """The updates due now, waiting for them; [] after `idle_timeout` seconds without any (time
        for a heartbeat) or when updates were missed; None once the listener is closed (the
        stream ends)."""
        give_up_at = self._clock() + idle_timeout
        while not self._closed:
            # Cleared before looking, so an offer made after the look wakes the wait below.
            self._wake.clear()
            now = self._clock()
            due = self._waiting.take_due(now)
            if due:
                return due
            if now >= give_up_at or self._missed_some:
                return []
            due_at = self._waiting.next_due_at()
            wake_at = give_up_at if due_at is None else min(due_at, give_up_at)
            # A timer, not wait_for: no task is created per wait, and thousands of streams wait.
            timer = asyncio.get_running_loop().call_later(max(wake_at - now, 0.0), self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()
        return None


class LiveStreams:
    """Every open stream of this process, by account; `stream()` is what a response sends."""

    def __init__(
        self,
        min_interval: float,
        heartbeat_seconds: float,
        retry_milliseconds: int,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._min_interval = min_interval
        self._heartbeat_seconds = heartbeat_seconds
        self._retry_milliseconds = retry_milliseconds
        self._clock = clock
        self._by_account: dict[str, set[Listener]] = {}
        self._closed = False

    def publish(self, update: LiveUpdate) -> None:
        for listener in tuple(self._by_account.get(update.account_id, ())):
            listener.offer(update)

    @contextmanager
    def listen(self, account_id: str, campaign_id: str | None = None) -> Iterator[Listener]:
        """A listener for the account's updates (only that campaign's, when given), registered for
        as long as the block runs."""

        def takes(update: LiveUpdate) -> bool:
            return campaign_id is None or (update.topic == "campaign" and update.subject_id == campaign_id)

        listener = Listener(takes, self._min_interval, self._clock)
        if self._closed:
            listener.close()
        self._by_account.setdefault(account_id, set()).add(listener)
        try:
            yield listener
        finally:
            listeners = self._by_account.get(account_id)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._by_account[account_id]

    async def stream(
        self,
        account_id: str,
        first_event_id: int,
        campaign_id: str | None = None,
        current: Callable[[], Awaitable[LiveUpdate]] | None = None,
    ) -> AsyncIterator[bytes]:
        """A stream's bytes: the reconnect hint, `current()` (the state on connect), then every
        update for the account (or its campaign `campaign_id`), with a heartbeat comment whenever
        nothing was written for a while, until the client goes or the gateway stops.

        The listener is registered inside the generator, so whatever ends the response (the end,
        a disconnect cancelling it, a response never started) leaves nothing registered. The
        current state is read after registering (and again whenever the feed may have missed
        updates): a change made meanwhile is then either in that
        state or on its way to the listener, never lost. A snapshot that arrives older than the
        state on connect (emitted before, delivered after) is corrected by the next one.

        `id:` is a per-stream counter starting at `first_event_id`; see `entrypoints/events.py`
        for why it is not a JetStream sequence."""
        ids = itertools.count(first_event_id)
        with self.listen(account_id, campaign_id) as listener, _counted_stream():
            yield sse.retry(self._retry_milliseconds)
            listener.missed_some()  # nothing read yet: the current state comes first
            while (updates := await listener.next_updates(self._heartbeat_seconds)) is not None:
                if listener.take_missed():
                    if current is not None:
                        try:
                            listener.offer(await current())
                        except ServiceError:
                            # Deleted since the connect check, or its service is down: end here; the
                            # browser reconnects after `retry` and gets the answer (404, 503) as such.
                            return
                elif not updates:
                    yield sse.comment("keep-alive")
                for update in updates:
                    yield sse.event(update.topic, update.data, next(ids))

    def missed_some(self) -> None:
        """The feed may have lost updates (its NATS connection was down): every stream re-reads
        its current state where it has one to read (a campaign's)."""
        for listener in self._every_listener():
            listener.missed_some()

    def open_count(self) -> int:
        return sum(len(listeners) for listeners in self._by_account.values())

    def close(self) -> None:
        """The gateway is stopping: every stream ends now, and any opened later ends at once."""
        self._closed = True
        for listener in self._every_listener():
            listener.close()

    def _every_listener(self) -> list[Listener]:
        return [listener for listeners in self._by_account.values() for listener in listeners]

"""The gateway's one feed of live updates: a core NATS subscription per subject, for the whole
process, fanning each event out to the open streams in memory (`LiveStreams.publish`).

Core NATS, not a JetStream consumer: the streams only ever need the newest state (every campaign
event is a full snapshot of status and counts; a list event means "re-read this list"), so there is
nothing to replay and no consumer state worth keeping on the server per gateway replica. Each
replica gets every event (no queue group): each holds its own clients. The relay publishes these
events to JetStream, which is an ordinary publish, so core subscribers receive them as they are
stored. What is published while this connection is down is not seen: after a reconnect every
campaign stream re-reads its campaign's state (`LiveStreams.missed_some`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from nats.aio.client import Client
from nats.aio.msg import Msg

from mailstify_contracts import CampaignStatusChanged, Event, SubscriberChanged, decode_event, subjects

from ..domain.live_updates import LiveUpdate, campaign_progress, list_change

log = logging.getLogger(__name__)

# How often the loop looks whether the connection was re-established since it last looked.
RECONNECT_CHECK_SECONDS = 1.0
LIVE_SUBJECTS = (subjects.CAMPAIGN_STATUS_CHANGED, subjects.AUDIENCE_SUBSCRIBER_CHANGED)


def live_update_of(event: Event) -> LiveUpdate | None:
    if isinstance(event, CampaignStatusChanged):
        return campaign_progress(event)
    if isinstance(event, SubscriberChanged):
        return list_change(event)
    return None


class NatsEventFeed:
    """A message loop (`Wiring.loops`): subscribed while `run()` runs, unsubscribed after `stop()`."""

    def __init__(self, nc: Client, publish: Callable[[LiveUpdate], None], missed_some: Callable[[], None]):
        self._nc = nc
        self._publish = publish
        self._missed_some = missed_some
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        subscriptions = [await self._nc.subscribe(subject, cb=self._on_message) for subject in LIVE_SUBJECTS]
        # A restarted loop may have missed updates while it was down, as after a reconnect.
        self._missed_some()
        reconnects = self._nc.stats["reconnects"]
        try:
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), RECONNECT_CHECK_SECONDS)
                if self._nc.stats["reconnects"] != reconnects:
                    reconnects = self._nc.stats["reconnects"]
                    self._missed_some()
        finally:
            for subscription in subscriptions:
                try:
                    await subscription.unsubscribe()
                except Exception:  # the connection may be closing already; nothing left to release
                    log.debug("unsubscribing %s failed", subscription.subject, exc_info=True)

    def stop(self) -> None:
        self._stopping.set()

    async def _on_message(self, msg: Msg) -> None:
        try:
            event = decode_event(msg.data)
        except ValueError:
            log.warning("ignoring an undecodable message on %s", msg.subject)
            return
        update = live_update_of(event)
        if update is not None:
            self._publish(update)

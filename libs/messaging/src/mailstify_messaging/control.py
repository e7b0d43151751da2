"""Campaign control: whether a campaign's recipients may be sent to right now (active, paused,
cancelled), read from the CAMPAIGN_CONTROL bucket that the campaign service writes through its outbox.

A campaign with no key is active: only a pause or a cancel ever writes one. Readers either watch the
whole bucket (the mailer asks per message, so it answers from memory) or read one key when they need
it (the dispatcher, once per page).
"""

from __future__ import annotations

import asyncio
import logging

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from mailstify_contracts import CampaignControlChanged, ControlState, decode_event, topology

from .retry import backoff_delay

log = logging.getLogger(__name__)

ACTIVE: ControlState = "active"


def _state_of(entry: KeyValue.Entry) -> ControlState:
    if entry.value is None or entry.operation in ("DEL", "PURGE"):
        return ACTIVE
    try:
        event = decode_event(entry.value)
    except ValueError:
        log.error("ignoring an undecodable value under campaign control key %s", entry.key)
        return ACTIVE
    return event.state if isinstance(event, CampaignControlChanged) else ACTIVE


class CampaignControlBoard:
    """Every campaign's control state, kept current by a watch of the bucket; `run` is a service loop."""

    def __init__(self, js: JetStreamContext, bucket: str = topology.CAMPAIGN_CONTROL.bucket):
        self._js = js
        self._bucket = bucket
        self._states: dict[str, ControlState] = {}
        self._ready = asyncio.Event()
        self._stopping = False

    async def state(self, campaign_id: str) -> ControlState:
        """The campaign's state; waits for the watch's first full read, so a mailer that just started
        does not take a paused campaign for an active one."""
        if not self._ready.is_set():
            await self._ready.wait()
        return self._states.get(campaign_id, ACTIVE)

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                await self._watch()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                log.warning("campaign control watch interrupted; restarting", exc_info=failures == 1)
                await asyncio.sleep(backoff_delay(failures, base=0.5, cap=5.0))

    async def _watch(self) -> None:
        kv = await self._js.key_value(self._bucket)
        watcher = await kv.watchall()
        try:
            while not self._stopping:
                try:
                    entry = await watcher.updates(timeout=1.0)
                except NatsTimeout:  # nothing changed; look at _stopping again
                    continue
                if entry is None:  # the initial values have all been delivered
                    self._ready.set()
                    continue
                self._states[entry.key] = _state_of(entry)
        finally:
            await watcher.stop()


async def read_control_state(
    js: JetStreamContext, campaign_id: str, bucket: str = topology.CAMPAIGN_CONTROL.bucket
) -> ControlState:
    """One campaign's state, read from the bucket now (no watch)."""
    kv = await js.key_value(bucket)
    try:
        entry = await kv.get(campaign_id)
    except KeyNotFoundError:  # also deleted and purged keys
        return ACTIVE
    return _state_of(entry)

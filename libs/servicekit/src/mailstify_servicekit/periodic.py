"""A timer as a message loop: a service's periodic job (start what is due, release what is held)
that the runtime starts with the consumers and stops at shutdown, letting the pass in hand finish."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class PeriodicLoop:
    """Runs `tick` every `interval_seconds` until `stop()`; a failing pass is logged and the next
    one tries again, so a database or NATS outage only delays the job."""

    def __init__(self, what: str, tick: Callable[[], Awaitable[object]], interval_seconds: float):
        self._what = what
        self._tick = tick
        self._interval = interval_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._tick()
            except Exception:
                log.warning("%s failed; retrying at the next pass", self._what, exc_info=True)
            try:
                await asyncio.wait_for(self._stopping.wait(), self._interval)
            except TimeoutError:
                pass

"""The scheduler: a timer that starts scheduled campaigns once their time has come.

It keeps nothing in memory: the schedule is the campaigns' `send_at` column, so a restart (or a
second replica, thanks to SKIP LOCKED) simply finds what is due on its next pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..service_layer.handlers import control
from ..service_layer.ports import CampaignUnitOfWork

log = logging.getLogger(__name__)


class DueCampaignStarter:
    def __init__(self, new_uow: Callable[[], CampaignUnitOfWork], interval_seconds: float):
        self._new_uow = new_uow
        self._interval = interval_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                while await control.start_due(self._new_uow()) == control.DUE_BATCH:
                    pass
            except Exception:
                log.warning("starting scheduled campaigns failed; retrying at the next pass", exc_info=True)
            try:
                await asyncio.wait_for(self._stopping.wait(), self._interval)
            except TimeoutError:
                pass

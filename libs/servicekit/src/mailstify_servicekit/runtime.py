"""What a running service holds: settings, database, NATS, the outbox relay and its consumers; and
the boot sequence that brings them up in the background, retrying until PostgreSQL and NATS answer.

Booting in the background lets the process serve `/healthz` at once and report `/readyz` honestly
while its dependencies are still starting (the embedded stack starts everything together).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import nats.errors
import sqlalchemy as sa
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from mailstify_messaging import OutboxRelay, connect, ensure_topology

from .database import create_engine, prepare_database, session_factory
from .errors import UpstreamUnavailable
from .settings import ServiceSettings
from .telemetry import instrument_engine
from .unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

RETRY_SECONDS = 0.5


class MessageLoop(Protocol):
    """A long-running message loop that finishes its current batch and returns after `stop()`
    (`PullConsumer`, `ExhaustedMessageListener`)."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class ServiceSpec:
    """Everything that differs between services; `bootstrap.py` of each service builds one."""

    name: str
    settings: ServiceSettings
    migrations: Path
    consumers: Callable[[Runtime], Sequence[MessageLoop]] = lambda runtime: ()
    # Extra long-running loops (beyond consumers and the outbox relay).
    background: Callable[[Runtime], Sequence[Callable[[], Awaitable[None]]]] = lambda runtime: ()
    on_boot: Callable[[Runtime], Awaitable[None]] | None = None
    on_shutdown: Callable[[Runtime], Awaitable[None]] | None = None


@dataclass
class Runtime:
    spec: ServiceSpec
    engine: AsyncEngine
    sessions: async_sessionmaker
    nc: Client | None = None
    js: JetStreamContext | None = None
    relay: OutboxRelay | None = None
    booted: asyncio.Event = field(default_factory=asyncio.Event)
    # Service-specific collaborators (SMTP pool, HTTP clients, ...) set in `on_boot`.
    extras: dict[str, Any] = field(default_factory=dict)
    _consumers: list[MessageLoop] = field(default_factory=list)
    _tasks: list[asyncio.Task] = field(default_factory=list)

    @classmethod
    def create(cls, spec: ServiceSpec) -> Runtime:
        engine = create_engine(spec.settings.database_url)
        instrument_engine(engine)
        return cls(spec=spec, engine=engine, sessions=session_factory(engine))

    @property
    def settings(self) -> ServiceSettings:
        return self.spec.settings

    def uow(self) -> UnitOfWork:
        if not self.booted.is_set():
            raise UpstreamUnavailable(f"{self.spec.name} is starting; try again shortly")
        return UnitOfWork(self.sessions, on_events_committed=self.relay.wake if self.relay else lambda: None)

    def jetstream(self) -> JetStreamContext:
        if self.js is None:
            raise UpstreamUnavailable(f"{self.spec.name} is not connected to NATS yet")
        return self.js

    async def boot(self) -> None:
        settings = self.settings
        await _until_done(
            "database",
            lambda: prepare_database(settings.database_url, self.spec.migrations, settings.database_autocreate),
        )
        self.nc = await _until_done("nats", lambda: connect(settings.nats_url, name=self.spec.name))
        self.js = self.nc.jetstream()
        await _until_done("jetstream topology", lambda: ensure_topology(self.js, replicas=settings.jetstream_replicas))
        if self.spec.on_boot:
            await self.spec.on_boot(self)
        self.relay = OutboxRelay(self.engine, self.js)
        self._consumers = list(self.spec.consumers(self))
        loops = [self.relay.run, *(c.run for c in self._consumers), *self.spec.background(self)]
        self._tasks = [asyncio.create_task(_supervised(loop)) for loop in loops]
        self.booted.set()
        log.info("%s ready", self.spec.name)

    async def readiness(self) -> str | None:
        """None when ready, else what is missing."""
        if not self.booted.is_set():
            return "starting"
        if self.nc is None or not self.nc.is_connected:
            return "nats not connected"
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except Exception as exc:
            return f"database unavailable: {exc.__class__.__name__}"
        return None

    async def shutdown(self) -> None:
        for consumer in self._consumers:
            consumer.stop()
        if self.relay:
            self.relay.stop()
        if self._tasks:
            # Let in-flight batches finish and commit their outcomes; what is cancelled is redelivered.
            _, pending = await asyncio.wait(self._tasks, timeout=self.settings.shutdown_grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.spec.on_shutdown:
            await self.spec.on_shutdown(self)
        if self.nc and not self.nc.is_closed:
            try:
                await self.nc.drain()
            except (nats.errors.Error, TimeoutError):
                # NATS may be stopping at the same moment (Ctrl-C on the whole stack): nothing to flush to.
                await self.nc.close()
        await self.engine.dispose()


def close_extras(*keys: str) -> Callable[[Runtime], Awaitable[None]]:
    """An `on_shutdown` hook that closes collaborators kept in `runtime.extras` (HTTP clients,
    connection pools): each one present under `keys` is removed and its `aclose()` awaited, in order.

    A missing key is skipped: shutdown may come before boot got as far as opening it.
    """

    async def close(runtime: Runtime) -> None:
        for key in keys:
            resource = runtime.extras.pop(key, None)
            if resource is not None:
                await resource.aclose()

    return close


async def _until_done(what: str, attempt: Callable[[], Awaitable[Any]]) -> Any:
    while True:
        try:
            return await attempt()
        except Exception as exc:
            log.info("waiting for %s: %s", what, exc)
            await asyncio.sleep(RETRY_SECONDS)


async def _supervised(loop: Callable[[], Awaitable[None]]) -> None:
    """Restart a background loop that crashed, instead of leaving the service silently half-alive."""
    while True:
        try:
            await loop()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background loop %s crashed; restarting", getattr(loop, "__qualname__", loop))
            await asyncio.sleep(1.0)

"""What a running service holds: settings, database, NATS, the outbox relay, and what its bootstrap
wired; and the boot sequence that brings them up in the background, retrying until PostgreSQL and
NATS answer.

Booting in the background lets the process serve `/healthz` at once and report `/readyz` honestly
while its dependencies are still starting (the embedded stack starts everything together).

Each service's `bootstrap.py` is the only place that knows its concrete adapters: its `wire`
function gets the `Connections` once they are up and returns a `Wiring` — the typed dependencies
object its entrypoints read (`Runtime.dependencies()`), the message loops to run, and what to close.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import nats.errors
import sqlalchemy as sa
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from mailstify_contracts.topology import ConsumerSpec
from mailstify_messaging import OutboxRelay, connect, ensure_topology

from .database import create_engine, prepare_database, session_factory
from .errors import UpstreamUnavailable
from .settings import ServiceSettings
from .metrics import QueueGauges
from .periodic import PeriodicLoop
from .telemetry import INSTANCE_ID, instrument_engine, telemetry_enabled
from .unit_of_work import SingleStatementUnitOfWork, UnitOfWork

log = logging.getLogger(__name__)

RETRY_SECONDS = 0.5
# After the message loops have stopped, the relay gets this long to publish what they committed.
RELAY_FLUSH_SECONDS = 5.0

D = TypeVar("D")


class MessageLoop(Protocol):
    """A long-running message loop that finishes its current batch and returns after `stop()`
    (`PullConsumer`, `ExhaustedMessages`)."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Connections:
    """What a service's `wire` builds its adapters on, once the database and NATS answer."""

    settings: ServiceSettings
    engine: AsyncEngine
    nc: Client
    js: JetStreamContext
    # A new transaction (+ outbox) on the service's database: wrap it in the service's unit of work.
    new_transaction: Callable[[], UnitOfWork]
    # The same for a change made by one statement, which is then its own transaction (autocommit).
    new_single_statement: Callable[[], UnitOfWork]


@dataclass
class Wiring(Generic[D]):
    """What a bootstrap hands the runtime."""

    dependencies: D
    loops: Sequence[MessageLoop] = ()
    # Awaited in order at shutdown, after the loops stopped (HTTP clients, connection pools).
    closers: Sequence[Callable[[], Awaitable[None]]] = ()
    # Called as shutdown begins, before the loops' current batches are waited for: stop starting
    # new work that could outlive the grace period (the mailer: no new SMTP transaction).
    on_stopping: Callable[[], None] | None = None


@dataclass
class ServiceSpec(Generic[D]):
    """Everything that differs between services; `bootstrap.py` of each service builds one."""

    name: str
    settings: ServiceSettings
    migrations: Path
    wire: Callable[[Connections], Wiring[D]]
    # The durable consumers this service owns and declares (every service declares the streams).
    consumers: Sequence[ConsumerSpec] = ()


@dataclass
class Runtime(Generic[D]):
    spec: ServiceSpec[D]
    engine: AsyncEngine
    sessions: async_sessionmaker
    # On the same pool, in autocommit (SingleStatementUnitOfWork).
    autocommit_sessions: async_sessionmaker
    nc: Client | None = None
    js: JetStreamContext | None = None
    relay: OutboxRelay | None = None
    wiring: Wiring[D] | None = None
    booted: asyncio.Event = field(default_factory=asyncio.Event)
    _loop_tasks: list[asyncio.Task] = field(default_factory=list)
    _relay_task: asyncio.Task | None = None
    _gauges: QueueGauges | None = None
    _gauge_poll: PeriodicLoop | None = None
    _gauge_task: asyncio.Task | None = None

    @classmethod
    def create(cls, spec: ServiceSpec[D]) -> Runtime[D]:
        engine = create_engine(spec.settings.database_url)
        instrument_engine(engine)
        return cls(
            spec=spec,
            engine=engine,
            sessions=session_factory(engine),
            autocommit_sessions=session_factory(engine.execution_options(isolation_level="AUTOCOMMIT")),
        )

    @property
    def settings(self) -> ServiceSettings:
        return self.spec.settings

    def dependencies(self) -> D:
        """The service's wired dependencies; a request before boot completed gets a 503."""
        if self.wiring is None or not self.booted.is_set():
            raise UpstreamUnavailable(f"{self.spec.name} is starting; try again shortly")
        return self.wiring.dependencies

    def jetstream(self) -> JetStreamContext:
        if self.js is None:
            raise UpstreamUnavailable(f"{self.spec.name} is not connected to NATS yet")
        return self.js

    def new_transaction(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, on_events_committed=self._wake_relay)

    def new_single_statement(self) -> UnitOfWork:
        return SingleStatementUnitOfWork(self.autocommit_sessions, on_events_committed=self._wake_relay)

    def _wake_relay(self) -> None:
        if self.relay is not None:
            self.relay.wake()

    async def boot(self) -> None:
        settings = self.settings
        await _until_done(
            "database",
            lambda: prepare_database(settings.database_url, self.spec.migrations, settings.database_autocreate),
        )
        self.nc = await _until_done("nats", lambda: connect(settings.nats_url, name=self.spec.name))
        self.js = self.nc.jetstream()
        js = self.js
        await _until_done(
            "jetstream topology",
            lambda: ensure_topology(js, consumers=self.spec.consumers, replicas=settings.jetstream_replicas),
        )
        self.relay = OutboxRelay(self.engine, js)
        connections = Connections(settings, self.engine, self.nc, js, self.new_transaction, self.new_single_statement)
        self.wiring = self.spec.wire(connections)
        self._relay_task = asyncio.create_task(_supervised(self.relay.run))
        self._loop_tasks = [asyncio.create_task(_supervised(loop.run)) for loop in self.wiring.loops]
        if telemetry_enabled():
            self._gauges = QueueGauges(self.spec.name, self.engine, js, self.spec.consumers)
            self._gauge_poll = PeriodicLoop("queue gauges", self._gauges.poll, settings.metrics_poll_seconds)
            self._gauge_task = asyncio.create_task(self._gauge_poll.run())
        self.booted.set()
        log.info("%s replica %s joined: ready", self.spec.name, INSTANCE_ID)

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
        wiring = self.wiring
        if self.booted.is_set():
            log.info("%s replica %s draining", self.spec.name, INSTANCE_ID)
        if self._gauge_poll is not None and self._gauge_task is not None:
            self._gauge_poll.stop()
            await _finish([self._gauge_task], RELAY_FLUSH_SECONDS)
            if self._gauges is not None:
                self._gauges.forget()
        if wiring is not None:
            for loop in wiring.loops:
                loop.stop()
            if wiring.on_stopping is not None:
                wiring.on_stopping()
        # Let in-flight batches finish and commit their outcomes; what is cancelled is redelivered.
        await _finish(self._loop_tasks, self.settings.shutdown_grace_seconds)
        if self.relay is not None:
            self.relay.stop()
        await _finish([self._relay_task] if self._relay_task else [], RELAY_FLUSH_SECONDS)
        for close in wiring.closers if wiring else ():
            try:
                await close()
            except Exception:
                log.warning("closing %s failed", getattr(close, "__qualname__", close), exc_info=True)
        if self.nc and not self.nc.is_closed:
            try:
                await self.nc.drain()
            except (nats.errors.Error, TimeoutError):
                # NATS may be stopping at the same moment (Ctrl-C on the whole stack): nothing to flush to.
                await self.nc.close()
        await self.engine.dispose()


async def _finish(tasks: Sequence[asyncio.Task], timeout: float) -> None:
    """Wait up to `timeout` for `tasks` to return, then cancel the rest."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


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

"""The runtime's shutdown: loops stop, the bootstrap's `on_stopping` runs before the loops' current
work is waited for, and what the bootstrap opened is closed after the loops finished, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailstify_servicekit import Runtime, ServiceSettings, ServiceSpec, UpstreamUnavailable, Wiring


class SlowLoop:
    """Finishes its 'batch' only once `on_stopping` released it (like a mailer draining)."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.released = asyncio.Event()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        await self._stopping.wait()
        await self.released.wait()
        self.events.append("loop finished")

    def stop(self) -> None:
        self.events.append("loop stopped")
        self._stopping.set()


def a_runtime(wiring: Wiring[str]) -> Runtime[str]:
    settings = ServiceSettings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", shutdown_grace_seconds=5)
    spec = ServiceSpec(name="test", settings=settings, migrations=Path("."), wire=lambda _c: wiring)
    runtime = Runtime.create(spec)
    # What boot() does once the database and NATS answer, without them.
    runtime.wiring = wiring
    runtime._loop_tasks = [asyncio.create_task(loop.run()) for loop in wiring.loops]
    runtime.booted.set()
    return runtime


async def test_shutdown_stops_loops_lets_them_drain_then_closes_in_order() -> None:
    events: list[str] = []
    loop = SlowLoop(events)

    def on_stopping() -> None:
        events.append("on_stopping")
        loop.released.set()

    async def close(name: str) -> None:
        events.append(f"closed {name}")

    wiring = Wiring("deps", loops=[loop], closers=[lambda: close("client"), lambda: close("pool")], on_stopping=on_stopping)
    runtime = a_runtime(wiring)
    await asyncio.sleep(0)

    await runtime.shutdown()

    assert events == ["loop stopped", "on_stopping", "loop finished", "closed client", "closed pool"]


async def test_a_closer_that_fails_does_not_keep_the_others_open() -> None:
    closed: list[str] = []

    async def broken() -> None:
        raise RuntimeError("already gone")

    async def pool() -> None:
        closed.append("pool")

    runtime = a_runtime(Wiring("deps", closers=[broken, pool]))

    await runtime.shutdown()

    assert closed == ["pool"]


async def test_dependencies_are_refused_until_booted() -> None:
    runtime = a_runtime(Wiring("deps"))
    assert runtime.dependencies() == "deps"
    runtime.booted.clear()
    with pytest.raises(UpstreamUnavailable):
        runtime.dependencies()
    await runtime.shutdown()

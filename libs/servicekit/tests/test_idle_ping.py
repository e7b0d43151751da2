"""The engine pings a pooled connection only after it sat idle: a broken idle connection is replaced
before use, one in use a moment ago costs no round trip."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from mailstify_servicekit.database import create_engine


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()


async def terminate(admin: AsyncEngine, pid: int) -> None:
    async with admin.connect() as conn:
        assert (await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})).scalar_one()


@pytest.fixture
async def admin(fresh_database: str):
    engine = create_engine(fresh_database, pool_size=1)
    yield engine
    await engine.dispose()


def counting_pings(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    pings: list[object] = []
    do_ping = engine.dialect.do_ping

    def counted(dbapi_connection):
        pings.append(dbapi_connection)
        return do_ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


async def test_an_idle_connection_broken_meanwhile_is_replaced_before_use(fresh_database, admin, monkeypatch):
    engine = create_engine(fresh_database, pool_size=1, ping_after_idle=0.0)
    pings = counting_pings(engine, monkeypatch)
    try:
        first = await backend_pid(engine)
        await terminate(admin, first)  # what a server restart does to every pooled connection

        second = await backend_pid(engine)

        assert second != first
        assert len(pings) == 1
    finally:
        await engine.dispose()


async def test_a_connection_in_use_a_moment_ago_is_not_pinged(fresh_database, monkeypatch):
    engine = create_engine(fresh_database, pool_size=1, ping_after_idle=60.0)
    pings = counting_pings(engine, monkeypatch)
    try:
        pids = {await backend_pid(engine) for _ in range(5)}

        assert len(pids) == 1
        assert pings == []
    finally:
        await engine.dispose()


async def test_without_the_ping_a_broken_connection_fails_its_statement_and_the_pool_recovers(
    fresh_database, admin
):
    engine = create_engine(fresh_database, pool_size=1, ping_after_idle=60.0)
    try:
        await terminate(admin, await backend_pid(engine))

        with pytest.raises(sa.exc.DBAPIError) as failed:
            await backend_pid(engine)
        assert failed.value.connection_invalidated

        assert await backend_pid(engine) > 0  # a retry gets a fresh connection
    finally:
        await engine.dispose()

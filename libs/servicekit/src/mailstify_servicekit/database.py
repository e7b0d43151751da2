"""PostgreSQL access: the async engine, creating a service's database in development, and alembic
migrations applied at start-up under an advisory lock (so replicas starting together don't race)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

# A connection back in the pool for longer than this is pinged before it is handed out again.
PING_AFTER_IDLE_SECONDS = 1.0


def create_engine(url: str, pool_size: int = 10, ping_after_idle: float = PING_AFTER_IDLE_SECONDS) -> AsyncEngine:
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
    ping_idle_connections(engine, ping_after_idle)
    return engine


def ping_idle_connections(engine: AsyncEngine, after_seconds: float) -> None:
    """SQLAlchemy's `pool_pre_ping`, for connections that sat idle: a ping is a round trip, and with
    `pool_pre_ping` every transaction paid one (half the client CPU of a one-statement transaction:
    a mailer commits one per wave of 16 emails). A connection in use a moment ago is as good as a
    ping; one that broke since (the server restarted) fails its statement, and SQLAlchemy then
    invalidates the whole pool, so callers that retry (every message handler) get fresh connections."""
    pool = engine.sync_engine.pool

    @sa.event.listens_for(pool, "checkin")
    def note_idle_since(dbapi_connection: object, record: sa.pool.ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(pool, "checkout")
    def ping_if_idle(
        dbapi_connection: sa.pool.DBAPIConnection, record: sa.pool.ConnectionPoolEntry, proxy: object
    ) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < after_seconds:
            return  # just connected, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out another (a fresh one, after a restart).
            raise sa.exc.DisconnectionError(f"idle connection failed its ping: {exc}") from exc


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def _libpq_conninfo(url: str, database: str | None = None) -> str:
    parsed = make_url(url)
    parts = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username or "postgres",
        "dbname": database or parsed.database,
    }
    if parsed.password:
        parts["password"] = parsed.password
    return " ".join(f"{k}={v}" for k, v in parts.items())


def ensure_database_exists(url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(_libpq_conninfo(url, "postgres"), autocommit=True, connect_timeout=3) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            pass  # another replica won the race


def migrate(url: str, script_location: Path) -> None:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


async def prepare_database(url: str, script_location: Path, autocreate: bool) -> None:
    if autocreate:
        await asyncio.to_thread(ensure_database_exists, url)
    await asyncio.to_thread(migrate, url, script_location)

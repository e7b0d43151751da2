"""PostgreSQL access: the async engine, creating a service's database in development, and alembic
migrations applied at start-up under an advisory lock (so replicas starting together don't race)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


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

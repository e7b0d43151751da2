"""Fixtures of the servicekit tests that need a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mailstify_messaging import outbox


@pytest.fixture
async def engine(fresh_database: str) -> AsyncIterator[AsyncEngine]:
    """A fresh database holding only the outbox table."""
    engine = create_async_engine(fresh_database)
    async with engine.begin() as conn:
        await conn.run_sync(outbox.metadata.create_all)
    yield engine
    await engine.dispose()

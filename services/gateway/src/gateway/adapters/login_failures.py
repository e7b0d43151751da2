"""Failed login attempts in PostgreSQL (table `login_failures`): shared by every gateway replica, so
the throttle holds however many there are."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from .tables import login_failures


class SqlLoginFailures:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def since(self, keys: Sequence[str], since: datetime) -> dict[str, list[datetime]]:
        query = sa.select(login_failures.c.key, login_failures.c.failed_at).where(
            login_failures.c.key.in_(list(keys)), login_failures.c.failed_at > since
        )
        found: dict[str, list[datetime]] = {key: [] for key in keys}
        for row in await self.session.execute(query):
            found[row.key].append(row.failed_at)
        return found

    async def record(self, keys: Sequence[str], at: datetime, forget_before: datetime) -> None:
        """Note a failure under each key, and drop failures too old to matter (keeps the table small)."""
        await self.session.execute(
            sa.delete(login_failures).where(
                login_failures.c.key.in_(list(keys)), login_failures.c.failed_at <= forget_before
            )
        )
        await self.session.execute(sa.insert(login_failures), [{"key": key, "failed_at": at} for key in keys])

    async def forget(self, key: str) -> None:
        await self.session.execute(sa.delete(login_failures).where(login_failures.c.key == key))

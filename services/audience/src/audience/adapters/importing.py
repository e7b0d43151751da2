"""Import jobs and their staging area on PostgreSQL.

An import is one transaction (`SqlStagingArea`): rows are COPYed into a temporary table, duplicates
inside the file are left out (sorting by address once), and one INSERT … SELECT … ON CONFLICT merges the rest into the list.
Until it commits the list is untouched; if the process dies, PostgreSQL rolls it back. That
transaction holds an advisory lock on the job, so a job row that says `running` while nobody holds
its lock was orphaned by a crash (`SqlImportRepository.fail_orphaned`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from psycopg import AsyncConnection
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.csv_import import ImportRow
from ..domain.model import ImportJob, ImportMode
from ..service_layer.ports import DuplicateLines, MergeCounts
from .tables import imports

# First key of the two-key advisory locks on import jobs; the second is the job id.
IMPORT_LOCK_SPACE = 0x1A0D
# Rows that say `queued` are given this long to be picked up by the process that created them.
QUEUED_GRACE_SECONDS = 60

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: str | None) -> str:
    if value is None:
        return "\\N"
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def copy_text(rows: Sequence[ImportRow]) -> bytes:
    """Rows in COPY's text format (tab-separated, backslash escapes, \\N for NULL)."""
    lines = [
        f"{line}\t{_copy_field(email)}\t{_copy_field(first)}\t{_copy_field(last)}\t{status}\t{_copy_field(attrs)}\n"
        for line, email, first, last, status, attrs in rows
    ]
    return "".join(lines).encode()


async def _driver_connection(session: AsyncSession) -> AsyncConnection:
    """psycopg's own connection under the session's transaction, for COPY."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection  # type: ignore[return-value]


_lock_key = sa.cast(sa.func.mod(imports.c.id, 2147483647), sa.Integer)


class SqlStagingArea:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def open(self, job_id: int) -> None:
        await self.session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:space, CAST(mod(:job, 2147483647) AS integer))"),
            {"space": IMPORT_LOCK_SPACE, "job": job_id},
        )
        await self.session.execute(
            sa.text(
                "CREATE TEMPORARY TABLE import_staging (line bigint NOT NULL, email text NOT NULL, "
                "first_name text, last_name text, status text NOT NULL, attributes jsonb) ON COMMIT DROP"
            )
        )

    async def copy(self, rows: Sequence[ImportRow]) -> None:
        data = await asyncio.to_thread(copy_text, rows)
        pg = await _driver_connection(self.session)
        async with pg.cursor() as cursor:
            statement = "COPY import_staging (line, email, first_name, last_name, status, attributes) FROM STDIN"
            async with cursor.copy(statement) as copy:
                await copy.write(data)

    async def remove_duplicates(self, report_limit: int) -> DuplicateLines:
        # One sort of the staged rows by address, written out in that order: each address's first
        # line is the one kept, and the merge then walks the list's (list_id, email) index in order
        # instead of at random — about half the time for a million rows that do not fit in the cache.
        await self.session.execute(sa.text("SET LOCAL work_mem = '64MB'"))
        await self.session.execute(
            sa.text(
                "CREATE TEMPORARY TABLE import_ranked ON COMMIT DROP AS "
                "SELECT *, min(line) OVER (PARTITION BY email) AS first_line FROM import_staging"
            )
        )
        await self.session.execute(sa.text("DROP TABLE import_staging"))
        statement = sa.text(
            "SELECT line, first_line, count(*) OVER () AS total FROM import_ranked "
            "WHERE line <> first_line ORDER BY line LIMIT :limit"
        )
        rows = (await self.session.execute(statement, {"limit": report_limit})).all()
        # count(*) OVER () is taken before the LIMIT: every duplicate, not only the reported ones.
        return DuplicateLines(total=rows[0].total if rows else 0, lines=[(r.line, r.first_line) for r in rows])

    async def merge(self, account_id: str, list_id: int, mode: ImportMode) -> MergeCounts:
        staged = (
            await self.session.execute(sa.text("SELECT count(*) FROM import_ranked WHERE line = first_line"))
        ).scalar_one()
        insert_rows = """
            INSERT INTO subscribers AS s (account_id, list_id, email, first_name, last_name, attributes, status)
            SELECT :account, :list, email, first_name, last_name, coalesce(attributes, '{}'::jsonb), status
            FROM import_ranked WHERE line = first_line
        """
        params = {"account": account_id, "list": list_id}
        if mode == "skip":
            result = await self.session.execute(sa.text(insert_rows + " ON CONFLICT (list_id, email) DO NOTHING"), params)
            imported = result.rowcount
            return MergeCounts(imported=imported, updated=0, skipped=staged - imported)
        # update: the file's names and attributes win where the file has them; a status in the file
        # only ever moves someone off `subscribed` (an import never resubscribes a person who left).
        statement = f"""
            WITH merged AS (
                {insert_rows}
                ON CONFLICT (list_id, email) DO UPDATE SET
                    first_name = coalesce(EXCLUDED.first_name, s.first_name),
                    last_name = coalesce(EXCLUDED.last_name, s.last_name),
                    attributes = s.attributes || EXCLUDED.attributes,
                    status = CASE WHEN s.status = 'subscribed' THEN EXCLUDED.status ELSE s.status END,
                    updated_at = now()
                RETURNING (xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted) AS imported, count(*) FILTER (WHERE NOT inserted) AS updated
            FROM merged
        """
        counts = (await self.session.execute(sa.text(statement), params)).one()
        return MergeCounts(imported=counts.imported, updated=counts.updated, skipped=0)


def _job(row: sa.Row) -> ImportJob:
    return ImportJob(**row._mapping)


class SqlImportRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def add(self, account_id: str, list_id: int, mode: ImportMode, file_name: str) -> ImportJob | None:
        """The new queued job, or None when the list has an import queued or running."""
        statement = (
            insert(imports)
            .values(account_id=account_id, list_id=list_id, mode=mode, file_name=file_name)
            .on_conflict_do_nothing(
                index_elements=[imports.c.list_id], index_where=imports.c.status.in_(("queued", "running"))
            )
            .returning(*imports.c)
        )
        row = (await self.session.execute(statement)).first()
        return _job(row) if row else None

    async def get(self, account_id: str, job_id: int) -> ImportJob | None:
        statement = sa.select(imports).where(imports.c.id == job_id, imports.c.account_id == account_id)
        row = (await self.session.execute(statement)).first()
        return _job(row) if row else None

    async def running_on(self, list_id: int) -> bool:
        statement = sa.select(sa.exists().where(imports.c.list_id == list_id, imports.c.status.in_(("queued", "running"))))
        return bool((await self.session.execute(statement)).scalar_one())

    async def update(self, job_id: int, **values: Any) -> None:
        await self.session.execute(sa.update(imports).where(imports.c.id == job_id).values(**values))

    async def finish(self, job_id: int, **values: Any) -> None:
        await self.update(job_id, **values, finished_at=sa.func.now())

    async def fail_orphaned(self, detail: str) -> list[int]:
        """Mark failed every unfinished job whose import transaction is gone (its lock is free)."""
        # pg_try_advisory_xact_lock only where the cheap conditions already hold; the locks it takes
        # end with this transaction.
        orphaned = sa.and_(
            sa.or_(
                imports.c.status == "running",
                imports.c.created_at < sa.func.now() - sa.text(f"interval '{QUEUED_GRACE_SECONDS} seconds'"),
            ),
            sa.func.pg_try_advisory_xact_lock(IMPORT_LOCK_SPACE, _lock_key),
        )
        candidates = sa.select(imports.c.id).where(imports.c.status.in_(("queued", "running"))).cte("candidates")
        statement = (
            sa.update(imports)
            .where(imports.c.id.in_(sa.select(candidates.c.id)), orphaned)
            .values(status="failed", detail=detail, finished_at=sa.func.now())
            .returning(imports.c.id)
        )
        return list((await self.session.execute(statement)).scalars())

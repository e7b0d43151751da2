"""Import jobs and their staging area on PostgreSQL.

An import is one transaction (`SqlStagingArea`): each chunk of rows is merged into the list (COPY
for the addresses new to it, UPDATE … FROM a temporary table for the others) while the next chunk
is parsed; the rows that may repeat an earlier address wait in another temporary table and are
sorted out (merged, or reported as duplicates of their first line) at the end. Until it commits the
list is untouched; if the process dies, PostgreSQL rolls it back. That transaction holds an advisory
lock on the job, so a job row that says `running` while nobody holds its lock was orphaned by a
crash (`SqlImportRepository.fail_orphaned`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
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


def subscriber_copy_lines(account_id: str, list_id: int, rows: Sequence[ImportRow]) -> list[str]:
    """The rows as `subscribers` rows (account_id, list_id, email, first_name, last_name,
    attributes, status) in COPY's text format, a line each."""
    prefix = f"{_copy_field(account_id)}\t{list_id}\t"
    return [
        f"{prefix}{_copy_field(email)}\t{_copy_field(first)}\t{_copy_field(last)}\t"
        f"{'{}' if attrs is None else _copy_field(attrs)}\t{status}\n"
        for _line, email, first, last, status, attrs in rows
    ]


def line_copy_text(rows: Sequence[ImportRow]) -> bytes:
    """The rows' (line, email) in COPY's text format."""
    return "".join([f"{row[0]}\t{_copy_field(row[1])}\n" for row in rows]).encode()


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


@dataclass(frozen=True)
class CopyRows:
    """A chunk ready for `SqlStagingArea.merge`: its rows, each as a `subscribers` COPY line, and
    the (line, email) COPY text of all of them."""

    rows: Sequence[ImportRow]
    subscriber_lines: list[str]
    line_text: bytes


_lock_key = sa.cast(sa.func.mod(imports.c.id, 2147483647), sa.Integer)


# update mode, for an address the list has: the file's names and attributes win where the file has
# them; a status in the file only ever moves someone off `subscribed` (an import never resubscribes a
# person who left).
_UPDATE_SET = """
    first_name = coalesce({new}.first_name, s.first_name),
    last_name = coalesce({new}.last_name, s.last_name),
    attributes = s.attributes || coalesce({new}.attributes, '{{}}'::jsonb),
    status = CASE WHEN s.status = 'subscribed' THEN {new}.status ELSE s.status END,
    updated_at = now()
"""

_STAGED_COLUMNS = "line bigint NOT NULL, email text NOT NULL, first_name text, last_name text, status text NOT NULL, attributes jsonb"


class SqlStagingArea:
    """An import's rows on their way into the list, in the import's transaction. Each chunk's rows
    whose addresses are new to the list are COPYed straight into `subscribers` (its indexes and count
    trigger maintained as by any insert); those the list has are skipped or, in update mode, staged in
    the temporary `import_chunk` and updated from there. Two more temporary tables: `import_lines`,
    the line and address of every row merged so far; `import_repeats`, the rows that may repeat an
    earlier address, sorted out once the whole file is read. All three go at the transaction's end."""

    def __init__(self, session: AsyncSession):
        self.session = session
        self._repeats_held = 0
        self._list_was_empty = False
        self._list_id: int | None = None

    async def open(self, job_id: int, list_id: int) -> None:
        await self.session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:space, CAST(mod(:job, 2147483647) AS integer))"),
            {"space": IMPORT_LOCK_SPACE, "job": job_id},
        )
        # The list row locked FOR UPDATE: every other insert into the list's subscribers takes FOR
        # KEY SHARE on it (the foreign key check) and so waits for the import's commit. The addresses
        # the list has cannot grow behind the import's back, so the rows found new below can be
        # COPYed straight into `subscribers`: no second pass over them, no ON CONFLICT per row.
        await self.session.execute(sa.text("SELECT 1 FROM lists WHERE id = :list FOR UPDATE"), {"list": list_id})
        # A list empty now stays empty but for this import's own rows, and `merge` is only given rows
        # whose address no earlier row of the file had: none of them can be on the list, and the
        # probe for addresses it has (a million index lookups for a million-row file) is skipped.
        # A first import into a new list, the usual case, needs no probe at all.
        has_subscribers = sa.text("SELECT EXISTS (SELECT 1 FROM subscribers WHERE list_id = :list)")
        self._list_was_empty = not (await self.session.execute(has_subscribers, {"list": list_id})).scalar_one()
        self._list_id = list_id
        for table in ("import_chunk", "import_repeats"):
            await self.session.execute(sa.text(f"CREATE TEMPORARY TABLE {table} ({_STAGED_COLUMNS}) ON COMMIT DROP"))
        await self.session.execute(
            sa.text("CREATE TEMPORARY TABLE import_lines (line bigint NOT NULL, email text NOT NULL) ON COMMIT DROP")
        )
        self._repeats_held = 0

    async def _copy(self, table: str, rows: Sequence[ImportRow]) -> None:
        data = await asyncio.to_thread(copy_text, rows)
        await self._copy_text(f"COPY {table} (line, email, first_name, last_name, status, attributes) FROM STDIN", data)

    async def _copy_text(self, statement: str, data: bytes) -> None:
        pg = await _driver_connection(self.session)
        async with pg.cursor() as cursor:
            async with cursor.copy(statement) as copy:
                await copy.write(data)

    def prepare(self, account_id: str, list_id: int, rows: Sequence[ImportRow]) -> CopyRows:
        return CopyRows(rows, subscriber_copy_lines(account_id, list_id, rows), line_copy_text(rows))

    async def merge(self, mode: ImportMode, prepared: CopyRows) -> MergeCounts:
        rows = prepared.rows
        existing = set() if self._list_was_empty else await self._addresses_listed(rows)
        if existing:
            subscriber_lines = [line for row, line in zip(rows, prepared.subscriber_lines, strict=True) if row[1] not in existing]
        else:
            subscriber_lines = prepared.subscriber_lines
        if subscriber_lines:
            await self._copy_text(
                "COPY subscribers (account_id, list_id, email, first_name, last_name, attributes, status) FROM STDIN",
                "".join(subscriber_lines).encode(),
            )
        await self._copy_text("COPY import_lines (line, email) FROM STDIN", prepared.line_text)
        updated = 0
        if existing and mode == "update":
            await self._copy("import_chunk", [row for row in rows if row[1] in existing])
            updated = await self._update_existing()
            await self.session.execute(sa.text("TRUNCATE import_chunk"))
        imported = len(subscriber_lines)
        return MergeCounts(imported=imported, updated=updated, skipped=len(rows) - imported - updated)

    async def _addresses_listed(self, rows: Sequence[ImportRow]) -> set[str]:
        """Which of the rows' addresses the list has: one probe of (list_id, email) each. The list is
        locked (`open`), so the answer holds until the commit."""
        found = await self.session.execute(
            # One text parameter split by the server: psycopg adapting a 25,000-item list took more
            # Python time (py-spy) than formatting the chunk's COPY text. An address has no line break.
            sa.text(
                "SELECT email FROM subscribers WHERE list_id = :list AND email = ANY(string_to_array(:emails, E'\\n'))"
            ),
            {"list": self._list_id, "emails": "\n".join([row[1] for row in rows])},
        )
        return set(found.scalars())

    async def _update_existing(self) -> int:
        # The same rule as the ON CONFLICT DO UPDATE of `_merge_from`.
        result = await self.session.execute(
            sa.text(f"""
                UPDATE subscribers AS s SET {_UPDATE_SET.format(new="c")}
                FROM import_chunk AS c WHERE s.list_id = :list AND s.email = c.email
            """),
            {"list": self._list_id},
        )
        return result.rowcount

    async def hold(self, repeats: Sequence[ImportRow]) -> None:
        await self._copy("import_repeats", repeats)
        self._repeats_held += len(repeats)

    async def merge_repeats(
        self, account_id: str, list_id: int, mode: ImportMode, report_limit: int
    ) -> tuple[MergeCounts, DuplicateLines]:
        if not self._repeats_held:
            return MergeCounts(imported=0, updated=0, skipped=0), DuplicateLines(total=0, lines=[])
        # Each held row's address's first line in the file: among the merged rows (a hash semi-join of
        # the few held addresses against import_lines) and among the held rows themselves.
        await self.session.execute(sa.text("SET LOCAL work_mem = '64MB'"))
        await self.session.execute(
            sa.text(
                "CREATE TEMPORARY TABLE import_repeat_firsts ON COMMIT DROP AS "
                "SELECT r.line, f.first_line FROM import_repeats AS r JOIN ("
                "  SELECT email, min(line) AS first_line FROM ("
                "    SELECT line, email FROM import_repeats"
                "    UNION ALL"
                "    SELECT line, email FROM import_lines WHERE email IN (SELECT email FROM import_repeats)"
                "  ) AS occurrences GROUP BY email"
                ") AS f USING (email)"
            )
        )
        # A held row that is its address's first line was never a repeat (the filter could not tell).
        firsts = "(SELECT r.* FROM import_repeats AS r JOIN import_repeat_firsts AS f ON f.line = r.line AND f.first_line = r.line)"
        staged = (
            await self.session.execute(sa.text("SELECT count(*) FROM import_repeat_firsts WHERE line = first_line"))
        ).scalar_one()
        counts = await self._merge_from(f"{firsts} AS firsts", staged, account_id, list_id, mode)
        statement = sa.text(
            "SELECT line, first_line, count(*) OVER () AS total FROM import_repeat_firsts "
            "WHERE line <> first_line ORDER BY line LIMIT :limit"
        )
        rows = (await self.session.execute(statement, {"limit": report_limit})).all()
        # count(*) OVER () is taken before the LIMIT: every duplicate, not only the reported ones.
        duplicates = DuplicateLines(total=rows[0].total if rows else 0, lines=[(r.line, r.first_line) for r in rows])
        return counts, duplicates

    async def _merge_from(self, source: str, staged: int, account_id: str, list_id: int, mode: ImportMode) -> MergeCounts:
        # Sorted by address, the rows walk the list's (list_id, email) index in order, not at random.
        insert_rows = f"""
            INSERT INTO subscribers AS s (account_id, list_id, email, first_name, last_name, attributes, status)
            SELECT :account, :list, email, first_name, last_name, coalesce(attributes, '{{}}'::jsonb), status
            FROM {source} ORDER BY email
        """
        params = {"account": account_id, "list": list_id}
        if mode == "skip":
            result = await self.session.execute(sa.text(insert_rows + " ON CONFLICT (list_id, email) DO NOTHING"), params)
            imported = result.rowcount
            return MergeCounts(imported=imported, updated=0, skipped=staged - imported)
        statement = f"""
            WITH merged AS (
                {insert_rows}
                ON CONFLICT (list_id, email) DO UPDATE SET {_UPDATE_SET.format(new="EXCLUDED")}
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

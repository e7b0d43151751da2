"""The import's staging area on a real PostgreSQL, driven directly: the rows the address filter
could not rule out as repeats (`hold`) are sorted out exactly — a held row that is its address's
first line joins the list, the others are duplicates of that first line — and an import holds off
other inserts into its list until it commits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from audience.adapters.importing import SqlStagingArea

from .conftest import AccountClient

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def opened_staging(database_url: str, list_id: int) -> AsyncIterator[tuple[AsyncSession, SqlStagingArea]]:
    """An import transaction's staging area on the list, as the import opens it."""
    engine = create_async_engine(database_url)
    try:
        async with AsyncSession(engine) as session:
            staging = SqlStagingArea(session)
            await staging.open(job_id=1, list_id=list_id)
            yield session, staging
    finally:
        await engine.dispose()


def row(line: int, email: str, first_name: str | None = None) -> tuple:
    return (line, email, first_name, None, "subscribed", None)


@pytest.mark.parametrize("mode", ["skip", "update"])
async def test_held_rows_are_merged_when_first_and_reported_when_repeated(
    fresh_database: str, account: AccountClient, mode: str
) -> None:
    mailing_list = await account.new_list()
    await account.subscribe(mailing_list["id"], "old@example.com", first_name="Old")
    list_id = int(mailing_list["id"])
    async with opened_staging(fresh_database, list_id) as (session, staging):
        merged = await staging.merge(
            mode, staging.prepare(account.account_id, list_id, [row(2, "a@example.com", "A"), row(3, "old@example.com", "New")])
        )
        # fp@: a first occurrence the filter took for a repeat; the rest are real repeats.
        await staging.hold([row(4, "fp@example.com", "Fp"), row(5, "a@example.com"), row(6, "fp@example.com"),
                            row(7, "old@example.com")])  # fmt: skip
        held, duplicates = await staging.merge_repeats(account.account_id, list_id, mode, report_limit=10)
        await session.commit()

    assert duplicates.total == 3
    assert duplicates.lines == [(5, 2), (6, 4), (7, 3)]
    assert (held.imported, held.updated, held.skipped) == (1, 0, 0)
    if mode == "skip":
        assert (merged.imported, merged.updated, merged.skipped) == (1, 0, 1)
    else:
        assert (merged.imported, merged.updated, merged.skipped) == (1, 1, 0)
    page = await account.call("GET", f"/api/v1/lists/{list_id}/subscribers", 200)
    names = {s["email"]: s["first_name"] for s in page["items"]}
    assert names == {"a@example.com": "A", "fp@example.com": "Fp", "old@example.com": "Old" if mode == "skip" else "New"}
    listed = await account.call("GET", f"/api/v1/lists/{list_id}", 200)
    assert listed["subscriber_count"] == 3


async def test_an_insert_into_the_list_waits_for_the_import(fresh_database: str, account: AccountClient) -> None:
    mailing_list = await account.new_list()
    list_id = int(mailing_list["id"])
    async with opened_staging(fresh_database, list_id) as (session, staging):
        await staging.merge("skip", staging.prepare(account.account_id, list_id, [row(2, "both@example.com", "Import")]))
        added = asyncio.create_task(
            account.request("POST", f"/api/v1/lists/{list_id}/subscribers", json={"email": "both@example.com"})
        )
        await asyncio.sleep(1.0)
        assert not added.done()  # waiting on the list row the import holds
        await session.commit()
    answer = await asyncio.wait_for(added, 10)
    assert answer.status_code == 409, answer.text  # the import's row came first
    page = await account.call("GET", f"/api/v1/lists/{list_id}/subscribers", 200)
    assert [(s["email"], s["first_name"]) for s in page["items"]] == [("both@example.com", "Import")]

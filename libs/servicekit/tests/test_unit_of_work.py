"""UnitOfWork stages events in the outbox of its own transaction: committed together or not at all."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mailstify_contracts import FanoutCompleted, subjects
from mailstify_messaging import outbox
from mailstify_servicekit import SingleStatementUnitOfWork, UnitOfWork
from mailstify_servicekit.database import session_factory


async def outbox_rows(engine: AsyncEngine) -> list[sa.Row]:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(outbox.c.event_id, outbox.c.subject, outbox.c.msg_id))).all()


def an_event() -> FanoutCompleted:
    return FanoutCompleted(account_id="acc-1", campaign_id=f"cmp-{uuid.uuid4().hex[:8]}", total=3)


async def test_emit_and_commit_writes_the_outbox_row(engine):
    woken: list[bool] = []
    event, keyed = an_event(), an_event()

    async with UnitOfWork(session_factory(engine), on_events_committed=lambda: woken.append(True)) as uow:
        uow.emit(event, subjects.CAMPAIGN_FANOUT_COMPLETED)
        uow.emit(keyed, subjects.CAMPAIGN_FANOUT_COMPLETED, msg_id=f"fanout:{keyed.campaign_id}")
        await uow.commit()

    assert sorted(await outbox_rows(engine)) == sorted(
        [
            (event.event_id, subjects.CAMPAIGN_FANOUT_COMPLETED, str(event.event_id)),
            (keyed.event_id, subjects.CAMPAIGN_FANOUT_COMPLETED, f"fanout:{keyed.campaign_id}"),
        ]
    )
    assert woken == [True]  # the relay is told once per commit, not per event


async def test_emit_without_commit_writes_nothing(engine):
    woken: list[bool] = []

    async with UnitOfWork(session_factory(engine), on_events_committed=lambda: woken.append(True)) as uow:
        uow.emit(an_event(), subjects.CAMPAIGN_FANOUT_COMPLETED)

    with pytest.raises(RuntimeError):
        async with UnitOfWork(session_factory(engine)) as uow:
            uow.emit(an_event(), subjects.CAMPAIGN_FANOUT_COMPLETED)
            raise RuntimeError("the service layer failed half-way")

    assert await outbox_rows(engine) == []
    assert woken == []


async def test_events_share_the_fate_of_the_state_change(engine):
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE campaign (id text PRIMARY KEY)"))

    async with UnitOfWork(session_factory(engine)) as uow:
        await uow.session.execute(sa.text("INSERT INTO campaign VALUES ('c1')"))
        uow.emit(an_event(), subjects.CAMPAIGN_FANOUT_COMPLETED)
    async with UnitOfWork(session_factory(engine)) as uow:
        await uow.session.execute(sa.text("INSERT INTO campaign VALUES ('c2')"))
        uow.emit(an_event(), subjects.CAMPAIGN_FANOUT_COMPLETED)
        await uow.commit()

    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT id FROM campaign"))).scalars().all() == ["c2"]
    assert len(await outbox_rows(engine)) == 1


async def test_a_single_statement_unit_of_work_commits_its_statement_without_begin_and_commit(engine):
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE campaign (id text PRIMARY KEY)"))
    # One connection, so that the ordinary unit of work below gets the very one that was in autocommit.
    single = create_async_engine(engine.url.render_as_string(hide_password=False), pool_size=1, max_overflow=0)
    autocommit = session_factory(single.execution_options(isolation_level="AUTOCOMMIT"))
    woken: list[bool] = []

    async with SingleStatementUnitOfWork(autocommit, on_events_committed=lambda: woken.append(True)) as uow:
        await uow.session.execute(sa.text("INSERT INTO campaign VALUES ('c1')"))
        async with engine.connect() as other:  # no transaction is open: the row is everyone's already
            assert (await other.execute(sa.text("SELECT id FROM campaign"))).scalars().all() == ["c1"]
        with pytest.raises(TypeError):
            uow.emit(an_event(), subjects.CAMPAIGN_FANOUT_COMPLETED)  # would commit apart from the statement
        uow.outbox_written()
        await uow.commit()
    assert woken == [True]

    # The connection is back in transactions for the next ordinary unit of work.
    async with UnitOfWork(session_factory(single)) as uow:
        await uow.session.execute(sa.text("INSERT INTO campaign VALUES ('c2')"))
    await single.dispose()
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT id FROM campaign"))).scalars().all() == ["c1"]

"""Transactional outbox (ARCHITECTURE.md §6.1): an event is written in the same database transaction
as the state change that causes it, and a relay publishes it afterwards with `Nats-Msg-Id = event_id`.

If the relay dies after publishing but before its delete commits, the next relay publishes them again
and JetStream's duplicate window drops the copies, so each event reaches the stream exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from nats.js import JetStreamContext
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from mailstify_contracts import Event

from .publishing import OutgoingMessage, publish_many
from .tracing import inject_trace_headers, without_statement_spans

log = logging.getLogger(__name__)

OUTBOX_TABLE = "outbox"


def outbox_columns() -> list[sa.Column]:
    """The outbox's columns; used by each service's first migration (see `migrations.create_outbox`)."""
    return [
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("msg_id", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        # The writer's trace context, so the trace continues through the relay.
        sa.Column("headers", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


outbox = sa.Table(OUTBOX_TABLE, sa.MetaData(), *outbox_columns())


StagedEvent = tuple[Event, str] | tuple[Event, str, str | None]


class OutboxArrays:
    """Outbox rows as parallel arrays, so that a statement stages a whole batch of events set-wise —
    one `INSERT ... SELECT FROM unnest(...)` instead of one bound row each (an executemany of 200
    rows was a quarter of a mailer's database time). A writer that decides in the same statement
    which events to stage (e.g. only those of rows it actually updated) unnests these arrays beside
    its own, in the same `unnest(...)` call, so that they stay aligned:

        INSERT + " SELECT e.event_id, e.subject, e.msg_id, e.payload, " + HEADERS
        + " FROM unnest(CAST(:keys AS text[]), " + UNNEST_ARGS + ") AS e(key, " + COLUMNS + ") ..."

    A statement that stages two sets of events names the second (`unnest_args(name)`,
    `params(events, name)`); both share the one trace context of HEADERS.
    """

    @staticmethod
    def unnest_args(name: str) -> str:
        """The arrays bound by `params(events, name)`, as `unnest(...)` arguments."""
        return (
            f"CAST(:{name}_event_ids AS uuid[]), CAST(:{name}_subjects AS text[]), "
            f"CAST(:{name}_msg_ids AS text[]), CAST(:{name}_payloads AS bytea[])"
        )

    COLUMNS = "event_id, subject, msg_id, payload"
    UNNEST_ARGS = unnest_args("outbox")
    INSERT = f"INSERT INTO {OUTBOX_TABLE} ({COLUMNS}, headers)"
    # One transaction, one trace context: the same headers on every row.
    HEADERS = "CAST(:outbox_headers AS jsonb)"

    @staticmethod
    def params(events: Sequence[StagedEvent], name: str = "outbox") -> dict[str, object]:
        """The bind parameters of `events` ((event, subject[, msg_id]) each), with the current trace
        context injected once."""
        return {
            f"{name}_event_ids": [item[0].event_id for item in events],
            f"{name}_subjects": [item[1] for item in events],
            f"{name}_msg_ids": [_msg_id(*item) for item in events],
            f"{name}_payloads": [item[0].to_json() for item in events],
            "outbox_headers": json.dumps(inject_trace_headers()),
        }


def _msg_id(event: Event, _subject: str, msg_id: str | None = None) -> str:
    return msg_id or str(event.event_id)


_ADD_TO_OUTBOX = sa.text(
    f"{OutboxArrays.INSERT} SELECT {OutboxArrays.COLUMNS}, {OutboxArrays.HEADERS}"
    f" FROM unnest({OutboxArrays.UNNEST_ARGS}) AS e({OutboxArrays.COLUMNS})"
)


async def add_to_outbox(db: AsyncSession | AsyncConnection, events: Sequence[StagedEvent]) -> None:
    """Stage events in the caller's open transaction: (event, subject[, msg_id]) each, in one statement."""
    if events:
        await db.execute(_ADD_TO_OUTBOX, OutboxArrays.params(events))


@dataclass
class OutboxRelay:
    engine: AsyncEngine
    js: JetStreamContext
    batch_size: int = 500
    idle_interval: float = 0.2
    # After a wake-up, wait this long for more commits to join the batch: writers that commit often
    # (a mailer, every wave) would otherwise cost a select, a publish and a delete per commit.
    linger: float = 0.02
    publish_timeout: float = 10.0
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        """Called after a commit that staged events, so they leave now rather than at the next poll."""
        self._wakeup.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            # Cleared before reading the table, so a wake() during the batch is not lost.
            self._wakeup.clear()
            try:
                with without_statement_spans():  # the publish span links to every writer instead
                    published = await self.relay_batch()
            except Exception as exc:  # database or NATS briefly away: keep the rows, try again
                log.warning("outbox relay: %s", exc)
                published = 0
                await asyncio.sleep(1.0)
            if published < self.batch_size:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), self.idle_interval)
                    await asyncio.sleep(self.linger)
                except TimeoutError:
                    pass

    async def relay_batch(self) -> int:
        """Publish up to one batch; return how many rows left the outbox."""
        async with self.engine.begin() as conn:
            # The rows are deleted by the statement that reads them, and the publish decides the
            # commit: a failed publish rolls the delete back, the rows stay for the next try. One
            # statement rather than a select and a delete by id (500 ids were 500 bind parameters).
            # SKIP LOCKED: several replicas' relays share the table without waiting on each other.
            # Deleting rather than marking keeps the table tiny; the streams are the history.
            taken = (
                sa.select(outbox.c.id)
                .order_by(outbox.c.id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            rows = (
                await conn.execute(
                    sa.delete(outbox)
                    .where(outbox.c.id.in_(taken))
                    .returning(outbox.c.id, outbox.c.subject, outbox.c.msg_id, outbox.c.payload, outbox.c.headers)
                )
            ).all()
            if not rows:
                return 0
            rows.sort(key=lambda row: row.id)  # id order keeps one writer's events in commit order on the stream
            await publish_many(
                self.js,
                [OutgoingMessage(r.subject, r.payload, r.msg_id, dict(r.headers)) for r in rows],
                timeout=self.publish_timeout,
            )
        return len(rows)

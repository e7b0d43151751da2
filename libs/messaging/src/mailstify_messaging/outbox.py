"""Transactional outbox (ARCHITECTURE.md §6.1): an event is written in the same database transaction
as the state change that causes it, and a relay publishes it afterwards with `Nats-Msg-Id = event_id`.

If the relay dies after publishing but before deleting its rows, the next relay publishes them again
and JetStream's duplicate window drops the copies, so each event reaches the stream exactly once.
"""

from __future__ import annotations

import asyncio
import logging
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


def outbox_row(event: Event, subject: str, msg_id: str | None = None, *, headers: dict[str, str]) -> dict[str, object]:
    """`headers`: the writing transaction's trace context."""
    return {
        "event_id": event.event_id,
        "subject": subject,
        "msg_id": msg_id or str(event.event_id),
        "payload": event.to_json(),
        "headers": headers,
    }


async def add_to_outbox(
    db: AsyncSession | AsyncConnection, events: list[tuple[Event, str]] | list[tuple[Event, str, str]]
) -> None:
    """Stage events in the caller's open transaction: (event, subject[, msg_id]) each."""
    if events:
        headers = inject_trace_headers()  # one transaction, one context: injected once, not per row
        await db.execute(sa.insert(outbox), [outbox_row(*item, headers=headers) for item in events])


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
            # SKIP LOCKED: several replicas' relays share the table without waiting on each other;
            # id order keeps one writer's events in commit order on the stream.
            rows = (
                await conn.execute(
                    sa.select(outbox.c.id, outbox.c.subject, outbox.c.msg_id, outbox.c.payload, outbox.c.headers)
                    .order_by(outbox.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            await publish_many(
                self.js,
                [OutgoingMessage(r.subject, r.payload, r.msg_id, dict(r.headers)) for r in rows],
                timeout=self.publish_timeout,
            )
            # Deleting rather than marking keeps the table tiny; the streams are the history.
            await conn.execute(sa.delete(outbox).where(outbox.c.id.in_([r.id for r in rows])))
        return len(rows)

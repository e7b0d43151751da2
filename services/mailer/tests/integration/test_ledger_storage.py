"""A delivery row's two updates (claimed → sending → its outcome) are HOT: written beside the row on
its page, with no new entry in the primary key's index (migration 0005, decision record 0029)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_contracts import DeliverEmail, Recipient
from mailstify_devstack.inprocess import until

from mailer.adapters.ledger import SqlDeliveryLedger
from mailer.domain.model import DeliveryKey, Outcome, Status
from mailer.service_layer.handlers.delivery import delivered_report
from mailer.service_layer.ports import ClaimRequest, HeldClaim, RecordedOutcome

LEASE = 30.0
SENT = Outcome(Status.SENT, smtp_code=250, smtp_reply="2.0.0 Ok: queued as 4Xb9Tq0SzQz9vD")
CAMPAIGN = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
BATCHES = 4
BATCH = 200  # the default batch, in waves of half the default pool
WAVE = 16

_UPDATES = sa.text("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'deliveries'")


def delivery(n: int) -> DeliverEmail:
    subscriber_id = f"0b1f5e8a-3c2d-4f6e-9a7b-{n:012d}"
    recipient = Recipient(subscriber_id=subscriber_id, email=f"person.{n}@example.com")
    return DeliverEmail(account_id="a1", campaign_id=CAMPAIGN, content_key=CAMPAIGN, recipient=recipient)


async def test_a_deliverys_updates_stay_on_its_page(start_mailer):
    mailer = await start_mailer("127.0.0.1", 9)
    async with mailer.runtime.engine.connect() as connection:
        for first in range(0, BATCHES * BATCH, BATCH):
            events = [delivery(n) for n in range(first, first + BATCH)]
            ledger = SqlDeliveryLedger(AsyncSession(connection))
            requests = [
                ClaimRequest(DeliveryKey(CAMPAIGN, e.recipient.subscriber_id), "a1", e.recipient.email, f"<{n}@m>")
                for n, e in enumerate(events, first)
            ]
            claims = await ledger.claim(requests, LEASE)
            await connection.commit()
            held = [HeldClaim(c.key, c.attempts) for c in claims]
            # As the mailer settles waves: each statement records a wave and marks the next one `sending`.
            waves = [held[i : i + WAVE] for i in range(0, len(held), WAVE)]
            previous: list[RecordedOutcome] = []
            for wave in [*waves, []]:
                await ledger.settle_wave(previous, wave, LEASE)
                await connection.commit()
                previous = [
                    RecordedOutcome(h.key, h.attempts, SENT, delivered_report(events[0], SENT, "<m>")) for h in wave
                ]
        await connection.execute(sa.text("SELECT pg_stat_force_next_flush()"))
        await connection.commit()

    expected = 2 * BATCHES * BATCH

    async def counted() -> sa.Row | None:
        async with mailer.runtime.engine.connect() as reader:
            row = (await reader.execute(_UPDATES)).one()
        return row if row.n_tup_upd >= expected else None

    row = await until(counted, 10)
    assert row.n_tup_upd == expected
    assert row.n_tup_hot_upd >= 0.9 * expected, f"{row.n_tup_hot_upd} of {row.n_tup_upd} updates were HOT"

"""A wave's statement reports together the successes it recorded, per campaign (decision 0027), and
nothing of a row another replica settled meanwhile; driven against the real ledger, outbox and relay."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_contracts import DeliverEmail, DeliveriesSucceeded, DeliveryFailed, Recipient, subjects, topology
from mailstify_devstack.inprocess import stream_events

from mailer.adapters.ledger import SqlDeliveryLedger
from mailer.domain.model import DeliveryKey, Outcome, Status
from mailer.service_layer.handlers.delivery import delivered_report, result_event
from mailer.service_layer.ports import ClaimRequest, HeldClaim, RecordedOutcome

LEASE = 30.0
SENT = Outcome(Status.SENT, smtp_code=250, smtp_reply="2.0.0 queued")
REFUSED = Outcome(Status.FAILED, smtp_code=550, smtp_reply="5.1.1 no such user", permanent=True)


def delivery(campaign_id: str, subscriber_id: str) -> DeliverEmail:
    recipient = Recipient(subscriber_id=subscriber_id, email=f"{subscriber_id}@example.com")
    return DeliverEmail(account_id="a1", campaign_id=campaign_id, content_key=campaign_id, recipient=recipient)


def key(event: DeliverEmail) -> DeliveryKey:
    return DeliveryKey(event.campaign_id, event.recipient.subscriber_id)


async def test_a_wave_reports_together_only_the_successes_its_statement_recorded(start_mailer):
    # Nothing is published to MAIL: the mailer runs for its outbox relay; its SMTP server is never used.
    mailer = await start_mailer("127.0.0.1", 9)
    events = [delivery("c1", "s1"), delivery("c1", "s2"), delivery("c1", "s3"), delivery("c2", "s4")]
    async with AsyncSession(mailer.runtime.engine) as session:
        ledger = SqlDeliveryLedger(session)
        requests = [ClaimRequest(key(e), "a1", e.recipient.email, f"<{e.recipient.subscriber_id}@m>") for e in events]
        claims = await ledger.claim(requests, LEASE)
        held = [HeldClaim(c.key, c.attempts) for c in claims]
        assert (await ledger.settle_wave([], held, LEASE)).marked == {h.key for h in held}
        await session.commit()

    # Another replica took s2 over after our lease ran out, and recorded its verdict.
    await mailer.execute("UPDATE deliveries SET status = 'unknown' WHERE subscriber_id = 's2'")

    outcomes = [SENT, SENT, REFUSED, SENT]
    rows = [
        RecordedOutcome(
            h.key,
            h.attempts,
            outcome,
            delivered_report(e, outcome, f"<{h.key.subscriber_id}@m>")
            if outcome.status is Status.SENT
            else result_event(e, outcome, ""),
        )
        for e, h, outcome in zip(events, held, outcomes, strict=True)
    ]
    async with AsyncSession(mailer.runtime.engine) as session:
        settled = await SqlDeliveryLedger(session).settle_wave(rows, [], LEASE)
        await session.commit()
    assert settled.recorded == {h.key for h in held} - {DeliveryKey("c1", "s2")}

    published = await stream_events(mailer.js, topology.RESULT_STREAM.name, subjects.MAIL_RESULT_ALL, expected=3)
    together = sorted((e for e in published if isinstance(e, DeliveriesSucceeded)), key=lambda e: e.campaign_id)
    assert [(e.campaign_id, [(d.subscriber_id, d.message_id) for d in e.deliveries]) for e in together] == [
        ("c1", [("s1", "<s1@m>")]),
        ("c2", [("s4", "<s4@m>")]),
    ]
    assert all(e.account_id == "a1" and e.deliveries[0].smtp_reply == "2.0.0 queued" for e in together)
    (failed,) = [e for e in published if isinstance(e, DeliveryFailed)]
    assert failed.subscriber_id == "s3" and failed.smtp_code == 550
    assert len(published) == 3
    assert (await mailer.ledger("c1"))["s2"].status == "unknown"


async def test_a_wave_whose_successes_were_all_taken_over_reports_none(start_mailer):
    mailer = await start_mailer("127.0.0.1", 9)
    event = delivery("c3", "s1")
    async with AsyncSession(mailer.runtime.engine) as session:
        ledger = SqlDeliveryLedger(session)
        (claim,) = await ledger.claim([ClaimRequest(key(event), "a1", event.recipient.email, "<s1@m>")], LEASE)
        await ledger.settle_wave([], [HeldClaim(claim.key, claim.attempts)], LEASE)
        await session.commit()
    await mailer.execute("UPDATE deliveries SET status = 'unknown' WHERE campaign_id = 'c3'")

    row = RecordedOutcome(claim.key, claim.attempts, SENT, delivered_report(event, SENT, "<s1@m>"))
    async with AsyncSession(mailer.runtime.engine) as session:
        assert (await SqlDeliveryLedger(session).settle_wave([row], [], LEASE)).recorded == set()
        await session.commit()
    async with mailer.runtime.engine.connect() as conn:
        assert (await conn.exec_driver_sql("SELECT count(*) FROM outbox")).scalar_one() == 0
    assert await mailer.results("c3") == []

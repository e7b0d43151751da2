"""A DeliverEmail JetStream stops delivering becomes a DeliveryFailed (ARCHITECTURE §5): against real
PostgreSQL and NATS, through the max-deliveries advisory."""

from __future__ import annotations

import dataclasses

import pytest
from nats.js.errors import NotFoundError

from mailstify_contracts import DeliveryFailed, Recipient, topology
from mailstify_devstack.inprocess import until
from mailstify_messaging.topology import ensure_consumer

from mailer.service_layer.ports import GiveUp
from mailer.domain.model import OUTCOME_UNKNOWN_REASON, DeliveryKey
from mailer.adapters.unit_of_work import SqlMailerUnitOfWork

from .conftest import deliver, new_campaign_id

pytestmark = pytest.mark.integration


async def test_a_delivery_that_runs_out_of_deliveries_is_reported_failed_once(start_mailer, scripted_smtp):
    handler, port = scripted_smtp
    mailer = await start_mailer("127.0.0.1", port)
    # The server gives up after two deliveries while the mailer still counts on eight: it keeps putting
    # the message back (its content never appears), as it would on a "busy" nak on the last delivery.
    # The next mailer boot declares the consumer back to its usual configuration.
    await ensure_consumer(mailer.js, dataclasses.replace(topology.MAILER_DELIVERIES, max_deliver=2))
    campaign_id = new_campaign_id()
    (seq,) = await mailer.publish([deliver(campaign_id, Recipient(subscriber_id="1", email="late@example.com"))])

    (result,) = await mailer.wait_for_results(campaign_id, 1, timeout=30)
    assert isinstance(result, DeliveryFailed)
    assert (result.reason, result.permanent, result.hard_bounce) == ("gave up after 2 deliveries", False, False)
    assert (result.subscriber_id, result.email) == ("1", "late@example.com")
    row = (await mailer.ledger(campaign_id))["1"]
    assert (row.status, row.attempts) == ("failed", 2)

    async def deleted_from_the_work_queue() -> bool:
        try:
            await mailer.js.get_msg(topology.MAIL_STREAM.name, seq)
            return False
        except NotFoundError:
            return True

    await until(deleted_from_the_work_queue)
    # Reported once, and nothing went over the wire.
    assert len(await mailer.results(campaign_id)) == 1
    assert handler.received == []


async def test_giving_up_settles_only_rows_nobody_else_will(start_mailer, scripted_smtp):
    """The give-up statement row by row: absent and `retry` → failed, abandoned `sending` → unknown;
    terminal rows and a live lease are left as they are."""
    _, port = scripted_smtp
    mailer = await start_mailer("127.0.0.1", port)
    campaign_id = new_campaign_id()
    rows = {
        "retry": "'retry', 3, NULL",
        "abandoned": "'sending', 2, now() - interval '1 second'",
        "leased": "'sending', 2, now() + interval '1 minute'",
        "sent": "'sent', 1, NULL",
        "failed": "'failed', 1, NULL",
        "unknown": "'unknown', 1, NULL",
    }
    for subscriber_id, values in rows.items():
        await mailer.execute(
            "INSERT INTO deliveries (campaign_id, subscriber_id, account_id, email, status, attempts, lease_until)"
            f" VALUES (:c, :s, 'acc-1', 'x@example.com', {values})",
            c=campaign_id,
            s=subscriber_id,
        )

    written = {}
    for subscriber_id in ["absent", *rows]:
        async with SqlMailerUnitOfWork(mailer.runtime.new_transaction()) as uow:
            key = DeliveryKey(campaign_id, subscriber_id)
            status = await uow.deliveries.give_up(GiveUp(key, "acc-1", "x@example.com", "gave up after 8 deliveries"))
            written[subscriber_id] = status.value if status else None
            await uow.commit()

    assert written == {
        "absent": "failed",
        "retry": "failed",
        "abandoned": "unknown",
        "leased": None,
        "sent": None,
        "failed": None,
        "unknown": None,
    }
    ledger = await mailer.ledger(campaign_id)
    assert {sid: row.status for sid, row in ledger.items()} == {
        "absent": "failed",
        "retry": "failed",
        "abandoned": "unknown",
        "leased": "sending",
        "sent": "sent",
        "failed": "failed",
        "unknown": "unknown",
    }
    assert (ledger["absent"].attempts, ledger["absent"].smtp_reply) == (0, "gave up after 8 deliveries")
    assert ledger["abandoned"].smtp_reply == OUTCOME_UNKNOWN_REASON

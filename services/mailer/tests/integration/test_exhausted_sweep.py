"""A DeliverEmail JetStream gave up on while no mailer was running (its max-deliveries advisory, a
core-NATS message, reached nobody) is still reported once a mailer starts: by the sweep (defect B7).

Its own module, hence its own NATS server (`mailer_nats` is module-scoped): the sweep reads the
consumer's state, which messages left pending by other tests' mailers would blur."""

from __future__ import annotations

import contextlib
import json

import pytest
from nats.js.errors import NotFoundError

from mailstify_contracts import CampaignContent, DeliveryFailed, Recipient, subjects, topology
from mailstify_devstack.inprocess import until
from mailstify_messaging import OutgoingMessage, connect, ensure_topology, max_deliveries_subject, publish_many

from mailer.config import Settings

from .conftest import deliver, new_campaign_id

pytestmark = pytest.mark.integration

CONTENT = CampaignContent(subject="Hi", from_name="Acme", from_email="news@acme.test", body_html="<p>Hi</p>")


async def test_a_delivery_exhausted_while_no_mailer_runs_is_reported_when_one_starts(
    mailer_nats, fresh_database, start_mailer, scripted_smtp
):
    handler, port = scripted_smtp
    # The consumer as mailers declare it (max_deliver from their retry schedule).
    spec = Settings(database_url=fresh_database).deliveries_consumer
    campaign_id = new_campaign_id()
    nc = await connect(mailer_nats.url, name="exhausting-test")
    try:
        js = nc.jetstream()
        await ensure_topology(js, consumers=(spec,))
        bucket = await js.key_value(topology.CAMPAIGN_CONTENT.bucket)
        await bucket.put(campaign_id, CONTENT.model_dump_json().encode())
        event = deliver(campaign_id, Recipient(subscriber_id="1", email="nobody-listened@example.com"))
        msg_id = subjects.deliver_msg_id(campaign_id, "1")
        (ack,) = await publish_many(js, [OutgoingMessage.for_event(event, subjects.mail_deliver(campaign_id), msg_id)])
        seq = ack.seq

        # Stand in for mailers that kept failing on it and are all gone now: deliver it through the
        # mailers' durable and nak it until JetStream gives up. Its advisory reaches no mailer.
        advisories = await nc.subscribe(max_deliveries_subject(spec))
        pull = await js.pull_subscribe_bind(spec.durable, stream=spec.stream)
        for attempt in range(1, spec.max_deliver + 1):
            (msg,) = await pull.fetch(1, timeout=5)
            assert (msg.metadata.sequence.stream, msg.metadata.num_delivered) == (seq, attempt)
            await msg.nak()

        async def given_up() -> bool:
            # JetStream gives up on the message when it next tries to deliver it: keep asking.
            with contextlib.suppress(TimeoutError):
                assert await pull.fetch(1, timeout=0.25) == []
            info = await js.consumer_info(spec.stream, spec.durable)
            return info.num_ack_pending == 0 and info.num_pending == 0

        await until(given_up, timeout=10)
        advisory = await advisories.next_msg(timeout=5)
        assert json.loads(advisory.data)["stream_seq"] == seq
        await js.get_msg(spec.stream, seq)  # still stored: nobody handled it
        await pull.unsubscribe()
    finally:
        await nc.close()

    mailer = await start_mailer("127.0.0.1", port)
    (result,) = await mailer.wait_for_results(campaign_id, 1, timeout=20)
    assert isinstance(result, DeliveryFailed)
    assert (result.subscriber_id, result.email) == ("1", "nobody-listened@example.com")
    assert (result.reason, result.permanent, result.hard_bounce) == (
        f"gave up after {spec.max_deliver} deliveries",
        False,
        False,
    )
    row = (await mailer.ledger(campaign_id))["1"]
    assert row.status == "failed"

    async def deleted_from_the_work_queue() -> bool:
        try:
            await mailer.js.get_msg(spec.stream, seq)
            return False
        except NotFoundError:
            return True

    await until(deleted_from_the_work_queue)
    assert len(await mailer.results(campaign_id)) == 1
    assert handler.received == []

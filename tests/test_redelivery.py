"""Duplicates never become duplicate emails or double counts (ARCHITECTURE.md §6.2–3): after a real
send, the same DeliverEmail and the same DeliverySucceeded are delivered again — with fresh
`Nats-Msg-Id`s, so JetStream's de-duplication cannot hide them and the services' own idempotency
is what is tested."""

from __future__ import annotations

import uuid

import nats
import pytest

from mailstify_contracts import DeliverEmail, DeliverySucceeded, Recipient, subjects, topology
from mailstify_messaging import OutgoingMessage, publish_many

from mailstify_devstack.inprocess import consumed_up_to

from .conftest import Api, unique_subscribers, until

pytestmark = pytest.mark.e2e



async def test_redelivered_messages_send_and_count_nothing_twice(api: Api, mailstify_stack) -> None:
    people = unique_subscribers("Ada", "Grace", "Linus")
    mailing_list, subscribers = await api.new_list_with(people)
    campaign = await api.new_campaign(mailing_list["id"])
    await api.call("POST", f"/campaigns/{campaign['id']}/send", 202, json={})

    async def sent() -> bool:
        return (await api.call("GET", f"/campaigns/{campaign['id']}", 200))["status"] == "sent"

    await until(sent, timeout=60)
    account_id = (await api.call("GET", "/auth/me", 200))["account"]["id"]
    addresses = {p["email"] for p in people}

    def delivered_to_list() -> list[dict]:
        return [m for m in mailstify_stack.inbox.messages() if set(m["rcpt_tos"]) & addresses]

    assert len(delivered_to_list()) == 3

    copies: list[OutgoingMessage] = []
    for subscriber in subscribers:
        deliver = DeliverEmail(
            account_id=account_id,
            campaign_id=campaign["id"],
            content_key=campaign["id"],
            recipient=Recipient(
                subscriber_id=subscriber["id"], email=subscriber["email"], first_name=subscriber["first_name"]
            ),
        )
        succeeded = DeliverySucceeded(
            account_id=account_id,
            campaign_id=campaign["id"],
            subscriber_id=subscriber["id"],
            email=subscriber["email"],
            message_id=f"<{campaign['id']}.{subscriber['id']}@mailstify.test>",
            smtp_reply="250 OK",
        )
        for _ in range(2):
            copies.append(OutgoingMessage(subjects.mail_deliver(campaign["id"]), deliver.to_json(), uuid.uuid4().hex))
            copies.append(OutgoingMessage(subjects.MAIL_RESULT_SUCCEEDED, succeeded.to_json(), uuid.uuid4().hex))

    nc = await nats.connect(mailstify_stack.nats_url)
    try:
        js = nc.jetstream()
        acks = await publish_many(js, copies)
        # Every copy was stored (none dropped as a duplicate), so the services really receive them.
        assert len(acks) == len(copies) == 12 and not any(ack.duplicate for ack in acks)
        last_seq = {stream: max(a.seq for a in acks if a.stream == stream) for stream in {a.stream for a in acks}}
        assert set(last_seq) == {topology.MAILER_DELIVERIES.stream, topology.CAMPAIGN_RESULTS.stream}

        async def all_copies_consumed() -> bool:
            return await consumed_up_to(
                js, topology.MAILER_DELIVERIES, last_seq[topology.MAILER_DELIVERIES.stream]
            ) and await consumed_up_to(js, topology.CAMPAIGN_RESULTS, last_seq[topology.CAMPAIGN_RESULTS.stream])

        await until(all_copies_consumed, timeout=60)
    finally:
        await nc.close()

    final = await api.call("GET", f"/campaigns/{campaign['id']}", 200)
    assert (final["status"], final["total"], final["sent_count"], final["failed_count"]) == ("sent", 3, 3, 0)
    # The mailer sends before it acks, so a second send of any copy would be in the inbox by now.
    mails = delivered_to_list()
    assert sorted(m["rcpt_tos"][0] for m in mails) == sorted(addresses)
    deliveries = await api.call("GET", f"/campaigns/{campaign['id']}/deliveries?limit=100", 200)
    assert sorted(d["subscriber_id"] for d in deliveries["items"]) == sorted(s["id"] for s in subscribers)

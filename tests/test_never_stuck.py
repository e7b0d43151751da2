"""B7, through the gateway API with the five services running: a campaign whose message for one
recipient can never be built (its content key does not exist in the content bucket, so the mailer
retries "content not found" until its consumer's last delivery) still ends `sent`, with that recipient
failed and listed, and `unknown_count` / `last_error` in the API.

How the poisoned message gets into the real path: it is published to the stack's MAIL stream *before*
the send, under the msg id the dispatcher will use for that recipient (`deliver:{campaign}:{subscriber}`),
so JetStream's de-duplication drops the dispatcher's own copy and counts it published. The test
stack's mailer retries on a short schedule (`STACK_TEST_SETTINGS`), so its 5 deliveries take seconds.

A fan-out that cannot proceed (FanoutFailed → `failed` + `last_error`) is tested at the integration
level (services/dispatcher/tests/integration/test_fanout_gives_up.py and
services/campaign/tests/integration/test_never_stuck.py): the stack's audience service cannot be made
to fail on demand through the public API, and its default 10 attempts span minutes."""

from __future__ import annotations

import nats
import pytest

from mailstify_contracts import DeliverEmail, Recipient, subjects
from mailstify_messaging import OutgoingMessage, publish

from .conftest import Api, unique_subscribers, until

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(330)
async def test_a_recipient_whose_delivery_exhausts_is_failed_and_the_campaign_ends_sent(
    api: Api, mailstify_stack
) -> None:
    people = unique_subscribers("Ada", "Grace")
    mailing_list, (doomed, fine) = await api.new_list_with(people)
    campaign = await api.new_campaign(mailing_list["id"])
    account_id = (await api.call("GET", "/auth/me", 200))["account"]["id"]

    poisoned = DeliverEmail(
        account_id=account_id,
        campaign_id=campaign["id"],
        content_key=f"missing-{campaign['id']}",
        recipient=Recipient(subscriber_id=doomed["id"], email=doomed["email"], first_name=doomed["first_name"]),
    )
    nc = await nats.connect(mailstify_stack.nats_url)
    try:
        await publish(
            nc.jetstream(),
            OutgoingMessage(
                subjects.mail_deliver(campaign["id"]),
                poisoned.to_json(),
                subjects.deliver_msg_id(campaign["id"], doomed["id"]),
            ),
        )
    finally:
        await nc.close()
    await api.call("POST", f"/campaigns/{campaign['id']}/send", 202, json={})

    async def finished() -> dict | None:
        current = await api.call("GET", f"/campaigns/{campaign['id']}", 200)
        return current if current["status"] != "sending" else None

    final = await until(finished, timeout=300, interval=1.0)
    assert (final["status"], final["total"], final["sent_count"], final["failed_count"], final["unknown_count"]) == (
        "sent",
        2,
        1,
        1,
        0,
    )
    assert final["last_error"] is None

    failed = await api.call("GET", f"/campaigns/{campaign['id']}/deliveries", 200, params={"status": "failed"})
    ((row,),) = [failed["items"]]
    assert (row["subscriber_id"], row["email"]) == (doomed["id"], doomed["email"])
    assert "not found" in row["detail"]
    unknown = await api.call("GET", f"/campaigns/{campaign['id']}/deliveries", 200, params={"status": "unknown"})
    assert unknown["items"] == []
    sent = await api.call("GET", f"/campaigns/{campaign['id']}/deliveries", 200, params={"status": "sent"})
    assert [d["subscriber_id"] for d in sent["items"]] == [fine["id"]]

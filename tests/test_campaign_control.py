"""Campaign control end to end (issue 7, items 3–5 and 7), through the gateway's API with the real
dispatcher, mailer, NATS, PostgreSQL and SMTP inbox:

- pause mid-send: no new email reaches the SMTP server once the pause has had 5 s to take effect;
  resume: the campaign finishes with every subscriber exactly once;
- cancel mid-send: no further emails; sent + failed + unknown + cancelled == total, and `sent` is
  exactly what the SMTP server received;
- a test send arrives, marked [Test] and personalised, and the campaign's counts stay 0;
- retry-failed after a real 550: the recipient arrives exactly once and the counts move.

The lists are inserted straight into the audience database (the API adds one subscriber per request).
"""

from __future__ import annotations

import asyncio
import collections
import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from mailstify_devstack.pytest_plugin import MailstifyStack

from .conftest import Api, unique_subscribers, until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

RECIPIENTS = 3000
# A pause takes effect within this (the bound); the inbox is then watched for as long again.
SETTLE_SECONDS = 5.0


def seed(postgres_server, account_id: str, list_id: str, tag: str, count: int) -> None:
    conninfo = make_conninfo(postgres_server.admin_dsn, dbname="mailstify_audience")
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO subscribers (account_id, list_id, email, first_name)"
            " SELECT %s, %s, 'r' || lpad(n::text, 5, '0') || '.' || %s || '@example.com', 'R' || n"
            " FROM generate_series(1, %s) AS n ORDER BY n",
            (account_id, int(list_id), tag, count),
        )


def received(stack: MailstifyStack, tag: str) -> collections.Counter[str]:
    """Recipients of the test's campaign at the SMTP server, with how many mails each got."""
    return collections.Counter(r for m in stack.inbox.messages() for r in m["rcpt_tos"] if tag in r)


async def big_campaign(api: Api, stack: MailstifyStack, postgres_server) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    account_id = (await api.call("GET", "/auth/me", 200))["account"]["id"]
    mailing_list = await api.call("POST", "/lists", 201, json={"name": f"control {tag}"})
    await asyncio.to_thread(seed, postgres_server, account_id, mailing_list["id"], tag, RECIPIENTS)
    campaign = await api.new_campaign(mailing_list["id"])
    await api.call("POST", f"/campaigns/{campaign['id']}/send", 202, json={})

    async def under_way() -> int:
        return sum((await asyncio.to_thread(received, stack, tag)).values()) >= 100

    await until(under_way, timeout=60, interval=0.05)
    return campaign["id"], tag


async def quiet_after_settling(stack: MailstifyStack, tag: str) -> collections.Counter[str]:
    """The inbox once the change has had SETTLE_SECONDS to take effect; asserts nothing more arrives
    over the next SETTLE_SECONDS."""
    await asyncio.sleep(SETTLE_SECONDS)
    settled = await asyncio.to_thread(received, stack, tag)
    await asyncio.sleep(SETTLE_SECONDS)
    later = await asyncio.to_thread(received, stack, tag)
    assert later == settled, f"{sum(later.values()) - sum(settled.values())} emails arrived after the change"
    return settled


async def finished(api: Api, campaign_id: str, timeout: float = 120) -> dict:
    async def done() -> dict | None:
        campaign = await api.call("GET", f"/campaigns/{campaign_id}", 200)
        return campaign if campaign["finished_at"] else None

    return await until(done, timeout=timeout, interval=0.2)


async def test_pause_holds_every_replica_and_resume_sends_everyone_once(
    api: Api, mailstify_stack: MailstifyStack, postgres_server
) -> None:
    campaign_id, tag = await big_campaign(api, mailstify_stack, postgres_server)
    paused = await api.call("POST", f"/campaigns/{campaign_id}/pause", 202)
    assert paused["status"] == "paused"
    during_pause = await quiet_after_settling(mailstify_stack, tag)
    assert sum(during_pause.values()) < RECIPIENTS, "the campaign finished before the pause could hold it"
    assert (await api.call("GET", f"/campaigns/{campaign_id}", 200))["status"] == "paused"

    assert (await api.call("POST", f"/campaigns/{campaign_id}/resume", 202))["status"] == "sending"
    done = await finished(api, campaign_id)
    inbox = await asyncio.to_thread(received, mailstify_stack, tag)
    assert (done["status"], done["total"], done["sent_count"]) == ("sent", RECIPIENTS, RECIPIENTS)
    assert (done["failed_count"], done["unknown_count"], done["cancelled_count"]) == (0, 0, 0)
    assert len(inbox) == RECIPIENTS and set(inbox.values()) == {1}, "someone got no mail or two"


async def test_cancel_stops_sending_and_the_counts_add_up(
    api: Api, mailstify_stack: MailstifyStack, postgres_server
) -> None:
    campaign_id, tag = await big_campaign(api, mailstify_stack, postgres_server)
    assert (await api.call("POST", f"/campaigns/{campaign_id}/cancel", 202))["status"] == "cancelled"
    after_cancel = await quiet_after_settling(mailstify_stack, tag)
    done = await finished(api, campaign_id)
    counts = (done["sent_count"], done["failed_count"], done["unknown_count"], done["cancelled_count"])
    assert done["status"] == "cancelled"
    assert sum(counts) == done["total"], counts
    assert done["sent_count"] == len(after_cancel) and set(after_cancel.values()) == {1}
    assert done["cancelled_count"] > 0
    assert (await api.call("POST", f"/campaigns/{campaign_id}/resume", 409))["detail"] == (
        "cannot resume a campaign that is cancelled"
    )


async def test_a_test_send_arrives_marked_and_is_never_counted(api: Api, mailstify_stack: MailstifyStack) -> None:
    mailing_list, [ada] = await api.new_list_with(unique_subscribers("Ada"))
    campaign = await api.new_campaign(mailing_list["id"])
    to = f"tester.{uuid.uuid4().hex[:8]}@example.com"
    queued = await api.call(
        "POST", f"/campaigns/{campaign['id']}/test", 202, json={"emails": [to], "subscriber_id": ada["id"]}
    )
    assert queued["emails"] == [to]

    async def arrived() -> list[dict]:
        return [m for m in mailstify_stack.inbox.messages() if to in m["rcpt_tos"]]

    [mail] = await until(arrived, timeout=30)
    assert mail["subject"] == "[Test] Hello Ada"
    await asyncio.sleep(1)
    after = await api.call("GET", f"/campaigns/{campaign['id']}", 200)
    assert (after["status"], after["sent_count"], after["total"]) == ("draft", 0, None)
    too_many = await api.call("POST", f"/campaigns/{campaign['id']}/test", 422, json={"emails": [to] * 6})
    assert "emails" in str(too_many["detail"])


async def test_retry_failed_after_a_real_550_delivers_once_and_moves_the_counts(
    api: Api, mailstify_stack: MailstifyStack
) -> None:
    inbox = mailstify_stack.inbox
    subscribers = unique_subscribers("Ann", "Bob")
    bob = subscribers[1]["email"]
    mailing_list, _ = await api.new_list_with(subscribers)
    campaign = await api.new_campaign(mailing_list["id"])
    # A policy refusal, not a hard bounce: the address stays subscribed, so it can be retried.
    inbox.reject(bob, "550 5.7.1 Message refused by policy")
    try:
        await api.call("POST", f"/campaigns/{campaign['id']}/send", 202, json={})
        first = await finished(api, campaign["id"], timeout=60)
        assert (first["status"], first["sent_count"], first["failed_count"]) == ("sent", 1, 1)
    finally:
        inbox.accept(bob)

    retried = await api.call("POST", f"/campaigns/{campaign['id']}/retry-failed", 202, json={})
    assert (retried["status"], retried["failed_count"]) == ("sending", 0)
    done = await finished(api, campaign["id"], timeout=60)
    assert (done["status"], done["sent_count"], done["failed_count"], done["total"]) == ("sent", 2, 0, 2)
    ann = subscribers[0]["email"]
    mails = collections.Counter(r for m in inbox.messages() for r in m["rcpt_tos"] if r in (bob, ann))
    assert mails == {bob: 1, ann: 1}
    [delivery] = (await api.call("GET", f"/campaigns/{campaign['id']}/deliveries", 200, params={"q": bob}))["items"]
    assert (delivery["status"], delivery["round"]) == ("sent", 1)

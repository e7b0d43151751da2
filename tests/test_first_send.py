"""The core promise, end to end through the gateway: a campaign to three subscribers lands three
personalised emails in a real SMTP server and turns `sent` with exact counts."""

from __future__ import annotations

import pytest

from .conftest import Api, unique_subscribers, until

pytestmark = pytest.mark.e2e


async def test_campaign_reaches_every_subscriber_personalised_and_turns_sent(api: Api, mailstify_stack) -> None:
    people = unique_subscribers("Ada", "Grace", "Linus")
    mailing_list, _ = await api.new_list_with(people)
    campaign = await api.new_campaign(mailing_list["id"])
    assert campaign["status"] == "draft"

    accepted = await api.call("POST", f"/campaigns/{campaign['id']}/send", 202, json={})
    assert accepted["status"] == "sending"

    async def finished() -> dict | None:
        current = await api.call("GET", f"/campaigns/{campaign['id']}", 200)
        return current if current["status"] == "sent" else None

    sent = await until(finished, timeout=60)
    assert (sent["total"], sent["sent_count"], sent["failed_count"]) == (3, 3, 0)

    addresses = {p["email"] for p in people}
    mails = [m for m in mailstify_stack.inbox.messages() if set(m["rcpt_tos"]) & addresses]
    assert len(mails) == 3
    for person in people:
        (mail,) = [m for m in mails if m["rcpt_tos"] == [person["email"]]]
        assert mail["subject"] == f"Hello {person['first_name']}"
        assert f"Hi {person['first_name']}, welcome aboard!" in mail["html"]
        assert person["first_name"] in mail["text"]
        assert mail["message_id"].startswith(f"<{campaign['id']}.")


async def test_an_empty_campaign_is_refused_with_a_clear_message(api: Api) -> None:
    mailing_list, _ = await api.new_list_with(unique_subscribers("Ada"))
    campaign = await api.new_campaign(mailing_list["id"], body_html="   ")

    refused = await api.call("POST", f"/campaigns/{campaign['id']}/send", 422, json={})

    assert "empty" in refused["detail"]
    assert (await api.call("GET", f"/campaigns/{campaign['id']}", 200))["status"] == "draft"


async def test_a_campaign_cannot_be_sent_twice(api: Api, mailstify_stack) -> None:
    people = unique_subscribers("Ada")
    mailing_list, _ = await api.new_list_with(people)
    campaign = await api.new_campaign(mailing_list["id"])
    await api.call("POST", f"/campaigns/{campaign['id']}/send", 202, json={})

    second = await api.call("POST", f"/campaigns/{campaign['id']}/send", 409, json={})

    assert "already" in second["detail"]

    # Counted at the effect: one email, one recipient counted (a second fan-out would add either).
    async def finished() -> dict | None:
        current = await api.call("GET", f"/campaigns/{campaign['id']}", 200)
        return current if current["status"] == "sent" else None

    sent = await until(finished, timeout=60)
    assert (sent["total"], sent["sent_count"], sent["failed_count"]) == (1, 1, 0)
    third = await api.call("POST", f"/campaigns/{campaign['id']}/send", 409, json={})
    assert "already" in third["detail"]
    mails = [m for m in mailstify_stack.inbox.messages() if m["rcpt_tos"] == [people[0]["email"]]]
    assert len(mails) == 1

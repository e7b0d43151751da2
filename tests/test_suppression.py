"""A hard bounce suppresses the address on every list of the account (issue 6, item 4).

The session's dev inbox is told to answer `550 5.1.1 ... User unknown` to RCPT TO for one address
(its Mailpit-style rejections) and accepts every other one: a real SMTP refusal, the real mailer
classifying it as a hard bounce, the real audience consumer suppressing it.
"""

from __future__ import annotations

import collections
import uuid
from collections.abc import Iterator

import pytest

from mailstify_devstack.inbox import InboxClient

from .conftest import Api, until

pytestmark = pytest.mark.e2e

TAG = uuid.uuid4().hex[:8]
GONE = f"gone.{TAG}@example.com"
USER_UNKNOWN = f"550 5.1.1 <{GONE}>: Recipient address rejected: User unknown in virtual mailbox table"


@pytest.fixture
def inbox(mailstify_stack) -> Iterator[InboxClient]:
    """The stack's inbox, refusing GONE for the duration of the test."""
    mailstify_stack.inbox.reject(GONE, USER_UNKNOWN)
    try:
        yield mailstify_stack.inbox
    finally:
        mailstify_stack.inbox.accept(GONE)


def delivered(inbox: InboxClient) -> collections.Counter[str]:
    return collections.Counter(r for m in inbox.messages() for r in m["rcpt_tos"] if TAG in r)


async def _sent(api: Api, campaign_id: str) -> dict:
    async def finished() -> dict | None:
        current = await api.call("GET", f"/campaigns/{campaign_id}", 200)
        return current if current["status"] == "sent" else None

    return await until(finished, timeout=60)


async def _status(api: Api, list_id: str, subscriber_id: str) -> str:
    return (await api.call("GET", f"/lists/{list_id}/subscribers/{subscriber_id}", 200))["status"]


async def test_a_hard_bounce_suppresses_the_address_on_every_list(api: Api, inbox: InboxClient) -> None:
    kept, other = f"kept.{TAG}@example.com", f"other.{TAG}@example.com"
    first_list, (gone_first, _) = await api.new_list_with([{"email": GONE, "first_name": "Gone"}, {"email": kept}])
    second_list, (gone_second, other_member) = await api.new_list_with([{"email": GONE}, {"email": other}])

    campaign = await api.new_campaign(first_list["id"])
    await api.call("POST", f"/campaigns/{campaign['id']}/send", 202, json={})
    done = await _sent(api, campaign["id"])
    assert (done["sent_count"], done["failed_count"]) == (1, 1), done

    async def bounced_everywhere() -> bool:
        return (
            await _status(api, first_list["id"], gone_first["id"]) == "bounced"
            and await _status(api, second_list["id"], gone_second["id"]) == "bounced"
        )

    await until(bounced_everywhere, timeout=30)
    suppressed = await api.call("GET", "/suppressions", 200)
    assert [(s["email"], s["reason"]) for s in suppressed["items"]] == [(GONE, "bounced")]
    assert "550" in suppressed["items"][0]["detail"]
    assert (await api.call("GET", f"/lists/{second_list['id']}", 200))["counts"] == {"subscribed": 1, "bounced": 1}

    # The next campaign, to the other list, skips the address: it is not even a recipient.
    second = await api.new_campaign(second_list["id"])
    await api.call("POST", f"/campaigns/{second['id']}/send", 202, json={})
    done = await _sent(api, second["id"])
    assert (done["total"], done["sent_count"], done["failed_count"]) == (1, 1, 0), done
    deliveries = await api.call("GET", f"/campaigns/{second['id']}/deliveries", 200)
    assert [d["email"] for d in deliveries["items"]] == [other]
    assert delivered(inbox) == {kept: 1, other: 1}
    assert await _status(api, second_list["id"], other_member["id"]) == "subscribed"

    # Lifting the suppression lets the address be mailed again.
    await api.call("DELETE", f"/suppressions/{GONE}", 204)
    assert (await api.call("GET", "/suppressions", 200))["items"] == []
    assert await _status(api, first_list["id"], gone_first["id"]) == "subscribed"
    assert (await api.client.delete(f"/api/v1/suppressions/{GONE}")).status_code == 404


async def test_the_suppression_list_is_the_accounts_own(api: Api) -> None:
    page = await api.call("GET", "/suppressions", 200, params={"limit": 10})
    assert page == {"items": [], "next_cursor": None}
    for params in ({"limit": 0}, {"cursor": "nope!"}):
        assert (await api.client.get("/api/v1/suppressions", params=params)).status_code == 422

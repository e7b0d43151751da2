"""Unsubscribe, for real: the link in a sent campaign's `List-Unsubscribe` header, posted one-click
with no credentials, unsubscribes the recipient, counts once on the campaign, keeps them out of the
next campaign; altered or made-up tokens get one and the same 404."""

from __future__ import annotations

import email
import re
from email import policy

import httpx
import pytest

from .conftest import Api, unique_subscribers, until

pytestmark = pytest.mark.e2e


async def _sent(api: Api, campaign_id: str) -> dict:
    async def finished() -> dict | None:
        current = await api.call("GET", f"/campaigns/{campaign_id}", 200)
        return current if current["status"] == "sent" else None

    return await until(finished, timeout=60)


def _unsubscribe_token(mailstify_stack, address: str, campaign_id: str) -> str:
    (mail,) = [
        m
        for m in mailstify_stack.inbox.messages()
        if m["rcpt_tos"] == [address] and m["message_id"].startswith(f"<{campaign_id}.")
    ]
    parsed = email.message_from_bytes(mailstify_stack.inbox.raw(mail["id"]), policy=policy.default)
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    match = re.fullmatch(r"<(?P<url>[^>]+)>", str(parsed["List-Unsubscribe"]).strip())
    assert match, parsed["List-Unsubscribe"]
    url = httpx.URL(match["url"])
    assert url.path.startswith("/u/")
    return url.path[len("/u/") :]


def _altered(token: str) -> str:
    # The first character of the MAC, not the last: the last base64 character of a 16-byte MAC
    # carries only 2 bits, so changing it may leave the decoded MAC the same (a test that could pass
    # by luck, or fail by it).
    payload, mac = token.split(".")
    return f"{payload}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"


async def test_the_list_unsubscribe_link_unsubscribes_once_and_counts_once(api: Api, mailstify_stack) -> None:
    people = unique_subscribers("Ada", "Grace")
    mailing_list, (ada, grace) = await api.new_list_with(people)
    campaign = await api.new_campaign(mailing_list["id"])
    await api.call("POST", f"/campaigns/{campaign['id']}/send", 202, json={})
    await _sent(api, campaign["id"])
    token = _unsubscribe_token(mailstify_stack, ada["email"], campaign["id"])

    async with httpx.AsyncClient(base_url=mailstify_stack.gateway_url, timeout=30) as anonymous:
        shown = await anonymous.get(f"/u/{token}")
        assert shown.status_code == 200
        assert f'action="/u/{token}"' in shown.text and "<button" in shown.text
        # Showing the page changes nothing.
        still = await api.call("GET", f"/lists/{mailing_list['id']}/subscribers/{ada['id']}", 200)
        assert still["status"] == "subscribed"

        one_click = {"content-type": "application/x-www-form-urlencoded"}
        first = await anonymous.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click", headers=one_click)
        assert first.status_code == 200, first.text

        left = await api.call("GET", f"/lists/{mailing_list['id']}/subscribers/{ada['id']}", 200)
        assert left["status"] == "unsubscribed"
        stayed = await api.call("GET", f"/lists/{mailing_list['id']}/subscribers/{grace['id']}", 200)
        assert stayed["status"] == "subscribed"

        async def counted() -> dict | None:
            current = await api.call("GET", f"/campaigns/{campaign['id']}", 200)
            return current if current["unsubscribe_count"] == 1 else None

        await until(counted, timeout=30)

        again = await anonymous.post(f"/u/{token}")  # no body at all is fine too
        assert again.status_code == 200, again.text

        altered = await anonymous.post(f"/u/{_altered(token)}")
        garbage = await anonymous.post("/u/garbage")
        garbage_page = await anonymous.get("/u/not-a-token")
        assert altered.status_code == garbage.status_code == garbage_page.status_code == 404
        assert altered.content == garbage.content == garbage_page.content

    # The next campaign to the list skips Ada.
    second = await api.new_campaign(mailing_list["id"], name="Second")
    await api.call("POST", f"/campaigns/{second['id']}/send", 202, json={})
    assert (await _sent(api, second["id"]))["total"] == 1

    # The second click was counted nowhere (its event, if any, would have landed by now).
    assert (await api.call("GET", f"/campaigns/{campaign['id']}", 200))["unsubscribe_count"] == 1

"""The dispatcher's recipients cursor: keyset pages of subscribed members under a pinned snapshot."""

from __future__ import annotations

import pytest

from .conftest import AccountClient

pytestmark = pytest.mark.integration


async def _page(account: AccountClient, list_id: str, **params: object) -> dict:
    return await account.call("GET", f"/internal/lists/{list_id}/recipients", 200, params=params)


async def test_pages_hold_only_subscribed_members_up_to_the_snapshot(account: AccountClient) -> None:
    mailing_list = await account.new_list()
    list_id = mailing_list["id"]
    members = [
        await account.subscribe(list_id, f"r{n}@example.com", first_name=f"R{n}", attributes={"n": n}) for n in range(5)
    ]
    unsubscribed = members[2]
    await account.call(
        "PATCH", f"/api/v1/lists/{list_id}/subscribers/{unsubscribed['id']}", 200, json={"status": "unsubscribed"}
    )

    first = await _page(account, list_id, limit=2)
    assert first["up_to"] == members[-1]["id"]
    assert [item["subscriber_id"] for item in first["items"]] == [members[0]["id"], members[1]["id"]]
    assert first["items"][0] == {
        "subscriber_id": members[0]["id"],
        "email": "r0@example.com",
        "first_name": "R0",
        "last_name": None,
        "attributes": {"n": 0},
    }
    assert first["next_after"] == members[1]["id"]

    # Joins during the send are not part of it.
    late = await account.subscribe(list_id, "late@example.com")

    collected = [item["subscriber_id"] for item in first["items"]]
    after = first["next_after"]
    while after is not None:
        page = await _page(account, list_id, limit=2, after=after, up_to=first["up_to"])
        assert page["up_to"] == first["up_to"]
        collected += [item["subscriber_id"] for item in page["items"]]
        after = page["next_after"]
    assert collected == [m["id"] for m in members if m is not unsubscribed]
    assert late["id"] not in collected

    # A new send takes a new snapshot, which includes the late joiner.
    fresh = await _page(account, list_id, limit=5000)
    assert fresh["up_to"] == late["id"] and fresh["next_after"] is None
    assert [item["subscriber_id"] for item in fresh["items"]][-1] == late["id"]


async def test_an_empty_list_has_one_empty_last_page(account: AccountClient) -> None:
    mailing_list = await account.new_list()
    page = await _page(account, mailing_list["id"])
    assert page == {"items": [], "up_to": "0", "next_after": None}


async def test_a_page_exactly_full_at_the_end_is_the_last_one(account: AccountClient) -> None:
    mailing_list = await account.new_list()
    for n in range(2):
        await account.subscribe(mailing_list["id"], f"x{n}@example.com")
    page = await _page(account, mailing_list["id"], limit=2)
    assert len(page["items"]) == 2 and page["next_after"] is None


async def test_bad_recipient_paging_input_is_a_422(account: AccountClient) -> None:
    mailing_list = await account.new_list()
    for params in ({"limit": 0}, {"limit": 5001}, {"after": "x"}, {"up_to": "-3"}):
        answer = await account.request("GET", f"/internal/lists/{mailing_list['id']}/recipients", params=params)
        assert answer.status_code == 422, f"{params}: {answer.text}"

"""Lists and subscribers through the audience's HTTP API, against real PostgreSQL."""

from __future__ import annotations

import pytest

from .conftest import AccountClient

pytestmark = pytest.mark.integration


async def test_a_new_list_is_empty_and_can_be_read_back(account: AccountClient) -> None:
    created = await account.call("POST", "/api/v1/lists", 201, json={"name": " Weekly ", "description": "news"})
    assert created["name"] == "Weekly" and created["description"] == "news"
    assert created["subscriber_count"] == 0 and isinstance(created["id"], str)
    assert await account.call("GET", f"/api/v1/lists/{created['id']}", 200) == created


async def test_list_names_are_unique_within_an_account_only(account: AccountClient, other_account: AccountClient):
    await account.new_list("Newsletter")
    duplicate = await account.request("POST", "/api/v1/lists", json={"name": "Newsletter"})
    assert duplicate.status_code == 409 and "already exists" in duplicate.json()["detail"]
    await other_account.new_list("Newsletter")


async def test_adding_a_subscriber_normalises_the_email(account: AccountClient) -> None:
    mailing_list = await account.new_list()
    added = await account.subscribe(
        mailing_list["id"], "  Ann.Lee@Example.COM ", first_name="Ann", attributes={"plan": "pro"}
    )
    assert added["email"] == "ann.lee@example.com"
    assert added["status"] == "subscribed"
    assert added["list_id"] == mailing_list["id"]
    assert (added["first_name"], added["last_name"], added["attributes"]) == ("Ann", None, {"plan": "pro"})
    again = await account.call("GET", f"/api/v1/lists/{mailing_list['id']}", 200)
    assert again["subscriber_count"] == 1


async def test_the_same_email_twice_on_a_list_is_a_conflict(account: AccountClient) -> None:
    mailing_list = await account.new_list()
    await account.subscribe(mailing_list["id"], "bob@example.com")
    duplicate = await account.request(
        "POST", f"/api/v1/lists/{mailing_list['id']}/subscribers", json={"email": "BOB@example.com"}
    )
    assert duplicate.status_code == 409
    assert duplicate.json() == {"detail": "bob@example.com is already on this list"}
    # On another list the same person is welcome.
    await account.subscribe((await account.new_list())["id"], "bob@example.com")


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email"},
        {"email": ""},
        {"email": "a@b@example.com"},
        {},
        {"email": "x@example.com", "extra": 1},
    ],
)
async def test_invalid_subscribers_are_refused_with_a_reason(account: AccountClient, body: dict) -> None:
    mailing_list = await account.new_list()
    refused = await account.request("POST", f"/api/v1/lists/{mailing_list['id']}/subscribers", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"]


async def test_invalid_list_input_is_refused_with_a_reason(account: AccountClient) -> None:
    for body in ({"name": "   "}, {"name": "x" * 201}, {}):
        refused = await account.request("POST", "/api/v1/lists", json=body)
        assert refused.status_code == 422, refused.text
    mailing_list = await account.new_list()
    refused = await account.request("PATCH", f"/api/v1/lists/{mailing_list['id']}", json={"name": None})
    assert refused.status_code == 422 and refused.json()["detail"] == "list name must not be empty"


async def test_another_accounts_list_and_subscribers_are_not_found(
    account: AccountClient, other_account: AccountClient
) -> None:
    mailing_list = await account.new_list()
    subscriber = await account.subscribe(mailing_list["id"], "carol@example.com")
    list_path = f"/api/v1/lists/{mailing_list['id']}"
    subscriber_path = f"{list_path}/subscribers/{subscriber['id']}"
    for method, path, body in [
        ("GET", list_path, None),
        ("PATCH", list_path, {"name": "mine now"}),
        ("DELETE", list_path, None),
        ("GET", f"{list_path}/subscribers", None),
        ("POST", f"{list_path}/subscribers", {"email": "mallory@example.com"}),
        ("GET", subscriber_path, None),
        ("PATCH", subscriber_path, {"status": "unsubscribed"}),
        ("DELETE", subscriber_path, None),
        ("GET", f"/internal/lists/{mailing_list['id']}/recipients", None),
    ]:
        answer = await other_account.request(method, path, json=body)
        assert answer.status_code == 404, f"{method} {path}: {answer.status_code}"
    # Nothing changed for the owner.
    assert (await account.call("GET", subscriber_path, 200))["status"] == "subscribed"
    assert (await account.call("GET", f"{list_path}/subscribers", 200))["items"] == [subscriber]
    assert (await other_account.call("GET", "/api/v1/lists", 200))["items"] == []


async def test_ids_that_cannot_exist_are_not_found(account: AccountClient) -> None:
    for path in ("/api/v1/lists/abc", "/api/v1/lists/0", "/api/v1/lists/99999999999999999999999"):
        assert (await account.request("GET", path)).status_code == 404


async def test_requests_without_the_internal_token_are_refused(audience_http, account: AccountClient) -> None:
    mailing_list = await account.new_list()
    spoofed = await audience_http.get(
        f"/api/v1/lists/{mailing_list['id']}", headers={"X-Mailstify-Account": account.account_id}
    )
    assert spoofed.status_code == 401


async def test_lists_page_by_cursor(account: AccountClient) -> None:
    created = [await account.new_list(f"list {n}") for n in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await account.call("GET", "/api/v1/lists", 200, params=params)
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [item["id"] for item in created]


async def test_bad_paging_input_is_a_422(account: AccountClient) -> None:
    mailing_list = await account.new_list()
    path = f"/api/v1/lists/{mailing_list['id']}/subscribers"
    for params in ({"limit": 0}, {"limit": 100000}, {"cursor": "garbage!"}, {"status": "active"}):
        answer = await account.request("GET", path, params=params)
        assert answer.status_code == 422, f"{params}: {answer.text}"
        assert answer.json()["detail"]


async def test_subscribers_are_filtered_by_status_and_text(account: AccountClient) -> None:
    mailing_list = await account.new_list()
    list_id = mailing_list["id"]
    ann = await account.subscribe(list_id, "ann@example.com", first_name="Ann", last_name="Lee")
    bob = await account.subscribe(list_id, "bob@example.org", first_name="Bob")
    pct = await account.subscribe(list_id, "100%real@example.net")
    bob_path = f"/api/v1/lists/{list_id}/subscribers/{bob['id']}"
    await account.call("PATCH", bob_path, 200, json={"status": "unsubscribed"})

    async def ids(**params: str) -> list[str]:
        page = await account.call("GET", f"/api/v1/lists/{list_id}/subscribers", 200, params=params)
        return [item["id"] for item in page["items"]]

    assert await ids() == [ann["id"], bob["id"], pct["id"]]
    assert await ids(status="subscribed") == [ann["id"], pct["id"]]
    assert await ids(status="unsubscribed") == [bob["id"]]
    assert await ids(q="LEE") == [ann["id"]]
    assert await ids(q="example.org") == [bob["id"]]
    assert await ids(q="%") == [pct["id"]]  # a literal percent sign, not a wildcard
    assert await ids(q="bob", status="subscribed") == []
    assert (await account.call("GET", f"/api/v1/lists/{list_id}", 200))["subscriber_count"] == 2


async def test_subscribers_page_by_cursor_with_a_filter(account: AccountClient) -> None:
    mailing_list = await account.new_list()
    added = [await account.subscribe(mailing_list["id"], f"p{n}@example.com") for n in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "q": "p", **({"cursor": cursor} if cursor else {})}
        page = await account.call("GET", f"/api/v1/lists/{mailing_list['id']}/subscribers", 200, params=params)
        seen += [item["id"] for item in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == [item["id"] for item in added]


async def test_updating_a_subscriber(account: AccountClient) -> None:
    mailing_list = await account.new_list()
    path = f"/api/v1/lists/{mailing_list['id']}/subscribers"
    dan = await account.subscribe(mailing_list["id"], "dan@example.com", first_name="Dan", attributes={"a": 1})
    await account.subscribe(mailing_list["id"], "eve@example.com")

    updated = await account.call(
        "PATCH", f"{path}/{dan['id']}", 200, json={"last_name": "Brown", "attributes": {"b": 2}, "first_name": None}
    )
    assert (updated["first_name"], updated["last_name"], updated["attributes"]) == (None, "Brown", {"b": 2})
    assert updated["email"] == "dan@example.com" and updated["updated_at"] >= dan["updated_at"]

    taken = await account.request("PATCH", f"{path}/{dan['id']}", json={"email": "EVE@example.com"})
    assert taken.status_code == 409
    invalid = await account.request("PATCH", f"{path}/{dan['id']}", json={"email": "nope"})
    assert invalid.status_code == 422
    by_hand = await account.request("PATCH", f"{path}/{dan['id']}", json={"status": "bounced"})
    assert by_hand.status_code == 422 and "recorded by delivery" in by_hand.json()["detail"]

    moved = await account.call("PATCH", f"{path}/{dan['id']}", 200, json={"email": "Daniel@Example.com"})
    assert moved["email"] == "daniel@example.com"
    assert (await account.call("GET", f"{path}/{dan['id']}", 200)) == moved


async def test_deleting_subscribers_and_lists(account: AccountClient) -> None:
    mailing_list = await account.new_list()
    list_path = f"/api/v1/lists/{mailing_list['id']}"
    gone = await account.subscribe(mailing_list["id"], "gone@example.com")
    kept = await account.subscribe(mailing_list["id"], "kept@example.com")
    await account.call("DELETE", f"{list_path}/subscribers/{gone['id']}", 204)
    assert (await account.request("GET", f"{list_path}/subscribers/{gone['id']}")).status_code == 404
    # The address may join again after removal.
    await account.subscribe(mailing_list["id"], "gone@example.com")

    await account.call("DELETE", list_path, 204)
    assert (await account.request("GET", list_path)).status_code == 404
    assert (await account.request("GET", f"{list_path}/subscribers/{kept['id']}")).status_code == 404
    assert (await account.request("DELETE", list_path)).status_code == 404

"""The internal unsubscribe route the gateway's public link calls: idempotent, account-scoped, and
never reachable through the public edge."""

from __future__ import annotations

import pytest

from mailstify_servicekit import PUBLIC_HEADER

from .conftest import AccountClient

pytestmark = pytest.mark.integration


async def test_unsubscribing_is_idempotent_and_scoped_to_the_account(
    account: AccountClient, other_account: AccountClient
) -> None:
    mailing_list = await account.new_list()
    member = await account.subscribe(mailing_list["id"], "leaver@example.com")
    path = f"/internal/subscribers/{member['id']}/unsubscribe"

    assert (await other_account.request("POST", path, json={"campaign_id": "c1"})).status_code == 404
    first = await account.call("POST", path, 200, json={"campaign_id": "c1"})
    second = await account.call("POST", path, 200)

    assert first == {"subscriber_id": member["id"], "status": "unsubscribed", "changed": True}
    assert second == {"subscriber_id": member["id"], "status": "unsubscribed", "changed": False}
    shown = await account.call("GET", f"/api/v1/lists/{mailing_list['id']}/subscribers/{member['id']}", 200)
    assert shown["status"] == "unsubscribed"
    for missing in ("999999", "test:x", "abc"):
        assert (await account.request("POST", f"/internal/subscribers/{missing}/unsubscribe")).status_code == 404


async def test_the_route_refuses_requests_relayed_from_the_public_edge(account: AccountClient) -> None:
    mailing_list = await account.new_list()
    member = await account.subscribe(mailing_list["id"], "kept@example.com")
    relayed = await account.http.post(
        f"/internal/subscribers/{member['id']}/unsubscribe", headers={**account.headers, PUBLIC_HEADER: "1"}
    )
    assert relayed.status_code == 403

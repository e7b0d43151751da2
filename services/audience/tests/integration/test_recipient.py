"""One subscriber's merge fields for a campaign preview: the shape of a recipients-cursor item."""

from __future__ import annotations

import pytest

from .conftest import AccountClient

pytestmark = pytest.mark.integration


def _path(list_id: str, subscriber_id: str) -> str:
    return f"/internal/lists/{list_id}/subscribers/{subscriber_id}/recipient"


async def test_a_subscriber_on_the_list_is_returned_as_a_recipient(account: AccountClient) -> None:
    mailing_list = await account.new_list()
    ada = await account.subscribe(mailing_list["id"], "ada@example.com", first_name="Ada", attributes={"plan": "pro"})

    found = await account.call("GET", _path(mailing_list["id"], ada["id"]), 200)

    assert found == {
        "subscriber_id": ada["id"],
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": None,
        "attributes": {"plan": "pro"},
    }


async def test_not_on_that_list_or_not_the_accounts_is_404(account: AccountClient, other_account: AccountClient) -> None:
    mailing_list, other_list = await account.new_list(), await account.new_list()
    ada = await account.subscribe(mailing_list["id"], "ada@example.com")

    assert (await account.request("GET", _path(other_list["id"], ada["id"]))).status_code == 404
    assert (await account.request("GET", _path(mailing_list["id"], "nope"))).status_code == 404
    assert (await other_account.request("GET", _path(mailing_list["id"], ada["id"]))).status_code == 404

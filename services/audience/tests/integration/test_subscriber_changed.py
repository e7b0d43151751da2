"""Live changes: one SubscriberChanged per subscriber added, updated or removed, and one per import
(not one per row), through the outbox onto the CAMPAIGN stream."""

from __future__ import annotations

import nats
import pytest

from mailstify_contracts import SubscriberChanged, subjects, topology
from mailstify_devstack.inprocess import stream_events, until

from .conftest import AccountClient

pytestmark = pytest.mark.integration


async def test_each_change_is_announced_once_and_an_import_once_in_all(account: AccountClient, nats_server) -> None:
    mailing_list = await account.new_list()
    list_id = mailing_list["id"]
    ann = await account.subscribe(list_id, "ann@example.com")
    await account.call("PATCH", f"/api/v1/lists/{list_id}/subscribers/{ann['id']}", 200, json={"first_name": "Ann"})
    await account.call("DELETE", f"/api/v1/lists/{list_id}/subscribers/{ann['id']}", 204)
    content = b"email\n" + b"".join(b"p%d@example.com\n" % n for n in range(300))
    started = await account.call(
        "POST", f"/api/v1/lists/{list_id}/imports", 202, files={"file": ("p.csv", content, "text/csv")}
    )

    async def completed() -> bool:
        return (await account.call("GET", f"/api/v1/imports/{started['id']}", 200))["status"] == "completed"

    await until(completed)

    client = await nats.connect(nats_server.url)

    async def announced() -> list[SubscriberChanged] | None:
        # The session's stream also holds other tests' events: read until this account's four are in.
        events = await stream_events(
            client.jetstream(), topology.CAMPAIGN_STREAM.name, subjects.AUDIENCE_SUBSCRIBER_CHANGED, idle=0.3
        )
        mine = [e for e in events if isinstance(e, SubscriberChanged) and e.account_id == account.account_id]
        return mine if len(mine) >= 4 else None

    try:
        mine = await until(announced, timeout=20)
    finally:
        await client.close()
    assert [(e.change, e.subscriber_id) for e in mine] == [
        ("added", ann["id"]),
        ("updated", ann["id"]),
        ("removed", ann["id"]),
        ("imported", None),
    ]
    assert (mine[-1].list_id, mine[-1].import_id, mine[-1].imported) == (list_id, started["id"], 300)

"""The audience service, as the campaign service sees it: does a list exist, and how many
subscribed subscribers does it have; and one subscriber's merge fields (previews)."""

from __future__ import annotations

from urllib.parse import quote

from mailstify_contracts import Recipient
from mailstify_servicekit import InternalClient, NotFound

from ..service_layer.ports import ListInfo


class AudienceLists:
    def __init__(self, client: InternalClient):
        self._client = client

    async def find_list(self, account_id: str, list_id: str) -> ListInfo | None:
        try:
            body = await self._client.get_json(f"/api/v1/lists/{quote(list_id, safe='')}", account_id)
        except NotFound:
            return None
        return ListInfo(id=str(body["id"]), subscriber_count=int(body["subscriber_count"]))

    async def find_recipient(self, account_id: str, list_id: str, subscriber_id: str) -> Recipient | None:
        path = f"/internal/lists/{quote(list_id, safe='')}/subscribers/{quote(subscriber_id, safe='')}/recipient"
        try:
            item = await self._client.get_json(path, account_id)
        except NotFound:
            return None
        # The same mapping as the dispatcher's fan-out, so the preview renders what the mailer renders.
        return Recipient(
            subscriber_id=str(item["subscriber_id"]),
            email=item["email"],
            first_name=item.get("first_name"),
            last_name=item.get("last_name"),
            attributes=item.get("attributes") or {},
        )

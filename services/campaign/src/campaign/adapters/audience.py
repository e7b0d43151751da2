"""The audience service, as the campaign service sees it: does a list exist, and how many
subscribed subscribers does it have."""

from __future__ import annotations

from urllib.parse import quote

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

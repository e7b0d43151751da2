"""The audience service's recipients cursor (internal contract, see the project preamble)."""

from __future__ import annotations

from urllib.parse import quote

from mailstify_contracts import Recipient
from mailstify_servicekit import InternalClient, NotFound

from ..service_layer.ports import RecipientPage


class AudienceRecipients:
    def __init__(self, client: InternalClient):
        self._client = client

    async def page(
        self, account_id: str, list_id: str, *, after: str | None, up_to: str | None, limit: int
    ) -> RecipientPage | None:
        params: dict[str, str | int] = {"limit": limit}
        if after is not None:
            params["after"] = after
        if up_to is not None:
            params["up_to"] = up_to
        try:
            body = await self._client.get_json(
                f"/internal/lists/{quote(list_id, safe='')}/recipients", account_id, params
            )
        except NotFound:
            return None
        return RecipientPage(
            items=[
                Recipient(
                    subscriber_id=str(item["subscriber_id"]),
                    email=item["email"],
                    first_name=item.get("first_name"),
                    last_name=item.get("last_name"),
                    attributes=item.get("attributes") or {},
                )
                for item in body["items"]
            ],
            up_to=None if body.get("up_to") is None else str(body["up_to"]),
            next_after=None if body.get("next_after") is None else str(body["next_after"]),
        )

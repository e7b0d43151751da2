"""The web app's typed clients of the audience and campaign services and of the dev inbox.

They call the same public routes as the proxy, with the same identity headers (internal token,
account, public-edge marker), so a page sees exactly what the API would answer. Pages wait at most
`timeout_seconds` (a few seconds): a service that is down or hung becomes UpstreamUnavailable, which
the page shows as a message, and the next request tries again (no state is kept about failures).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from opentelemetry import propagate

from mailstify_servicekit import ACCOUNT_HEADER, PUBLIC_HEADER, TOKEN_HEADER
from mailstify_servicekit.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError, UpstreamUnavailable

from ..service_layer.web_ports import (
    Campaign,
    Delivery,
    ImportJob,
    ImportRowError,
    InboxMessage,
    Listing,
    MailingList,
    Subscriber,
    Suppression,
)

T = TypeVar("T")

ERRORS_BY_STATUS: dict[int, type[ServiceError]] = {403: Forbidden, 404: NotFound, 409: Conflict, 422: InvalidInput}
# "subject: must not be empty" — the services name the field first when they know it.
FIELD_PREFIX = re.compile(r"^([a-z_]+): ")


def build(cls: type[T], data: dict[str, Any]) -> T:
    """A dataclass from a service's JSON, ignoring fields it does not declare (services may add some)."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{name: value for name, value in data.items() if name in known})


def segment(value: str) -> str:
    return quote(value, safe="")


def _field_of(body: dict[str, Any]) -> str | None:
    if isinstance(body.get("field"), str):
        return body["field"]
    for error in body.get("errors") or []:
        location = [part for part in error.get("loc", []) if part != "body"]
        if location and isinstance(location[0], str):
            return location[0]
    match = FIELD_PREFIX.match(str(body.get("detail", "")))
    return match.group(1) if match else None


def refusal(service: str, response: httpx.Response) -> ServiceError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = str(body.get("detail") or f"{service} answered {response.status_code}")
    if response.status_code == 404 and detail == "Not Found":
        detail = "not found"
    if response.status_code >= 500:
        return UpstreamUnavailable(f"the {service} service is unavailable ({response.status_code}); try again shortly")
    error = ERRORS_BY_STATUS.get(response.status_code, InvalidInput)
    return error(detail, field=_field_of(body))


class ServiceApi:
    """One internal service's public routes, called on behalf of an account."""

    def __init__(self, client: httpx.AsyncClient, service: str, base_url: str, internal_token: str, timeout: float):
        self._client = client
        self.service = service
        self._base = base_url.rstrip("/") + "/api/v1"
        self._token = internal_token
        self._timeout = httpx.Timeout(timeout)

    async def request(self, method: str, path: str, account_id: str, **kwargs: Any) -> httpx.Response:
        headers = httpx.Headers({TOKEN_HEADER: self._token, ACCOUNT_HEADER: account_id, PUBLIC_HEADER: "1"})
        propagate.inject(headers)
        try:
            response = await self._client.request(
                method, self._base + path, headers=headers, timeout=self._timeout, **kwargs
            )
        except httpx.TimeoutException as exc:
            raise UpstreamUnavailable(f"the {self.service} service did not answer in time; try again shortly") from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"the {self.service} service is unavailable; try again shortly") from exc
        if response.status_code >= 400:
            raise refusal(self.service, response)
        return response

    async def json(self, method: str, path: str, account_id: str, **kwargs: Any) -> Any:
        response = await self.request(method, path, account_id, **kwargs)
        return response.json() if response.content else None

    async def page(self, cls: type[T], path: str, account_id: str, params: dict[str, Any]) -> Listing[T]:
        body = await self.json("GET", path, account_id, params={k: v for k, v in params.items() if v})
        try:
            return Listing([build(cls, item) for item in body["items"]], body.get("next_cursor"))
        except (KeyError, TypeError) as exc:  # not a page: a service of another version, or something else
            raise UpstreamUnavailable(f"the {self.service} service answered something unexpected") from exc


class HttpAudienceApi:
    def __init__(self, api: ServiceApi):
        self._api = api

    async def lists(self, account_id: str, cursor: str | None = None) -> Listing[MailingList]:
        return await self._api.page(MailingList, "/lists", account_id, {"cursor": cursor, "limit": 100})

    async def get_list(self, account_id: str, list_id: str) -> MailingList:
        return build(MailingList, await self._api.json("GET", f"/lists/{segment(list_id)}", account_id))

    async def create_list(self, account_id: str, name: str, description: str | None) -> MailingList:
        body = {"name": name, **({"description": description} if description else {})}
        return build(MailingList, await self._api.json("POST", "/lists", account_id, json=body))

    async def delete_list(self, account_id: str, list_id: str) -> None:
        await self._api.request("DELETE", f"/lists/{segment(list_id)}", account_id)

    async def subscribers(
        self, account_id: str, list_id: str, *, q: str | None, status: str | None, cursor: str | None, limit: int
    ) -> Listing[Subscriber]:
        params = {"q": q, "status": status, "cursor": cursor, "limit": limit}
        return await self._api.page(Subscriber, f"/lists/{segment(list_id)}/subscribers", account_id, params)

    async def get_subscriber(self, account_id: str, list_id: str, subscriber_id: str) -> Subscriber:
        path = f"/lists/{segment(list_id)}/subscribers/{segment(subscriber_id)}"
        return build(Subscriber, await self._api.json("GET", path, account_id))

    async def add_subscriber(self, account_id: str, list_id: str, fields: dict[str, Any]) -> Subscriber:
        path = f"/lists/{segment(list_id)}/subscribers"
        return build(Subscriber, await self._api.json("POST", path, account_id, json=fields))

    async def update_subscriber(
        self, account_id: str, list_id: str, subscriber_id: str, fields: dict[str, Any]
    ) -> Subscriber:
        path = f"/lists/{segment(list_id)}/subscribers/{segment(subscriber_id)}"
        return build(Subscriber, await self._api.json("PATCH", path, account_id, json=fields))

    async def delete_subscriber(self, account_id: str, list_id: str, subscriber_id: str) -> None:
        await self._api.request("DELETE", f"/lists/{segment(list_id)}/subscribers/{segment(subscriber_id)}", account_id)

    async def start_import(self, account_id: str, list_id: str, filename: str, content: bytes) -> ImportJob:
        files = {"file": (filename or "import.csv", content, "text/csv")}
        return _import_job(await self._api.json("POST", f"/lists/{segment(list_id)}/imports", account_id, files=files))

    async def get_import(self, account_id: str, import_id: str) -> ImportJob:
        return _import_job(await self._api.json("GET", f"/imports/{segment(import_id)}", account_id))

    async def suppressions(self, account_id: str, cursor: str | None = None) -> Listing[Suppression]:
        return await self._api.page(Suppression, "/suppressions", account_id, {"cursor": cursor, "limit": 100})

    async def lift_suppression(self, account_id: str, email: str) -> None:
        await self._api.request("DELETE", f"/suppressions/{segment(email)}", account_id)


def _import_job(body: dict[str, Any]) -> ImportJob:
    errors = [ImportRowError(int(e.get("line", 0)), str(e.get("reason", ""))) for e in body.get("errors") or []]
    return dataclasses.replace(build(ImportJob, {**body, "errors": []}), errors=errors)


class HttpCampaignApi:
    def __init__(self, api: ServiceApi):
        self._api = api

    async def campaigns(self, account_id: str, cursor: str | None = None) -> Listing[Campaign]:
        return await self._api.page(Campaign, "/campaigns", account_id, {"cursor": cursor, "limit": 100})

    async def get(self, account_id: str, campaign_id: str) -> Campaign:
        return build(Campaign, await self._api.json("GET", f"/campaigns/{segment(campaign_id)}", account_id))

    async def create(self, account_id: str, fields: dict[str, Any]) -> Campaign:
        return build(Campaign, await self._api.json("POST", "/campaigns", account_id, json=fields))

    async def update(self, account_id: str, campaign_id: str, fields: dict[str, Any]) -> Campaign:
        path = f"/campaigns/{segment(campaign_id)}"
        return build(Campaign, await self._api.json("PATCH", path, account_id, json=fields))

    async def delete(self, account_id: str, campaign_id: str) -> None:
        await self._api.request("DELETE", f"/campaigns/{segment(campaign_id)}", account_id)

    async def action(self, account_id: str, campaign_id: str, action: str, body: dict[str, Any]) -> Campaign | None:
        answer = await self._api.json("POST", f"/campaigns/{segment(campaign_id)}/{action}", account_id, json=body)
        # Test sends answer with where they went, not with a campaign.
        is_campaign = isinstance(answer, dict) and {"id", "status", "subject"} <= answer.keys()
        return build(Campaign, answer) if is_campaign else None

    async def preview(self, account_id: str, campaign_id: str, subscriber_id: str | None) -> str:
        params = {"subscriber_id": subscriber_id} if subscriber_id else {}
        response = await self._api.request(
            "GET", f"/campaigns/{segment(campaign_id)}/preview", account_id, params=params
        )
        return response.text

    async def deliveries(
        self, account_id: str, campaign_id: str, *, status: str | None, q: str | None, cursor: str | None
    ) -> Listing[Delivery]:
        params = {"status": status, "q": q, "cursor": cursor, "limit": 100}
        return await self._api.page(Delivery, f"/campaigns/{segment(campaign_id)}/deliveries", account_id, params)


class HttpInboxReader:
    """The dev inbox's JSON API (mailstify_devstack.inbox); only the embedded dev stack sets its URL."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, timeout: float):
        self._client = client
        self._base = base_url.rstrip("/")
        self._timeout = httpx.Timeout(timeout)

    async def _get(self, path: str) -> httpx.Response | None:
        try:
            response = await self._client.get(self._base + path, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable("the dev inbox is unavailable; try again shortly") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise UpstreamUnavailable(f"the dev inbox answered {response.status_code}")
        return response

    async def messages(self) -> list[InboxMessage]:
        response = await self._get("/api/messages")
        return [_message(item) for item in (response.json() if response else [])]

    async def message(self, message_id: str) -> InboxMessage | None:
        response = await self._get(f"/api/messages/{segment(message_id)}")
        return _message(response.json()) if response else None

    async def raw(self, message_id: str) -> bytes | None:
        response = await self._get(f"/api/messages/{segment(message_id)}/raw")
        return response.content if response else None


def _message(body: dict[str, Any]) -> InboxMessage:
    return build(InboxMessage, {**body, "from_": body.get("from", "")})

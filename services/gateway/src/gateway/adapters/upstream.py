"""The internal services behind the gateway, reached through one pooled HTTP client created at boot.

Responses are opened in streaming mode and relayed chunk by chunk, so large CSV exports and
server-sent event streams pass through without being buffered in the gateway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
from opentelemetry import propagate

from mailstify_servicekit import ACCOUNT_HEADER, PUBLIC_HEADER, TOKEN_HEADER, ServiceError, UpstreamUnavailable

from ..service_layer.ports import UpstreamReply

CONNECT_TIMEOUT_SECONDS = 5.0
OPENAPI_TIMEOUT_SECONDS = 3.0


class UpstreamTimeout(ServiceError):
    status_code = 504


class HttpUpstreams:
    def __init__(self, base_urls: dict[str, str], internal_token: str, timeout_seconds: float):
        self._base_urls = {name: httpx.URL(url) for name, url in base_urls.items()}
        self._token = internal_token
        self._timeout = httpx.Timeout(timeout_seconds, connect=CONNECT_TIMEOUT_SECONDS)
        # An event stream is idle between events for as long as nothing happens: no read deadline.
        self._stream_timeout = httpx.Timeout(timeout_seconds, connect=CONNECT_TIMEOUT_SECONDS, read=None)
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=500, max_keepalive_connections=100), follow_redirects=False
        )

    async def open(
        self,
        service: str,
        method: str,
        raw_path: bytes,
        raw_query: bytes,
        headers: list[tuple[str, str]],
        account_id: str,
        body: AsyncIterable[bytes] | None,
        event_stream: bool = False,
    ) -> UpstreamReply:
        """Send the request and return the upstream's answer with its body not yet read."""
        base = self._base_urls[service]
        target_path = base.raw_path.rstrip(b"/") + raw_path
        url = base.copy_with(raw_path=target_path + (b"?" + raw_query if raw_query else b""))
        outgoing = httpx.Headers(headers)
        outgoing[TOKEN_HEADER] = self._token
        outgoing[ACCOUNT_HEADER] = account_id
        outgoing[PUBLIC_HEADER] = "1"  # came through the public edge: internal-only routes refuse it
        propagate.inject(outgoing)  # continue the caller's trace in the service
        request = self._client.build_request(
            method,
            url,
            headers=outgoing,
            content=body,
            timeout=self._stream_timeout if event_stream else self._timeout,
        )
        try:
            response = await self._client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise UpstreamUnavailable(f"{service} is unavailable") from exc
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"{service} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"{service} is unavailable") from exc
        return UpstreamReply(
            status_code=response.status_code,
            headers=response.headers.multi_items(),
            body=relay(response),
            close=response.aclose,
        )

    async def openapi_documents(self) -> dict[str, dict[str, Any]]:
        """Each reachable service's own OpenAPI document; a service that is down is left out."""

        async def fetch(service: str, base: httpx.URL) -> tuple[str, dict[str, Any] | None]:
            url = base.copy_with(raw_path=base.raw_path.rstrip(b"/") + b"/openapi.json")
            try:
                response = await self._client.get(url, timeout=OPENAPI_TIMEOUT_SECONDS)
                return service, response.json() if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                return service, None

        fetched = await asyncio.gather(*(fetch(service, base) for service, base in self._base_urls.items()))
        return {service: document for service, document in fetched if document is not None}

    async def unsubscribe(self, account_id: str, subscriber_id: str, campaign_id: str) -> bool:
        """The audience's internal unsubscribe route: no public-edge header, so InternalOnly lets it in."""
        base = self._base_urls["audience"]
        path = f"/internal/subscribers/{quote(subscriber_id, safe='')}/unsubscribe".encode()
        headers = httpx.Headers({TOKEN_HEADER: self._token, ACCOUNT_HEADER: account_id})
        propagate.inject(headers)
        try:
            response = await self._client.post(
                base.copy_with(raw_path=base.raw_path.rstrip(b"/") + path),
                json={"campaign_id": campaign_id},
                headers=headers,
                timeout=self._timeout,
            )
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("audience did not answer in time") from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable("audience is unavailable") from exc
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            raise UpstreamUnavailable(f"audience answered {response.status_code} to an unsubscribe")
        return True

    async def aclose(self) -> None:
        await self._client.aclose()


async def relay(response: httpx.Response) -> AsyncIterator[bytes]:
    """The upstream body as it arrives (bytes as sent, content-encoding untouched), then the
    connection goes back to the pool."""
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    finally:
        await response.aclose()

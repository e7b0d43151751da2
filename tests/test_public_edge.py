"""The public edge cannot be walked past: paths with dot segments or encoded separators are refused
at the gateway (sent byte for byte, as a hand-written request line: httpx would collapse `..` itself),
and audience's internal routes refuse anything the gateway relayed."""

from __future__ import annotations

import asyncio
import json
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from mailstify_servicekit import ACCOUNT_HEADER, PUBLIC_HEADER, TOKEN_HEADER

from .conftest import Api

pytestmark = pytest.mark.e2e

INTERNAL = "internal/lists/{list_id}/recipients"
TRAVERSALS = [
    "/api/v1/lists/../../../" + INTERNAL,
    "/api/v1/lists/1/../../../" + INTERNAL,
    "/api/v1/lists/./../../../" + INTERNAL,
    "/api/v1/lists/%2e%2e/%2e%2e/%2e%2e/" + INTERNAL,
    "/api/v1/lists/%2E%2E/%2E%2E/%2E%2E/" + INTERNAL,
    "/api/v1/lists/.%2e/.%2E/%2e./" + INTERNAL,
    "/api/v1/lists/..%2f..%2f..%2f" + INTERNAL.replace("/", "%2F"),
    "/api/v1/lists/..%5c..%5c..%5c" + INTERNAL,
    "/api/v1/lists/..\\..\\..\\" + INTERNAL,
    "/api/v1/lists/%252e%252e/%252e%252e/%252e%252e/" + INTERNAL,
]


async def raw_get(base_url: str, target: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """One HTTP/1.1 GET whose request target goes on the wire exactly as given."""
    url = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        lines = [f"GET {target} HTTP/1.1", f"Host: {url.netloc}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return status, body


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


async def test_dot_segments_and_encoded_separators_never_reach_an_internal_route(api: Api, mailstify_stack) -> None:
    mailing_list, _ = await api.new_list_with([{"email": f"ada.{uuid.uuid4().hex[:8]}@example.com"}])
    auth = {"Authorization": api.client.headers["authorization"]}
    probe = uuid.uuid4().hex

    # The gateway logs every request it sends upstream (httpx, with the query): the control's probe
    # shows there; the refused requests' probe must not.
    status, _ = await raw_get(mailstify_stack.gateway_url, f"/api/v1/lists/{mailing_list['id']}?probe={probe}c", auth)
    assert status == 200
    for target in TRAVERSALS:
        path = target.format(list_id=mailing_list["id"]) + f"?probe={probe}"
        status, body = await raw_get(mailstify_stack.gateway_url, path, auth)
        assert status == 400, f"{path}: {status} {body[:300]!r}"
        assert json.loads(body)["detail"], path

    await asyncio.sleep(0.5)  # log lines are flushed as requests finish
    upstream_calls = [line for line in mailstify_stack.log_tail("gateway", 2000).splitlines() if probe in line]
    assert any(f"probe={probe}c" in line for line in upstream_calls), "the control request was not seen upstream"
    assert all(f"probe={probe}c" in line for line in upstream_calls), upstream_calls


async def test_internal_routes_refuse_a_request_relayed_from_the_public_edge(api: Api, mailstify_stack) -> None:
    mailing_list, _ = await api.new_list_with([{"email": f"ada.{uuid.uuid4().hex[:8]}@example.com"}])
    account = (await api.call("GET", "/auth/me", 200))["account"]["id"]
    url = f"{mailstify_stack.service_url('audience')}/internal/lists/{mailing_list['id']}/recipients"
    internal = {TOKEN_HEADER: mailstify_stack.internal_token, ACCOUNT_HEADER: account}
    async with httpx.AsyncClient(timeout=30) as client:
        service_call = await client.get(url, headers=internal)
        assert service_call.status_code == 200, service_call.text
        assert len(service_call.json()["items"]) == 1
        relayed = await client.get(url, headers={**internal, PUBLIC_HEADER: "1"})
    assert relayed.status_code == 403, relayed.text
    assert relayed.json()["detail"]

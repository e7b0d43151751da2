"""The gateway booted for real (fresh PostgreSQL database, NATS) in front of a stub upstream: a tiny
FastAPI app served by uvicorn on a loopback port, which records what reaches it."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.config import Settings
from gateway.entrypoints.app import create_app
from mailstify_devstack.inprocess import running_service, serve_app

INTERNAL_TOKEN = "gateway-test-internal-token"
PASSWORD = "correct horse battery"


@dataclass
class StubUpstream:
    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)


def _stub_app(stub: StubUpstream) -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/lists/feed/events")
    async def events() -> StreamingResponse:
        async def stream() -> AsyncIterator[bytes]:
            for n in range(3):
                yield f"id: {n}\nevent: tick\ndata: {{\"n\": {n}}}\n\n".encode()
                await asyncio.sleep(0.01)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.delete("/api/v1/lists/gone")
    async def gone() -> Response:
        return Response(status_code=204)

    @app.api_route("/api/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def echo(request: Request, rest: str) -> JSONResponse:
        body = await request.body()
        seen = {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "body": body.decode(),
            "headers": {name.lower(): value for name, value in request.headers.items()},
        }
        stub.seen.append(seen)
        status = int(request.query_params.get("answer_status", 200))
        response = JSONResponse({"echo": seen}, status_code=status, headers={"X-Stub": "yes"})
        response.set_cookie("upstream_cookie", "should-not-leak")
        return response

    return app


@pytest.fixture(scope="module")
async def stub_upstream() -> AsyncIterator[StubUpstream]:
    stub = StubUpstream()
    async with serve_app(_stub_app(stub)) as url:
        stub.url = url
        yield stub


@pytest.fixture(scope="module")
def dead_upstream_url() -> str:
    """A loopback port nobody listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@dataclass
class RunningGateway:
    app: FastAPI
    client: httpx.AsyncClient  # no credentials of its own until a test signs up with it

    def new_client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://testserver", **kwargs)


@pytest.fixture
async def gateway(
    fresh_database: str, nats_server, stub_upstream: StubUpstream, dead_upstream_url: str
) -> AsyncIterator[RunningGateway]:
    """The gateway, booted through its lifespan: audience routes go to the stub, campaign routes to a dead port."""
    settings = Settings(
        database_url=fresh_database,
        nats_url=nats_server.url,
        internal_token=INTERNAL_TOKEN,
        audience_url=stub_upstream.url,
        campaign_url=dead_upstream_url,
    )
    app = create_app(settings)
    stub_upstream.seen.clear()
    async with running_service(app) as client:
        yield RunningGateway(app, client)


@pytest.fixture
def anonymous(gateway: RunningGateway) -> httpx.AsyncClient:
    return gateway.client


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:8]}@example.com"


async def sign_up(client: httpx.AsyncClient, email: str | None = None, **extra: Any) -> dict:
    body = {"email": email or new_email(), "password": PASSWORD, **extra}
    answer = await client.post("/api/v1/auth/signup", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


@pytest.fixture
async def browser(anonymous: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client holding a fresh account's session cookies."""
    await sign_up(anonymous)
    return anonymous


def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies["mailstify_csrf"]}


def echoed(answer: httpx.Response) -> dict[str, Any]:
    return json.loads(answer.text)["echo"]

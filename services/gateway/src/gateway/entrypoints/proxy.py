"""The public routes other services own, relayed to them with the caller's account attached."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from mailstify_servicekit import UpstreamUnavailable

from ..domain import routing
from .dependencies import Dependencies
from .security import Authenticated

router = APIRouter()

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def forward(request: Request, principal: Authenticated, dependencies: Dependencies) -> StreamingResponse:
    service = routing.upstream_for(request.url.path)
    if service is None:
        raise UpstreamUnavailable("the service is unavailable")
    upstream = await dependencies.upstreams.open(
        service,
        request.method,
        raw_path=request.scope.get("raw_path") or request.url.path.encode(),
        raw_query=request.scope.get("query_string", b""),
        headers=routing.request_headers_to_forward(request.headers.items()),
        account_id=principal.account_id,
        body=request.stream()
        if request.method in METHODS_WITH_BODY or routing.declares_body(request.headers.items())
        else None,
        event_stream=routing.wants_event_stream(request.headers.get("accept")),
    )
    return StreamingResponse(
        upstream.body,
        status_code=upstream.status_code,
        headers=dict(routing.response_headers_to_return(upstream.headers)),
        # Also closes the upstream response when the client went away before the body was relayed.
        background=BackgroundTask(upstream.close),
    )


for resource, owner in routing.ROUTES.items():
    for path in (f"/api/v1/{resource}", f"/api/v1/{resource}/{{rest:path}}"):
        router.add_api_route(path, forward, methods=METHODS, include_in_schema=False, name=f"proxy to {owner}")

"""The public edge refuses paths that could mean another path further in.

The proxy relays the request path to a service, and an HTTP client on the way (or the service's own
router) may resolve `.`/`..` segments or decode `%2F`, `%2E`, `%5C`: `/api/v1/lists/../../internal/x`
would then reach a route the gateway never meant to expose. No public route has such a path, so a
request whose raw path has a dot segment, a backslash, or an encoded slash, dot, backslash or
percent sign (the double-encoded `%252e` forms) answers 400 before routing, authentication or
proxying.
"""

from __future__ import annotations

import re

from mailstify_servicekit.text import ASGIApp, Receive, Scope, Send, send_json_error

# Encoded `.`, `/`, `\` and `%` (the start of any double encoding), in either case.
ENCODED_SEPARATORS = re.compile(rb"%(2e|2f|5c|25)", re.IGNORECASE)
DETAIL = "the request path must not contain '.' or '..' segments, backslashes or encoded '/', '.', '\\' or '%'"


def ambiguous_path(raw_path: bytes) -> bool:
    if b"\\" in raw_path or ENCODED_SEPARATORS.search(raw_path):
        return True
    return any(segment in (b".", b"..") for segment in raw_path.split(b"/"))


class RejectAmbiguousPaths:
    """Pure ASGI middleware: 400 `{"detail": ...}` for a path `ambiguous_path` flags."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            decoded = scope.get("path", "").encode("utf-8", "surrogateescape")
            raw_path = (scope.get("raw_path") or decoded).split(b"?", 1)[0]
            if ambiguous_path(raw_path) or ambiguous_path(decoded):
                if scope["type"] == "http":
                    await send_json_error(send, 400, DETAIL)
                else:
                    await send({"type": "websocket.close", "code": 1008})
                return
        await self.app(scope, receive, send)

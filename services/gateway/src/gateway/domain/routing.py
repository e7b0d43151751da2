"""Which internal service answers which public path, and which headers cross the edge.

Headers are forwarded by allow-list: whatever a client sends beyond these (cookies, the API key,
forged `X-Mailstify-*` identity headers, hop-by-hop headers) never reaches an internal service.
"""

from __future__ import annotations

from collections.abc import Iterable

API_PREFIX = "/api/v1/"

# First path segment after /api/v1/ → the service that owns it.
ROUTES: dict[str, str] = {
    "lists": "audience",
    "imports": "audience",
    "suppressions": "audience",
    "campaigns": "campaign",
}

FORWARDED_REQUEST_HEADERS = frozenset(
    {
        "accept",
        "accept-language",
        "content-type",
        "content-length",
        "content-disposition",
        "if-match",
        "if-none-match",
        "last-event-id",  # a reconnecting EventSource resumes where it stopped
        "user-agent",
    }
)

# Hop-by-hop headers belong to one connection; length/date/server are the gateway's own to set;
# an internal service has no business setting cookies on the public origin.
DROPPED_RESPONSE_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "date",
        "server",
        "set-cookie",
    }
)


def upstream_for(path: str) -> str | None:
    """The service behind a public path, or None when no service owns it."""
    if not path.startswith(API_PREFIX):
        return None
    resource = path[len(API_PREFIX) :].split("/", 1)[0]
    return ROUTES.get(resource)


def request_headers_to_forward(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name.lower() in FORWARDED_REQUEST_HEADERS]


def response_headers_to_return(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name.lower() not in DROPPED_RESPONSE_HEADERS]


def declares_body(headers: Iterable[tuple[str, str]]) -> bool:
    """Whether the request announces a body (any method may have one: a GET with a JSON body is odd,
    not invalid). Its `content-length` is forwarded, so the body must be too, or the upstream
    request would promise bytes that never come (a protocol error, once a 500)."""
    for name, value in headers:
        name = name.lower()
        if name == "transfer-encoding" or (name == "content-length" and value.strip() not in ("", "0")):
            return True
    return False


def wants_event_stream(accept: str | None) -> bool:
    return "text/event-stream" in (accept or "").lower()

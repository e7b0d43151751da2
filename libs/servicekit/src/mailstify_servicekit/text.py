"""User text that PostgreSQL can store, checked where it enters a service.

PostgreSQL `text` and `jsonb` cannot hold NUL (U+0000), and a lone UTF-16 surrogate (which JSON's
`\\ud800` escapes can produce) cannot be encoded to UTF-8 at all: either one, left to the database,
ends as a driver error and a 500. So they are refused up front, as the caller's mistake:

- `RequestModel` is the base of every request body: each field's value is walked, nested lists and
  objects (e.g. subscriber `attributes`) included, keys as well as values, and a string holding such
  a character (or a non-finite number, which JSON cannot carry back) fails validation → 422.
- `StorableTextGuard` is a pure ASGI middleware for what never reaches a model: the path and the
  query string, percent-decoded; a NUL there answers 400.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

# NUL, and the surrogate code points that only a malformed escape can put in a Python str.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "must not contain NUL characters or unpaired surrogates (text PostgreSQL cannot store)"
MAX_DEPTH = 64


def unstorable(value: Any, depth: int = 0) -> str | None:
    """Why `value` (a decoded JSON value) cannot be stored, or None when it can."""
    if isinstance(value, str):
        return UNSTORABLE_MESSAGE if UNSTORABLE.search(value) else None
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite"
    if isinstance(value, list | tuple):
        return _first(unstorable(item, depth + 1) for item in value) if depth < MAX_DEPTH else "nested too deeply"
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            return "nested too deeply"
        return _first(unstorable(key, depth + 1) or unstorable(item, depth + 1) for key, item in value.items())
    return None


def _first(reasons: Any) -> str | None:
    return next((reason for reason in reasons if reason), None)


class RequestModel(BaseModel):
    """Base of request bodies: every field's value must be storable text (see the module doc)."""

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        reason = unstorable(value)
        if reason:
            raise PydanticCustomError("unstorable_text", reason)
        return value


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_json_error(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class StorableTextGuard:
    """Refuses (400) a request whose path or query string, percent-decoded, contains a NUL."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
            if b"\x00" in unquote_to_bytes(path) or "\x00" in scope.get("path", ""):
                await send_json_error(send, 400, "the path must not contain NUL characters")
                return
            if b"\x00" in unquote_to_bytes(scope.get("query_string", b"").replace(b"+", b" ")):
                await send_json_error(send, 400, "the query string must not contain NUL characters")
                return
        await self.app(scope, receive, send)


# What a request schema says about its text fields; the service layer still checks them (and gives
# the reasons), these make the published OpenAPI state the same contract.
NOT_BLANK = r"\S"  # a JSON Schema `pattern` searches: at least one non-whitespace character
EmailAddress = Annotated[
    str,
    Field(max_length=254, json_schema_extra={"format": "email"}, description="an email address (RFC 5321 length)"),
]

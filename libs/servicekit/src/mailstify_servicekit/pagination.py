"""Cursor pagination as API.md prescribes: `?limit=&cursor=` → `{"items": [...], "next_cursor": ...}`.

A cursor is the keyset position after the last item of a page, encoded so clients treat it as
opaque; a tampered or truncated cursor is the client's mistake (422), never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from .errors import InvalidInput

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class InvalidCursor(InvalidInput):
    """A cursor that is not one we handed out: raise it also where a service reads its own position
    out of a decoded cursor, so every service answers a bad cursor in the same words."""

    def __init__(self) -> None:
        super().__init__("cursor is not valid; pass the next_cursor of the previous page unchanged")


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidCursor() from exc
    if not isinstance(position, dict):
        raise InvalidCursor()
    return position


def split_page(rows: Sequence[T], limit: int, position: Callable[[T], dict[str, Any]]) -> tuple[list[T], str | None]:
    """Cut `limit + 1` fetched rows into a page and the cursor after it (None on the last page):
    the extra row only says that another page exists, without a COUNT."""
    if len(rows) <= limit:
        return list(rows), None
    items = list(rows[:limit])
    return items, encode_cursor(position(items[-1]))

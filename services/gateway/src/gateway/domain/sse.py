"""The server-sent events wire format (WHATWG HTML §9.2): what the gateway's streams write."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

# A Last-Event-ID the gateway could have sent: a stream counter (bounded, so a huge header is no
# expensive integer parse).
LAST_EVENT_ID = re.compile(r"\d{1,18}")


def event(name: str, data: Mapping[str, Any], event_id: int) -> bytes:
    # Compact JSON holds no newline, so one `data:` line carries it whole.
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    return f"id: {event_id}\nevent: {name}\ndata: {payload}\n\n".encode()


def comment(text: str) -> bytes:
    """A line browsers ignore: keeps an idle connection open through proxies."""
    return f": {text}\n\n".encode()


def retry(milliseconds: int) -> bytes:
    """How long a browser waits before reconnecting after the stream ended."""
    return f"retry: {milliseconds}\n\n".encode()


def next_event_id(last_event_id: str | None) -> int:
    """The first id of a stream: one past the id the reconnecting browser last saw, so its ids
    keep rising across reconnects; 1 for a new stream (or an id this gateway never sent)."""
    if last_event_id is not None and LAST_EVENT_ID.fullmatch(last_event_id.strip()):
        return int(last_event_id.strip()) + 1
    return 1

"""Which campaign the code running now is about, for the log lines it writes (`campaign_id` in
`logs.JsonFormatter`). Plain contextvars: safe to import from any layer, and each asyncio task
(each request, each consumer batch) sees only what it set itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_campaign_id: ContextVar[str | None] = ContextVar("mailstify_campaign_id", default=None)


@contextmanager
def campaign_context(campaign_id: str | None) -> Iterator[None]:
    """Log lines written inside carry `campaign_id` (None: leave the enclosing one)."""
    if campaign_id is None:
        yield
        return
    token = _campaign_id.set(campaign_id)
    try:
        yield
    finally:
        _campaign_id.reset(token)


def current_campaign_id() -> str | None:
    return _campaign_id.get()

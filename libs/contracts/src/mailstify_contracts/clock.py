"""The one clock every service reads: timezone-aware UTC. Domain code never calls it; the service
layer passes `now` in, so rules stay testable without patching time."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)

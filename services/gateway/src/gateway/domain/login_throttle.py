"""How many failed logins are tolerated before the next attempt must wait: per address (guessing one
account's password) and per client (trying many accounts from one place). Only failures count, so a
user who types their password right is never slowed by someone else's guessing from elsewhere."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LoginThrottle:
    window: timedelta = timedelta(minutes=15)
    max_per_address: int = 10
    max_per_client: int = 50

    def address_key(self, email: str) -> str:
        return f"address:{email}"

    def client_key(self, client: str) -> str:
        return f"client:{client}"

    def limit_for(self, key: str) -> int:
        return self.max_per_address if key.startswith("address:") else self.max_per_client

    def wait_seconds(self, key: str, failures: Sequence[datetime], now: datetime) -> int | None:
        """Seconds until an attempt under `key` may be made again, None when it may be made now.
        `failures` are the key's failed attempts, any order."""
        recent = sorted(at for at in failures if at > now - self.window)
        limit = self.limit_for(key)
        if len(recent) < limit:
            return None
        # Allowed again once enough of the failures have left the window.
        frees_at = recent[len(recent) - limit] + self.window
        return max(1, math.ceil((frees_at - now).total_seconds()))

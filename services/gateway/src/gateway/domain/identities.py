"""Who uses Mailstify: accounts own the data, users sign in to them, sessions and API keys prove it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    default_from_name: str | None = None
    default_from_email: str | None = None


@dataclass(frozen=True)
class User:
    id: str
    account_id: str
    email: str
    name: str | None
    password_hash: str


@dataclass(frozen=True)
class Session:
    """A live browser session; `id` is the digest of the cookie's token."""

    id: str
    user_id: str
    account_id: str
    csrf_token: str


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None

"""Secrets the gateway hands out and checks: passwords, session tokens, CSRF tokens and API keys.

Nothing secret is stored in the clear: passwords as argon2id hashes (slow on purpose), session
tokens and API keys as SHA-256 digests (they are 256-bit random, so a fast hash is enough and
lets a request be authenticated with one indexed lookup).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mailstify_servicekit.errors import InvalidInput

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes any length; an upper bound stops megabyte "passwords"
API_KEY_PREFIX = "msk_"
API_KEY_DISPLAY_LENGTH = len(API_KEY_PREFIX) + 6
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a login takes as long either way and does not
# reveal which addresses have accounts.
_DECOY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def new_id() -> str:
    """Ids of accounts, users and API keys: random, so they reveal neither counts nor order."""
    return uuid.uuid4().hex


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; with no hash (unknown user) it still spends the same time."""
    try:
        return _hasher.verify(password_hash or _DECOY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedApiKey:
    key: str  # shown to the user once, never stored
    prefix: str  # stored, to tell keys apart in a listing
    key_hash: str


def issue_api_key() -> IssuedApiKey:
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return IssuedApiKey(key=key, prefix=key[:API_KEY_DISPLAY_LENGTH], key_hash=digest(key))


def looks_like_api_key(candidate: str) -> bool:
    return candidate.startswith(API_KEY_PREFIX) and len(candidate) > API_KEY_DISPLAY_LENGTH


@dataclass(frozen=True)
class Principal:
    """Who a request acts for. Sessions belong to a user; API keys only to an account."""

    account_id: str
    via: Literal["session", "api_key"]
    user_id: str | None = None
    session_id: str | None = None
    csrf_token: str | None = None


def csrf_satisfied(principal: Principal, method: str, presented: str | None) -> bool:
    """Double-submit CSRF check: a cookie-authenticated state change must echo the session's token
    in a header, which another site's page cannot read or set. Bearer keys are never sent by a
    browser on its own, so they need no such proof."""
    if principal.via != "session" or method.upper() not in UNSAFE_METHODS:
        return True
    if not presented or not principal.csrf_token:
        return False
    return hmac.compare_digest(presented.encode(), principal.csrf_token.encode())

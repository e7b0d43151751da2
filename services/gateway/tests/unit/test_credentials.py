"""Passwords, API keys and the CSRF rule, without any I/O."""

from __future__ import annotations

import hashlib

import pytest

from gateway.domain import credentials
from gateway.domain.credentials import Principal, csrf_satisfied
from mailstify_servicekit import InvalidInput


def test_a_password_hash_verifies_only_its_password() -> None:
    stored = credentials.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert credentials.verify_password(stored, "correct horse battery")
    assert not credentials.verify_password(stored, "correct horse battery!")
    assert not credentials.password_needs_rehash(stored)


def test_the_same_password_hashes_differently_each_time() -> None:
    assert credentials.hash_password("same password") != credentials.hash_password("same password")


def test_an_unknown_user_or_a_corrupt_hash_never_verifies() -> None:
    assert not credentials.verify_password(None, "anything at all")
    assert not credentials.verify_password("not-a-hash", "anything at all")


def test_password_rules() -> None:
    credentials.check_password_rules("12345678")
    with pytest.raises(InvalidInput, match="at least 8"):
        credentials.check_password_rules("1234567")
    with pytest.raises(InvalidInput, match="at most"):
        credentials.check_password_rules("x" * (credentials.MAX_PASSWORD_LENGTH + 1))


def test_api_keys_are_random_prefixed_and_stored_as_their_digest() -> None:
    first, second = credentials.issue_api_key(), credentials.issue_api_key()
    assert first.key != second.key
    assert first.key.startswith("msk_") and len(first.key) > 40
    assert first.key_hash == hashlib.sha256(first.key.encode()).hexdigest() == credentials.digest(first.key)
    assert first.key.startswith(first.prefix) and len(first.prefix) < len(first.key) // 3
    assert credentials.looks_like_api_key(first.key)
    assert not credentials.looks_like_api_key("msk_")
    assert not credentials.looks_like_api_key("some-session-token")


def test_ids_and_tokens_are_opaque_and_unique() -> None:
    assert len({credentials.new_id() for _ in range(100)}) == 100
    assert len(credentials.new_token()) >= 43  # 256 bits


SESSION = Principal(account_id="a1", via="session", user_id="u1", session_id="s1", csrf_token="the-token")
API_KEY = Principal(account_id="a1", via="api_key")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "post"])
def test_cookie_authenticated_changes_need_the_sessions_csrf_token(method: str) -> None:
    assert csrf_satisfied(SESSION, method, "the-token")
    assert not csrf_satisfied(SESSION, method, None)
    assert not csrf_satisfied(SESSION, method, "")
    assert not csrf_satisfied(SESSION, method, "another-token")


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_reads_need_no_csrf_token(method: str) -> None:
    assert csrf_satisfied(SESSION, method, None)


def test_bearer_requests_need_no_csrf_token() -> None:
    assert csrf_satisfied(API_KEY, "POST", None)
    assert csrf_satisfied(API_KEY, "DELETE", "whatever")

import pytest

from mailstify_contracts.unsubscribe import UnsubscribeTarget, unsubscribe_token, unsubscribe_url, verify_unsubscribe_token

SECRET = b"s3cret"
TARGET = UnsubscribeTarget(account_id="acc-1", campaign_id="cmp-9", subscriber_id="42")


def test_token_is_stable_and_verifies_to_its_target():
    token = unsubscribe_token(SECRET, TARGET)
    assert token == unsubscribe_token(SECRET, TARGET)
    assert verify_unsubscribe_token(SECRET, token) == TARGET


def test_token_is_url_safe():
    token = unsubscribe_token(SECRET, UnsubscribeTarget("a/+=?", "ü", "test:jane@example.com"))
    assert all(c.isalnum() or c in "-_." for c in token)
    assert verify_unsubscribe_token(SECRET, token) == UnsubscribeTarget("a/+=?", "ü", "test:jane@example.com")


def test_different_targets_get_different_tokens():
    other = UnsubscribeTarget(account_id="acc-1", campaign_id="cmp-9", subscriber_id="43")
    assert unsubscribe_token(SECRET, TARGET) != unsubscribe_token(SECRET, other)


def test_another_secret_does_not_verify():
    assert verify_unsubscribe_token(b"other", unsubscribe_token(SECRET, TARGET)) is None


def test_tampered_payload_does_not_verify():
    forged_payload = unsubscribe_token(SECRET, UnsubscribeTarget("acc-2", "cmp-9", "42")).split(".")[0]
    mac = unsubscribe_token(SECRET, TARGET).split(".")[1]
    assert verify_unsubscribe_token(SECRET, f"{forged_payload}.{mac}") is None


@pytest.mark.parametrize("token", ["", ".", "abc", "abc.def", "ü.ü", "a.b.c", "%%%.%%%"])
def test_garbage_does_not_verify(token):
    assert verify_unsubscribe_token(SECRET, token) is None


def test_unsubscribe_url_joins_public_url():
    assert unsubscribe_url("https://mail.example.com/", "tok") == "https://mail.example.com/u/tok"


def test_ids_with_the_separator_are_refused():
    with pytest.raises(ValueError):
        unsubscribe_token(SECRET, UnsubscribeTarget("a\x1fb", "c", "d"))

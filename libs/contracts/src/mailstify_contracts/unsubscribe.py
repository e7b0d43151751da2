"""Unsubscribe tokens: `{public_url}/u/{token}` names the (account, campaign, subscriber) it was made
for and proves it with an HMAC, so the public endpoint needs no lookup table and cannot be guessed.

Part of the contracts because two services must agree on it byte for byte: the mailer signs the
links it writes, the gateway verifies what comes back (with the shared `MAILSTIFY_SECRET_KEY`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

# ASCII unit separator between the ids; an id containing it is refused when signing, so a payload
# always splits back into exactly the ids it was made from.
_SEPARATOR = "\x1f"
_CONTEXT = b"mailstify-unsubscribe-v1:"
_MAC_BYTES = 16


@dataclass(frozen=True)
class UnsubscribeTarget:
    account_id: str
    campaign_id: str
    subscriber_id: str


def unsubscribe_token(secret: bytes, target: UnsubscribeTarget) -> str:
    ids = (target.account_id, target.campaign_id, target.subscriber_id)
    if any(_SEPARATOR in i for i in ids):
        raise ValueError("ids must not contain the unit separator character")
    payload = _SEPARATOR.join(ids).encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def verify_unsubscribe_token(secret: bytes, token: str) -> UnsubscribeTarget | None:
    """The target the token was issued for, or None when it is malformed or forged."""
    encoded_payload, dot, encoded_mac = token.partition(".")
    if not dot:
        return None
    try:
        payload = _unb64(encoded_payload)
        mac = _unb64(encoded_mac)
    except (ValueError, binascii.Error):
        return None
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        return None
    parts = payload.decode("utf-8", errors="replace").split(_SEPARATOR)
    if len(parts) != 3:
        return None
    return UnsubscribeTarget(*parts)


def unsubscribe_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/u/{token}"


def signed_unsubscribe_url(public_url: str, secret: bytes, target: UnsubscribeTarget) -> str:
    """The link a campaign email carries for `target`: the mailer writes it, the preview shows it."""
    return unsubscribe_url(public_url, unsubscribe_token(secret, target))


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _CONTEXT + payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

"""The import's fast address check gives the API's result (email-validator through
`normalise_email`) for valid and invalid addresses alike."""

from __future__ import annotations

import pytest

from audience.domain.addresses import normalise_address
from mailstify_servicekit import InvalidInput, normalise_email

ADDRESSES = [
    "Ann.Lee@Example.COM", "  padded@example.com ", "a+tag@sub.example.co.uk", "o'brien@example.ie",
    "x@xn--bcher-kva.example", "bücher@example.com", "user@bücher.example", "info@localhost",
    "someone@example", "a@b.c", "a@123.456", "a..b@example.com", ".a@example.com", "a.@example.com",
    "a@-example.com", "a@example-.com", "a@exa_mple.com", "a@example..com", "a@.example.com",
    '"quoted"@example.com', "Name <a@example.com>", "a@[127.0.0.1]", "a@example.invalid", "a@example.test",
    "a@example.local", "nope", "", "@example.com", "a@", "a@@example.com", "a b@example.com",
    "x" * 64 + "@example.com", "x" * 65 + "@example.com", "a@" + "b" * 63 + ".com", "a@" + "b" * 64 + ".com",
    "a@" + ".".join(["abcdefghij"] * 23) + ".com", "a@" + ".".join(["abcdefghi"] * 25) + ".com",
    "POSTMASTER@example.com", "a@EXAMPLE.com.", "a@example.123", "a@example.c0m",
]  # fmt: skip


def outcome(normalise, raw: str) -> tuple[str, str]:
    try:
        return "ok", normalise(raw)
    except InvalidInput as refused:
        return "refused", refused.detail


@pytest.mark.parametrize("raw", ADDRESSES)
def test_the_fast_check_agrees_with_the_api(raw: str) -> None:
    assert outcome(normalise_address, raw) == outcome(normalise_email, raw)


def test_many_generated_addresses_agree() -> None:
    locals_ = ["a", "A.b", "x-y_z", "1", "a+b", "~", "a.b.c", "é"]
    domains = ["example.com", "EXAMPLE.org", "a.b.c.d.example", "x.test", "local", "1.2.3.4", "ex--ample.com"]
    for local in locals_:
        for domain in domains:
            raw = f"{local}@{domain}"
            assert outcome(normalise_address, raw) == outcome(normalise_email, raw), raw

"""How addresses are checked and stored, for every service that takes one."""

from __future__ import annotations

import pytest

from mailstify_servicekit import InvalidInput, normalise_email


def test_addresses_are_trimmed_and_lower_cased_whole() -> None:
    assert normalise_email("  Ann.Lee@Example.COM\n") == "ann.lee@example.com"


def test_the_development_test_domain_is_accepted() -> None:
    assert normalise_email("team@mailstify.test") == "team@mailstify.test"


@pytest.mark.parametrize("raw", ["", "  ", "ann", "ann@localhost", "ann@example.invalid", "Ann <ann@example.com>"])
def test_what_cannot_receive_mail_is_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalise_email(raw)
    assert refused.value.status_code == 422 and refused.value.detail

"""Email addresses as Mailstify stores them: syntax-checked (no DNS lookups: the domain is the
mail server's business at send time) and lower-cased whole, so one person is one address."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from .errors import InvalidInput



def normalise_email(raw: str) -> str:
    """The stored form of `raw`; raises `InvalidInput` with a human message when it is not an address."""
    candidate = raw.strip()
    if not candidate:
        raise InvalidInput("email is required")
    try:
        # Reserved domains (.invalid, .localhost, ...) can never receive mail and are refused, except
        # `.test`, which the development inbox and the test suites use for their addresses.
        checked = validate_email(candidate, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise InvalidInput(f"'{candidate}' is not a valid email address: {exc}") from exc
    # Local parts are case-sensitive by the RFC, but no real mailbox provider treats them so, and
    # case-variant duplicates on a list would mean the same person gets the campaign twice.
    return checked.normalized.lower()

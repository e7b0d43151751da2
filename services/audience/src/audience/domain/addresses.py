"""Email addresses at import speed: the same rules and the same results as the API's
`mailstify_servicekit.emails.normalise_email` (email-validator), about eight times faster.

email-validator spends most of its ~50 µs per address on two things an import repeats a million
times: splitting the address character by character (looking for quotes, display names and
combining characters) and checking the domain (IDNA). For a plain ASCII address neither can find
anything the simple pattern below has not already excluded, and a file has few distinct domains.
So the plain addresses skip the split and check each domain once (memoised), calling email-validator's
own local-part and domain checks and its length rule; everything else, and every address those checks refuse,
goes through `normalise_email` itself, so a refused row gets exactly the API's message.
`test_addresses.py` checks the two agree on valid and invalid addresses alike.
"""

from __future__ import annotations

import functools
import re

from email_validator.rfc_constants import EMAIL_MAX_LENGTH
from email_validator.syntax import validate_email_domain_name, validate_email_local_part

from mailstify_servicekit.emails import normalise_email

# atext and dots before one @, letters/digits/dots/hyphens after it: no quotes, spaces, brackets,
# angle brackets (display names) or non-ASCII characters, where email-validator's split matters.
_PLAIN = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


@functools.lru_cache(maxsize=100_000)
def _checked_domain(domain: str) -> tuple[str, int]:
    """The normalised domain and the longest of its UTF-8 and IDNA ASCII forms, in bytes."""
    # The options normalise_email passes: no DNS, `.test` allowed, globally deliverable otherwise.
    info = validate_email_domain_name(domain, test_environment=True, globally_deliverable=True)
    return info["domain"], max(len(info["domain"].encode()), len(info["ascii_domain"]))


def _plain(candidate: str) -> str:
    local, domain = candidate.rsplit("@", 1)
    local_part = validate_email_local_part(local, allow_smtputf8=True, allow_empty_local=False)["local_part"]
    normal_domain, domain_bytes = _checked_domain(domain)
    # validate_email_length's three forms, here all ASCII but the domain: the input, the normalised
    # address and its IDNA form; the full check words the refusal.
    if len(candidate) > EMAIL_MAX_LENGTH or len(local_part) + 1 + domain_bytes > EMAIL_MAX_LENGTH:
        raise ValueError("too long")
    return f"{local_part}@{normal_domain}".lower()


def normalise_address(raw: str) -> str:
    """`normalise_email(raw)`, faster; raises the same `InvalidInput` for the same addresses."""
    candidate = raw.strip()
    if _PLAIN.fullmatch(candidate):
        try:
            return _plain(candidate)
        except Exception:  # noqa: BLE001 - whatever the shortcut refuses, the full check decides and words
            pass
    return normalise_email(raw)

"""Lists and subscribers, and the rules for what a caller may put in them.

Ids are bigint identities inside the service and decimal strings outside it: clients treat them
as opaque, the dispatcher relies on their order for keyset paging (recipients snapshot).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from mailstify_servicekit.emails import normalise_email
from mailstify_servicekit.errors import Conflict, InvalidInput
from mailstify_servicekit.pagination import InvalidCursor, decode_cursor

SubscriberStatus = Literal["subscribed", "unsubscribed", "bounced", "complained"]
SUBSCRIBER_STATUSES: tuple[str, ...] = get_args(SubscriberStatus)

# `bounced` and `complained` are facts reported by the delivery pipeline, not operator choices.
OPERATOR_SETTABLE_STATUSES: frozenset[str] = frozenset({"subscribed", "unsubscribed"})

MAX_LIST_NAME = 200
MAX_DESCRIPTION = 2000
MAX_PERSON_NAME = 200
MAX_ATTRIBUTES_BYTES = 16 * 1024  # they travel in every DeliverEmail; keep them small
BIGINT_MAX = 2**63 - 1


@dataclass
class MailingList:
    id: int
    account_id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    subscriber_count: int = 0
    # Subscribers by status, kept up to date by the database (no COUNT over a big list per request).
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Subscriber:
    id: int
    account_id: str
    list_id: int
    email: str
    status: SubscriberStatus
    created_at: datetime
    updated_at: datetime
    first_name: str | None = None
    last_name: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


ImportMode = Literal["skip", "update"]
IMPORT_MODES: tuple[str, ...] = get_args(ImportMode)
ImportStatus = Literal["queued", "running", "completed", "failed"]
# How many rejected rows a job keeps, by line; `error_count` says how many there were in all.
MAX_REPORTED_ERRORS = 1000


@dataclass
class ImportJob:
    id: int
    account_id: str
    list_id: int
    mode: ImportMode
    status: ImportStatus
    created_at: datetime
    file_name: str = ""
    processed: int = 0
    imported: int = 0
    updated: int = 0
    skipped: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    detail: str | None = None
    finished_at: datetime | None = None


SuppressionReason = Literal["bounced", "complained"]


@dataclass
class Suppression:
    """An address the account never mails again on any list (Mailchimp's "cleaned")."""

    account_id: str
    email: str
    reason: SuppressionReason
    detail: str
    created_at: datetime


def parse_import_mode(raw: str | None) -> ImportMode:
    mode = (raw or "skip").strip().lower()
    if mode not in IMPORT_MODES:
        raise InvalidInput(f"mode must be 'skip' (keep subscribers already on the list) or 'update', got '{raw}'")
    return mode  # type: ignore[return-value]


def parse_id(raw: str) -> int | None:
    """The internal id behind an opaque id string, or None when it cannot be one of ours (→ 404)."""
    if not raw.isascii() or not raw.isdigit():
        return None
    value = int(raw)
    return value if 0 < value <= BIGINT_MAX else None


def parse_position(raw: str | None, name: str) -> int | None:
    """A subscriber id given as a keyset bound (`after`, `up_to`); malformed bounds are the caller's error."""
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) > BIGINT_MAX:
        raise InvalidInput(f"{name} must be a subscriber id (a decimal number), got '{raw}'")
    return int(raw)


def cursor_position(item: MailingList | Subscriber) -> dict[str, Any]:
    """What a page cursor remembers: pages are in ascending id order, so the last id seen."""
    return {"after": item.id}


def after_cursor(cursor: str | None) -> int:
    """The id a page starts after (0 for the first page)."""
    if cursor is None:
        return 0
    after = decode_cursor(cursor).get("after")
    if type(after) is not int or not 0 <= after <= BIGINT_MAX:
        raise InvalidCursor()
    return after


def clean_list_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise InvalidInput("list name must not be empty")
    if len(cleaned) > MAX_LIST_NAME:
        raise InvalidInput(f"list name must be at most {MAX_LIST_NAME} characters")
    return cleaned


def clean_description(description: str | None) -> str:
    cleaned = (description or "").strip()
    if len(cleaned) > MAX_DESCRIPTION:
        raise InvalidInput(f"description must be at most {MAX_DESCRIPTION} characters")
    return cleaned


def clean_person_name(value: str | None, field_name: str) -> str | None:
    """Blank names are stored as absent so templates' `| default(...)` has one case to handle."""
    cleaned = (value or "").strip()
    if len(cleaned) > MAX_PERSON_NAME:
        raise InvalidInput(f"{field_name} must be at most {MAX_PERSON_NAME} characters")
    return cleaned or None


def clean_email(raw: str) -> str:
    return normalise_email(raw)


def clean_attributes(attributes: dict[str, Any] | None) -> dict[str, Any]:
    attributes = attributes or {}
    if len(json.dumps(attributes, separators=(",", ":")).encode()) > MAX_ATTRIBUTES_BYTES:
        raise InvalidInput(f"attributes must be at most {MAX_ATTRIBUTES_BYTES // 1024} KiB of JSON")
    return attributes


def leaves_by_link(current: SubscriberStatus) -> bool:
    """Whether following an unsubscribe link changes the subscriber: only a `subscribed` one becomes
    `unsubscribed`; an unsubscribed, bounced or complained one gets no more mail already, and a
    second click must change (and announce) nothing."""
    return current == "subscribed"


def next_status(current: SubscriberStatus, requested: str) -> SubscriberStatus:
    """The status an operator may move a subscriber to, or why not."""
    if requested not in SUBSCRIBER_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(SUBSCRIBER_STATUSES)}")
    if requested not in OPERATOR_SETTABLE_STATUSES:
        raise InvalidInput(f"status '{requested}' is recorded by delivery, it cannot be set by hand")
    if current == "complained" and requested == "subscribed":
        # Re-mailing someone who reported spam hurts the sender's reputation for every account.
        raise Conflict("this subscriber marked a campaign as spam and cannot be resubscribed by hand")
    return requested  # type: ignore[return-value]

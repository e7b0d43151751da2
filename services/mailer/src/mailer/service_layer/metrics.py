"""The mailer's metrics. Per email they cost a dict increment: outcomes are counted per batch, one
counter add per (outcome, reply class, domain) group, never a span or a log line per email.

- `mailstify.mailer.emails` {email}: outcomes recorded, by `outcome` (sent, failed, retried,
  unknown, cancelled), `smtp.reply_class` (2xx, 4xx, 5xx, none) and `recipient.domain`;
- `mailstify.smtp.duration` (s): one SMTP transaction, connection set-up included;
- `mailstify.mailer.rate_limit.waits` {wait} and `mailstify.mailer.rate_limit.wait_duration` (s):
  sends held back by the rate limiter, and for how long.

Recipient domains are capped (`MAX_DOMAINS` distinct per process, the rest are `other`) so a list of
a million small domains cannot grow the scrape without bound.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterable
from typing import TypeVar

from opentelemetry import metrics

from ..domain.model import Outcome, Status

MAX_DOMAINS = 200
OTHER_DOMAIN = "other"

_OUTCOME_NAMES = {
    Status.SENT: "sent",
    Status.FAILED: "failed",
    Status.RETRY: "retried",
    Status.UNKNOWN: "unknown",
    Status.CANCELLED: "cancelled",
}

meter = metrics.get_meter("mailstify.mailer")
emails = meter.create_counter(
    "mailstify.mailer.emails",
    unit="{email}",
    description="Delivery outcomes recorded, by outcome, SMTP reply class and recipient domain",
)
smtp_duration = meter.create_histogram(
    "mailstify.smtp.duration", unit="s", description="Duration of one SMTP transaction, from connection to final reply"
)
rate_limit_waits = meter.create_counter(
    "mailstify.mailer.rate_limit.waits", unit="{wait}", description="Sends the rate limiter held back"
)
rate_limit_wait_duration = meter.create_histogram(
    "mailstify.mailer.rate_limit.wait_duration", unit="s", description="How long a held-back send waited"
)

_domains: set[str] = set()
T = TypeVar("T")


def reply_class(code: int | None) -> str:
    return f"{code // 100}xx" if code else "none"


def _domain(email: str) -> str:
    domain = email.rpartition("@")[2].lower()
    if domain in _domains:
        return domain
    if len(_domains) < MAX_DOMAINS:
        _domains.add(domain)
        return domain
    return OTHER_DOMAIN


def record_outcomes(outcomes: Iterable[tuple[str, Outcome]]) -> None:
    """(recipient email, recorded outcome) of one batch."""
    groups: dict[tuple[str, str, str], int] = {}
    for email, outcome in outcomes:
        key = (_OUTCOME_NAMES.get(outcome.status, outcome.status.value), reply_class(outcome.smtp_code), _domain(email))
        groups[key] = groups.get(key, 0) + 1
    for (outcome_name, reply, domain), count in groups.items():
        emails.add(count, {"outcome": outcome_name, "smtp.reply_class": reply, "recipient.domain": domain})


async def timed_smtp(transaction: Awaitable[T]) -> T:
    """Await one SMTP transaction and record its duration."""
    started = time.perf_counter()
    try:
        return await transaction
    finally:
        smtp_duration.record(time.perf_counter() - started)


def record_rate_limit_wait(seconds: float, domain: str | None = None) -> None:
    """For the rate limiter: a send waited `seconds` for its turn (`domain`: the limited domain, if any)."""
    attributes = {"recipient.domain": _domain(f"@{domain}")} if domain else None
    rate_limit_waits.add(1, attributes)
    rate_limit_wait_duration.record(seconds, attributes)

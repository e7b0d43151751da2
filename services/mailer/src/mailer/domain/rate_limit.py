"""The send rate limit's arithmetic (decision record 0019): token buckets shared by
every mailer replica, the chunks a replica takes from them, the slow-down a throttling reply puts on
a recipient domain (AIMD: halve, hold, climb back linearly) and which SMTP replies are throttling.

Pure: the adapter keeps the buckets in PostgreSQL and passes the database's clock in, so every
replica reasons with the same `now`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

# A bucket holds at most this much of its rate: a limiter idle for an hour may then burst half a
# second's worth, not an hour's. Also the most the limit can be overshot by, once, over any window.
BURST_SECONDS = 0.5
# A replica takes tokens from the shared bucket in chunks of ~this much of the rate, so one database
# round trip pays for many emails (~10 grants a second per bucket, whatever the number of replicas).
CHUNK_SECONDS = 0.1
# A throttled domain is never slowed below this (emails/s), unless its own limit is lower.
MIN_THROTTLED_RATE = 1.0
# Replies to mails already in flight when a domain was slowed down repeat the same complaint: within
# this many seconds of a halving, another throttling reply does not halve again.
RETHROTTLE_AFTER_SECONDS = 2.0

OVERALL = "*"


def domain_key(domain: str) -> str:
    return f"domain:{domain}"


@dataclass(frozen=True)
class RateLimits:
    """Emails per second, across all replicas: overall, for every recipient domain, per named domain."""

    overall: float | None = None
    per_domain: float | None = None
    domains: dict[str, float] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return self.overall is not None or self.per_domain is not None or bool(self.domains)

    def domain_limit(self, domain: str) -> float | None:
        """The domain's own limit (named, else the per-domain default), None when it has none."""
        return self.domains.get(domain, self.per_domain)

    def throttle_base(self, domain: str) -> float | None:
        """The rate a throttled domain's slow-down is a fraction of: its own limit, else the overall
        one; None when neither is set (nothing to slow down from)."""
        own = self.domain_limit(domain)
        return own if own is not None else self.overall


def parse_domain_rates(text: str) -> dict[str, float]:
    """`"gmail.com=20, outlook.com=7.5"` → {"gmail.com": 20.0, "outlook.com": 7.5}."""
    rates: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        domain, sep, value = item.partition("=")
        domain = domain.strip().lower()
        try:
            rate = float(value) if sep else math.nan
        except ValueError:
            rate = math.nan
        if not domain or "@" in domain or not rate > 0 or math.isinf(rate):
            raise ValueError(f"expected domain=emails-per-second (a positive number), got {item!r}")
        rates[domain] = rate
    return rates


@dataclass(frozen=True)
class ThrottlePolicy:
    # After a halving, the domain stays at the lowered rate this long ...
    hold_seconds: float = 30.0
    # ... then climbs back linearly, half of its base rate every `recovery_seconds`.
    recovery_seconds: float = 60.0


@dataclass(frozen=True)
class Bucket:
    """One shared bucket's row. Times are the database's clock (epoch seconds)."""

    tokens: float
    updated_at: float
    # The domain's slow-down: its rate is `base × factor(now)`; 1 when not slowed.
    slow_factor: float = 1.0
    slowed_at: float = 0.0

    def factor(self, now: float, policy: ThrottlePolicy) -> float:
        if self.slow_factor >= 1.0:
            return 1.0
        climbing = max(0.0, now - self.slowed_at - policy.hold_seconds)
        return min(1.0, self.slow_factor + climbing * 0.5 / policy.recovery_seconds)

    def slowed_until(self, policy: ThrottlePolicy) -> float:
        """When the slow-down is over (0 when there is none)."""
        if self.slow_factor >= 1.0:
            return 0.0
        return self.slowed_at + policy.hold_seconds + (1.0 - self.slow_factor) * policy.recovery_seconds / 0.5


@dataclass(frozen=True)
class Grant:
    granted: int
    bucket: Bucket
    # The tokens are the replica's to spend this many seconds from now (0: at once).
    ready_in: float = 0.0


def capacity(rate: float) -> float:
    return max(1.0, rate * BURST_SECONDS)


def chunk(rate: float) -> int:
    """How many tokens a replica asks for at most per round trip."""
    return max(1, int(rate * CHUNK_SECONDS))


def take(bucket: Bucket, now: float, rate: float, want: int) -> Grant:
    """Refill `bucket` at `rate` up to its capacity, then grant `want` tokens (capped at the
    capacity), usable once the bucket has earned them: the tokens may go below zero, and the grant
    says when the debt is paid. Every request succeeds, so a bucket costs ~rate/chunk round trips a
    second, refusals none; and no more is spent than the bucket earns (the debt is waited out)."""
    # Another replica's update may carry a later clock than ours (read before its lock was ours).
    now = max(now, bucket.updated_at)
    cap = capacity(rate)
    granted = max(1, min(want, math.floor(cap)))
    tokens = min(cap, bucket.tokens + (now - bucket.updated_at) * rate) - granted
    return Grant(granted, replace(bucket, tokens=tokens, updated_at=now), ready_in=max(0.0, -tokens / rate))


def slow_down(bucket: Bucket, now: float, policy: ThrottlePolicy, base_rate: float) -> Bucket:
    """A throttling reply: halve the domain's current rate (not below MIN_THROTTLED_RATE), unless it
    was halved moments ago. Tokens already in the bucket beyond the new capacity are dropped."""
    if bucket.slow_factor < 1.0 and now - bucket.slowed_at < RETHROTTLE_AFTER_SECONDS:
        return bucket
    floor = min(1.0, MIN_THROTTLED_RATE / base_rate)
    factor = max(floor, bucket.factor(now, policy) / 2)
    return replace(bucket, tokens=min(bucket.tokens, capacity(base_rate * factor)), slow_factor=factor, slowed_at=now)


# RFC 3463 enhanced status code at the start of the reply text: 4.7.x is a (transient) policy refusal,
# the class relays use for "rate limited", "too many messages", "try again later".
_TRANSIENT_POLICY = re.compile(r"^\s*4\.7\.\d{1,3}\b")
_RATE_WORDS = re.compile(
    r"\brate\b|rate.?limit|throttl|too many (?:messages|mails|emails|connections|requests|sessions)|slow down"
    r"|limit exceeded|exceeded .*limit",
    re.IGNORECASE,
)


def is_throttling(code: int | None, reply: str) -> bool:
    """A reply asking us to send more slowly: 421 (closing, come back later), a 4xx with a 4.7.x
    enhanced code ("4.7.0 Too many messages", "4.7.28 ... rate limited"), or a 4xx whose text speaks
    of a rate ("451 Rate limit exceeded, slow down")."""
    if code is None or not 400 <= code < 500:
        return False
    return code == 421 or bool(_TRANSIENT_POLICY.match(reply)) or bool(_RATE_WORDS.search(reply))


def recipient_domain(address: str) -> str:
    return address.rpartition("@")[2].strip().rstrip(">").lower()

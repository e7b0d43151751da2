"""Retry delays.

`backoff_delay`: exponential with full jitter, so that replicas that failed together do not retry
together; for short, local retries (a publish, a fan-out page).

`RetrySchedule`: an explicit list of delays for retries that must span a long time, e.g. a 4xx from a
receiving mail server (greylisting wants 5-15 minutes, throttling longer). Its `max_deliveries` is
the consumer's `max_deliver`, so the schedule and the consumer cannot disagree on when to give up.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass


def backoff_delay(attempt: int, base: float = 1.0, cap: float = 300.0, rng: random.Random | None = None) -> float:
    """Delay before retry number `attempt` (1 = first retry): uniform in [base/2, min(cap, base·2^(attempt-1))]."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(min(base / 2, ceiling), ceiling)


_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smh]?)")


def parse_duration(text: str) -> float:
    """`"90"`, `"90s"`, `"1.5m"`, `"2h"` → seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise ValueError(f"invalid duration {text!r}: expected a number of seconds, optionally with s, m or h")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class RetrySchedule:
    """Delay before each retry: `delays[0]` before the first retry, and so on; beyond the list the last
    delay repeats. Each delay is spread uniformly by ±`jitter` (a fraction) so replicas that failed
    together do not retry together."""

    delays: tuple[float, ...]
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not self.delays:
            raise ValueError("a retry schedule needs at least one delay")
        if any(d <= 0 for d in self.delays):
            raise ValueError(f"retry delays must be positive, got {self.delays}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be a fraction in [0, 1), got {self.jitter}")

    @classmethod
    def parse(cls, text: str, jitter: float = 0.2) -> RetrySchedule:
        """`"1m,2m,5m,10m,15m,20m"`: comma-separated durations in seconds or with an s/m/h suffix."""
        parts = [part.strip() for part in text.split(",")]
        if not text.strip() or any(not part for part in parts):
            raise ValueError(f"invalid retry schedule {text!r}: expected comma-separated durations like '1m,5m,15m'")
        try:
            return cls(tuple(parse_duration(part) for part in parts), jitter)
        except ValueError as exc:
            raise ValueError(f"invalid retry schedule {text!r}: {exc}") from None

    @classmethod
    def of(cls, delays: Sequence[float], jitter: float = 0.2) -> RetrySchedule:
        return cls(tuple(float(d) for d in delays), jitter)

    def nominal(self, attempt: int) -> float:
        """The un-jittered delay before retry number `attempt` (1 = first retry)."""
        if attempt < 1:
            raise ValueError(f"retry attempts count from 1, got {attempt}")
        return self.delays[min(attempt, len(self.delays)) - 1]

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number `attempt` (1 = first retry), jittered within ±`jitter`."""
        nominal = self.nominal(attempt)
        return (rng or random).uniform(nominal * (1 - self.jitter), nominal * (1 + self.jitter))

    @property
    def max_deliveries(self) -> int:
        """The first delivery plus one per delay: the consumer's `max_deliver` for this schedule."""
        return len(self.delays) + 1

    @property
    def span(self) -> float:
        """The least time from the first delivery to the last, with every delay at its jitter minimum
        (processing time and ack waits only add to it)."""
        return sum(self.delays) * (1 - self.jitter)

    def __str__(self) -> str:
        return ",".join(_format(d) for d in self.delays)


def _format(seconds: float) -> str:
    for suffix, unit in (("h", 3600.0), ("m", 60.0)):
        if seconds >= unit and seconds % unit == 0:
            return f"{int(seconds // unit)}{suffix}"
    return f"{seconds:g}s"


# 53 minutes nominal, ≥ 42 minutes at the low end of the jitter: past greylisting (5-15 min) and most
# throttling windows. A consumer using it sets max_deliver = DEFAULT_RETRY_SCHEDULE.max_deliveries (7).
DEFAULT_RETRY_SCHEDULE = RetrySchedule.parse("1m,2m,5m,10m,15m,20m")

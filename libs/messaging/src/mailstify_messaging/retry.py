"""Retry delays: exponential with full jitter, so that replicas that failed together do not retry
together."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float = 1.0, cap: float = 300.0, rng: random.Random | None = None) -> float:
    """Delay before retry number `attempt` (1 = first retry): uniform in [base/2, min(cap, base·2^(attempt-1))]."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(min(base / 2, ceiling), ceiling)

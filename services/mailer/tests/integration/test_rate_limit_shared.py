"""The send rate limit shared through PostgreSQL: three limiters (three replicas, each with its own
engine and its own tasks) acquiring as fast as they can get the configured rate between them, and a
throttling reply seen by one slows the domain down for all three, which then recover."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from mailstify_servicekit.database import create_engine, migrate

from mailer.adapters.rate_limit import PostgresRateLimiter
from mailer.domain.rate_limit import RateLimits, ThrottlePolicy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MIGRATIONS = Path(__file__).parents[2] / "src" / "mailer" / "adapters" / "migrations"
REPLICAS = 3
# Concurrent senders per replica, like a pool's connections each waiting for their next mail.
SENDERS = 8


@pytest.fixture
async def engines(fresh_database) -> AsyncIterator[list[AsyncEngine]]:
    await asyncio.to_thread(migrate, fresh_database, MIGRATIONS)
    engines = [create_engine(fresh_database, pool_size=2) for _ in range(REPLICAS)]
    yield engines
    for engine in engines:
        await engine.dispose()


async def committed_transactions(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(sa.text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"))
        ).scalar_one()


async def hammer(limiter: PostgresRateLimiter, domain: str, until: float, times: list[float]) -> None:
    """Acquire for `domain` as fast as the limiter allows until `until`, noting each grant's time."""

    async def sender() -> None:
        while time.monotonic() < until:
            await limiter.acquire(domain)
            times.append(time.monotonic())

    await asyncio.gather(*(sender() for _ in range(SENDERS)))


def rate(times: list[float], start: float, end: float) -> float:
    return sum(start <= t < end for t in times) / (end - start)


async def test_three_replicas_share_the_overall_limit(engines, capsys):
    limit, duration = 50.0, 20.0
    limiters = [PostgresRateLimiter(engine, RateLimits(overall=limit), ThrottlePolicy()) for engine in engines]
    before = await committed_transactions(engines[0])
    start = time.monotonic()
    times: list[list[float]] = [[] for _ in limiters]
    await asyncio.gather(
        *(hammer(limiter, f"d{i}.test", start + duration, t) for i, (limiter, t) in enumerate(zip(limiters, times)))
    )
    transactions = await committed_transactions(engines[0]) - before
    granted = [sum(t < start + duration for t in replica) for replica in times]
    total = sum(granted)
    with capsys.disabled():
        print(
            f"\nshared limit {limit}/s over {duration}s, {REPLICAS} replicas: {total} granted "
            f"({total / duration:.1f}/s; per replica {granted}), {transactions} database transactions"
        )
    assert total == pytest.approx(limit * duration, rel=0.10)
    # Every replica got a fair part of it, not one replica all of it.
    assert min(granted) > total / REPLICAS / 2
    # Chunks: far fewer round trips than emails (grants, refusals and the slowed-domain refresh).
    assert transactions < total / 2


async def test_a_throttling_reply_slows_every_replica_for_that_domain_then_it_recovers(engines, capsys):
    domain_limit = 40.0
    policy = ThrottlePolicy(hold_seconds=4.0, recovery_seconds=4.0)
    limits = RateLimits(overall=150.0, domains={"slow.test": domain_limit})
    limiters = [PostgresRateLimiter(engine, limits, policy, refresh_seconds=0.5) for engine in engines]
    start = time.monotonic()
    throttled_at = start + 4.0
    # Halved at 4 s, held until 8 s, climbing back half the limit every 4 s: full again at 12 s.
    end = start + 15.0
    times: list[list[float]] = [[] for _ in limiters]

    async def throttle() -> None:
        await asyncio.sleep(throttled_at - time.monotonic())
        await limiters[0].throttled("slow.test", "421 4.7.0 Too many messages, slow down")

    # Another domain, without a limit of its own, only under the overall one: untouched throughout.
    other: list[float] = []
    await asyncio.gather(
        throttle(),
        hammer(limiters[1], "fast.test", start + 8.0, other),
        *(hammer(limiter, "slow.test", end, t) for limiter, t in zip(limiters, times)),
    )
    every = sorted(t for replica in times for t in replica)
    before = rate(every, start + 1.0, throttled_at)
    held = rate(every, throttled_at + 1.0, throttled_at + 4.0)
    after = rate(every, end - 3.0, end)
    # The two replicas that did not see the reply slowed down as much as the one that did.
    others_held = sum(rate(times[i], throttled_at + 1.0, throttled_at + 4.0) for i in (1, 2))
    with capsys.disabled():
        print(
            f"\nslow.test ({domain_limit}/s): {before:.1f}/s before the 421, {held:.1f}/s held "
            f"({others_held:.1f}/s by the two replicas that did not get it), {after:.1f}/s recovered; "
            f"fast.test alongside {rate(other, start + 1.0, throttled_at):.1f}/s, then "
            f"{rate(other, throttled_at + 1.0, start + 8.0):.1f}/s"
        )
    assert before == pytest.approx(domain_limit, rel=0.15)
    assert held == pytest.approx(domain_limit / 2, rel=0.2)
    assert others_held < domain_limit / 2 * 1.1
    assert after == pytest.approx(domain_limit, rel=0.15)
    # Under the overall limit (150/s) alongside, fast.test is not slowed by slow.test's reply.
    assert rate(other, start + 1.0, throttled_at) > 80
    assert rate(other, throttled_at + 1.0, start + 8.0) > 80
    assert rate(every, start + 1.0, throttled_at) + rate(other, start + 1.0, throttled_at) < 150 * 1.1


async def test_a_domain_without_a_limit_of_its_own_is_slowed_from_the_overall_one(engines):
    policy = ThrottlePolicy(hold_seconds=30.0, recovery_seconds=60.0)
    limits = RateLimits(overall=60.0)
    seen, other = (PostgresRateLimiter(engine, limits, policy, refresh_seconds=0.2) for engine in engines[:2])
    await seen.throttled("busy.test", "451 4.7.1 Rate limit exceeded")
    await asyncio.sleep(0.3)
    times: list[float] = []
    start = time.monotonic()
    await hammer(other, "busy.test", start + 4.0, times)
    assert rate(times, start + 0.5, start + 4.0) == pytest.approx(30.0, rel=0.15)

"""The send rate limit shared by all mailer replicas: token buckets in the mailers' one database
(table `send_rate_buckets`, migration 0004; decision record 0019).

Each replica keeps a few tokens of each bucket locally and takes more in chunks (~100 ms of the
bucket's rate per round trip, `domain.rate_limit.chunk`): an email costs a counter decrement, and a
bucket costs the database ~10 small transactions a second however many replicas share it (a grant
never fails: it may run ahead of the refill, and then says how long to wait). A grant is
`SELECT ... FOR UPDATE` + `UPDATE` of the bucket's row in one transaction, the arithmetic done here
on the database's clock: replicas are serialised on the row, so the limit is exactly shared.

Buckets: `*` for MAILSTIFY_RATE_LIMIT; `domain:<d>` for a domain with a limit of its own, and for
any domain while it is slowed down by a throttling reply (the slow-down lives in the same row, so
every replica sees it; which domains are slowed is re-read every `refresh_seconds`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain.rate_limit import (
    OVERALL,
    Bucket,
    RateLimits,
    ThrottlePolicy,
    capacity,
    chunk,
    domain_key,
    slow_down,
    take,
)

log = logging.getLogger(__name__)

_NOW = "extract(epoch from clock_timestamp())"
_CREATE = sa.text(
    f"INSERT INTO send_rate_buckets (key, tokens, updated_at) VALUES (:key, :tokens, {_NOW}) "
    "ON CONFLICT (key) DO NOTHING"
)
_LOCK = sa.text(
    f"SELECT tokens, updated_at, slow_factor, slowed_at, {_NOW} AS now FROM send_rate_buckets WHERE key = :key FOR UPDATE"
)
_STORE = sa.text(
    "UPDATE send_rate_buckets SET tokens = :tokens, updated_at = :updated_at, slow_factor = :slow_factor, "
    "slowed_at = :slowed_at, slowed_until = :slowed_until WHERE key = :key"
)
_SLOWED = sa.text(f"SELECT key FROM send_rate_buckets WHERE key LIKE 'domain:%' AND slowed_until > {_NOW}")


class _LocalTokens:
    """This replica's tokens of one shared bucket; waiters are served in order (asyncio.Lock is FIFO)."""

    def __init__(self) -> None:
        self.tokens = 0
        # When the tokens held are the bucket's to spend (a grant may run ahead of its refill).
        self.ready_at = 0.0
        self.waiting = 0
        self.lock = asyncio.Lock()


class PostgresRateLimiter:
    def __init__(
        self,
        engine: AsyncEngine,
        limits: RateLimits,
        policy: ThrottlePolicy,
        refresh_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._engine = engine
        self._limits = limits
        self._policy = policy
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._local: dict[str, _LocalTokens] = {}
        self._created: set[str] = set()
        # Domains slowed by a throttling reply (here or on another replica), as last read.
        self._slowed: frozenset[str] = frozenset()
        self._next_refresh = 0.0
        self._refreshing = False

    async def acquire(self, domain: str, count: int = 1) -> None:
        if self._clock() >= self._next_refresh and not self._refreshing:
            await self._refresh_slowed()
        # The domain's bucket first: when it is the scarcer, the overall tokens are not held meanwhile.
        if self._limits.domain_limit(domain) is not None or domain in self._slowed:
            await self._take(domain_key(domain), count)
        if self._limits.overall is not None:
            await self._take(OVERALL, count)

    async def throttled(self, domain: str, reply: str) -> None:
        base = self._limits.throttle_base(domain)
        if base is None:
            log.warning("throttling reply for %s, but no rate limit to slow it down from: %s", domain, reply)
            return
        key = domain_key(domain)
        await self._ensure_created(key, base)
        async with self._engine.begin() as conn:
            bucket, now = await self._lock(conn, key)
            slowed = slow_down(bucket, now, self._policy, base)
            if slowed != bucket:
                log.info(
                    "throttling reply for %s: every replica now sends to it at %.1f/s (%s)",
                    domain,
                    base * slowed.factor(now, self._policy),
                    reply,
                )
            await self._store(conn, key, slowed)
        # Tokens this replica holds for the domain were taken at the old rate.
        local = self._local.get(key)
        if local is not None:
            local.tokens = 0
        self._slowed = self._slowed | {domain}

    async def _take(self, key: str, count: int) -> None:
        local = self._local.get(key)
        if local is None:
            local = self._local[key] = _LocalTokens()
        if local.tokens >= count and not local.lock.locked() and self._clock() >= local.ready_at:
            local.tokens -= count
            return
        local.waiting += count
        try:
            async with local.lock:
                while local.tokens < count:
                    # Ask for what those queued behind need too, up to a chunk: the next emails
                    # then find their tokens here.
                    granted, ready_in = await self._grant(key, max(count - local.tokens, local.waiting))
                    local.tokens += granted
                    local.ready_at = self._clock() + ready_in
                # Kept when the wait is cut short (the batch's time ran out): the next mail waits the rest.
                if (wait := local.ready_at - self._clock()) > 0:
                    await asyncio.sleep(wait)
                local.tokens -= count
        finally:
            local.waiting -= count

    def _rate(self, key: str, bucket: Bucket, now: float) -> float:
        if key == OVERALL:
            assert self._limits.overall is not None
            return self._limits.overall
        base = self._limits.throttle_base(key.removeprefix("domain:"))
        assert base is not None, f"no rate for bucket {key}"
        return base * bucket.factor(now, self._policy)

    async def _grant(self, key: str, want: int) -> tuple[int, float]:
        await self._ensure_created(key, self._rate(key, Bucket(0.0, 0.0), 0.0))
        async with self._engine.begin() as conn:
            bucket, now = await self._lock(conn, key)
            rate = self._rate(key, bucket, now)
            grant = take(bucket, now, rate, min(want, chunk(rate)))
            await self._store(conn, key, grant.bucket)
        return grant.granted, grant.ready_in

    async def _ensure_created(self, key: str, rate: float) -> None:
        if key in self._created:
            return
        async with self._engine.begin() as conn:
            # Created full: a first campaign need not wait for its first tokens.
            await conn.execute(_CREATE, {"key": key, "tokens": capacity(rate)})
        self._created.add(key)

    @staticmethod
    async def _lock(conn, key: str) -> tuple[Bucket, float]:
        row = (await conn.execute(_LOCK, {"key": key})).one()
        return Bucket(row.tokens, row.updated_at, row.slow_factor, row.slowed_at), float(row.now)

    async def _store(self, conn, key: str, bucket: Bucket) -> None:
        await conn.execute(
            _STORE,
            {
                "key": key,
                "tokens": bucket.tokens,
                "updated_at": bucket.updated_at,
                "slow_factor": bucket.slow_factor,
                "slowed_at": bucket.slowed_at,
                "slowed_until": bucket.slowed_until(self._policy),
            },
        )

    async def _refresh_slowed(self) -> None:
        self._refreshing = True
        # Set first: while the database is unreachable, not every email tries it again.
        self._next_refresh = self._clock() + self._refresh_seconds
        try:
            async with self._engine.connect() as conn:
                keys = (await conn.execute(_SLOWED)).scalars().all()
            slowed = frozenset(key.removeprefix("domain:") for key in keys)
            # A domain no longer slowed and without a limit of its own stops using its bucket:
            # the tokens held for it are of no further use.
            for domain in self._slowed - slowed:
                if self._limits.domain_limit(domain) is None:
                    self._local.pop(domain_key(domain), None)
            self._slowed = slowed
        finally:
            self._refreshing = False

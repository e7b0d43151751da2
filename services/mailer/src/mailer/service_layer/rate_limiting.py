"""A Sender that keeps to the shared send rate limit: each mail waits for its token (overall and for
its recipient domain) before it is handed to the sender it wraps, and a throttling reply slows its
domain down for every replica. Wired only when a limit is configured (bootstrap.py): without one,
mails go straight to the pool, with no cost at all.

A delivery handler that would rather wait for the tokens before its claims are marked `sending`
(so that no claim is `sending` while it waits, and no mail runs out of start time for want of a
token) calls `admit` itself first and wraps the sender with `acquire=False`: the sender then only
reports throttling replies."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

from ..domain.model import SmtpAttempt, SmtpPhase
from ..domain.rate_limit import is_throttling, recipient_domain
from .metrics import record_rate_limit_wait
from .ports import OutgoingMail, Sender, SendRateLimiter

log = logging.getLogger(__name__)

STOPPING = "mailer stopping; released for another replica"
LIMITER_UNAVAILABLE = "send rate limiter unavailable"


async def admit(limiter: SendRateLimiter, mails: list[OutgoingMail]) -> None:
    """Wait, without a deadline, until every mail may go on the wire: one acquire per recipient
    domain, all domains at once."""
    domains = Counter(recipient_domain(mail.rcpt_to) for mail in mails)

    async def acquire(domain: str, count: int) -> None:
        started = time.monotonic()
        await limiter.acquire(domain, count)
        if (waited := time.monotonic() - started) > 0.001:
            record_rate_limit_wait(waited, domain)

    await asyncio.gather(*(acquire(domain, count) for domain, count in domains.items()))


class RateLimitedSender:
    def __init__(self, sender: Sender, limiter: SendRateLimiter, acquire: bool = True, clock=time.monotonic):
        self._sender = sender
        self._limiter = limiter
        # False when the caller `admit`s the mails before sending: only throttling is reported here.
        self._acquire = acquire
        self._clock = clock
        self._stopping = False
        # The waits for a token in progress: a stopping mailer ends them at once.
        self._waits: set[asyncio.Timeout] = set()

    def stop_starting(self) -> None:
        """Mails still waiting for their token are returned not attempted (see SmtpPool.stop_starting)."""
        self._stopping = True
        now = asyncio.get_running_loop().time()
        for wait in self._waits:
            wait.reschedule(now)

    async def send_all(self, mails: list[OutgoingMail], start_before: float) -> list[SmtpAttempt]:
        """Mails are handed on one by one as their tokens come, concurrently (the pool spreads them
        over its connections as before); one not granted before `start_before` is not attempted."""
        return list(await asyncio.gather(*(self._send(mail, start_before) for mail in mails)))

    async def _send(self, mail: OutgoingMail, start_before: float) -> SmtpAttempt:
        domain = recipient_domain(mail.rcpt_to)
        if self._stopping:
            return SmtpAttempt.not_attempted(STOPPING)
        remaining = start_before - self._clock()
        if remaining <= 0:
            return SmtpAttempt.not_attempted()
        if self._acquire and (refused := await self._wait_for_token(domain, remaining)) is not None:
            return refused
        [attempt] = await self._sender.send_all([mail], start_before)
        # A refusal at connect/greeting/AUTH is the relay's, about no recipient domain.
        if attempt.phase is not SmtpPhase.SESSION and is_throttling(attempt.code, attempt.reply):
            try:
                await self._limiter.throttled(domain, f"{attempt.code} {attempt.reply}")
            except Exception as exc:  # noqa: BLE001 — the attempt's outcome stands regardless
                log.warning("could not record a throttling reply for %s: %s: %s", domain, type(exc).__name__, exc)
        return attempt

    async def _wait_for_token(self, domain: str, remaining: float) -> SmtpAttempt | None:
        """None once the token is ours; else why the mail is not attempted."""
        try:
            async with asyncio.timeout(remaining) as wait:
                self._waits.add(wait)
                try:
                    await self._limiter.acquire(domain)
                finally:
                    self._waits.discard(wait)
        except TimeoutError:
            return SmtpAttempt.not_attempted(STOPPING if self._stopping else "batch out of time")
        except Exception as exc:  # noqa: BLE001 — never send unlimited: retry once the limiter is back
            log.warning("send rate limiter unavailable: %s: %s", type(exc).__name__, exc)
            return SmtpAttempt.not_attempted(f"{LIMITER_UNAVAILABLE}: {type(exc).__name__}")
        return None

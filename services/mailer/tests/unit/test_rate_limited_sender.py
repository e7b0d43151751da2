"""RateLimitedSender: every mail waits for its domain's token before it is handed on, throttling
replies are reported for their domain, and a mail the limiter cannot clear is not sent."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

import pytest

from mailer.config import Settings
from mailer.domain.model import SmtpAttempt, SmtpPhase
from mailer.domain.rate_limit import RateLimits, ThrottlePolicy
from mailer.service_layer.ports import OutgoingMail
from mailer.service_layer.rate_limiting import LIMITER_UNAVAILABLE, STOPPING, RateLimitedSender, admit


@dataclass
class FakeLimiter:
    acquired: list[str] = field(default_factory=list)
    throttles: list[tuple[str, str]] = field(default_factory=list)
    # Domains whose tokens never come / whose limiter is unreachable.
    starved: set[str] = field(default_factory=set)
    broken: bool = False

    async def acquire(self, domain: str, count: int = 1) -> None:
        if self.broken:
            raise ConnectionError("database unreachable")
        if domain in self.starved:
            await asyncio.Event().wait()
        self.acquired.append(domain)

    async def throttled(self, domain: str, reply: str) -> None:
        self.throttles.append((domain, reply))


@dataclass
class FakeSender:
    replies: dict[str, SmtpAttempt] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)

    async def send_all(self, mails: list[OutgoingMail], start_before: float) -> list[SmtpAttempt]:
        self.sent.extend(mail.rcpt_to for mail in mails)
        return [self.replies.get(mail.rcpt_to, SmtpAttempt(250, "2.0.0 Ok")) for mail in mails]


def mail(rcpt: str) -> OutgoingMail:
    return OutgoingMail("news@acme.test", rcpt, b"Subject: hi\r\n\r\nhi\r\n")


def later(seconds: float = 30.0) -> float:
    return time.monotonic() + seconds


async def test_each_mail_takes_a_token_of_its_domain_before_it_is_sent():
    limiter, inner = FakeLimiter(), FakeSender()
    attempts = await RateLimitedSender(inner, limiter).send_all(
        [mail("a@one.test"), mail("b@Two.test"), mail("c@one.test")], later()
    )
    assert [a.code for a in attempts] == [250, 250, 250]
    assert sorted(limiter.acquired) == ["one.test", "one.test", "two.test"]
    assert sorted(inner.sent) == ["a@one.test", "b@Two.test", "c@one.test"]


async def test_a_throttling_reply_slows_its_domain_down_and_is_returned_as_is():
    refused = SmtpAttempt(421, "4.7.0 Too many messages", phase=SmtpPhase.RCPT)
    session = SmtpAttempt(421, "4.7.0 Too busy", phase=SmtpPhase.SESSION)
    limiter = FakeLimiter()
    inner = FakeSender(
        replies={
            "a@slow.test": refused,
            "b@relay.test": session,
            "c@ok.test": SmtpAttempt(451, "4.3.0 Temporary local problem"),
        }
    )
    attempts = await RateLimitedSender(inner, limiter).send_all(
        [mail("a@slow.test"), mail("b@relay.test"), mail("c@ok.test")], later()
    )
    assert attempts[0] == refused
    # The relay refusing a session is about no recipient domain; a 451 without a rate hint is no throttle.
    assert limiter.throttles == [("slow.test", "421 4.7.0 Too many messages")]


async def test_a_mail_whose_token_does_not_come_in_time_is_not_attempted():
    limiter, inner = FakeLimiter(starved={"slow.test"}), FakeSender()
    attempts = await RateLimitedSender(inner, limiter).send_all([mail("a@slow.test"), mail("b@ok.test")], later(0.2))
    assert not attempts[0].attempted
    assert attempts[1].attempted
    assert inner.sent == ["b@ok.test"]


async def test_a_stopping_mailer_ends_the_waits_at_once():
    limiter, inner = FakeLimiter(starved={"slow.test"}), FakeSender()
    sender = RateLimitedSender(inner, limiter)
    sending = asyncio.create_task(sender.send_all([mail("a@slow.test")], later()))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    sender.stop_starting()
    [attempt] = await sending
    assert time.monotonic() - started < 1.0
    assert not attempt.attempted and STOPPING in attempt.reply
    assert not (await sender.send_all([mail("b@ok.test")], later()))[0].attempted
    assert inner.sent == []


async def test_an_unreachable_limiter_sends_nothing_rather_than_unlimited():
    inner = FakeSender()
    [attempt] = await RateLimitedSender(inner, FakeLimiter(broken=True)).send_all([mail("a@one.test")], later())
    assert not attempt.attempted and LIMITER_UNAVAILABLE in attempt.reply
    assert inner.sent == []


@pytest.fixture
def no_mailstify_environment(monkeypatch):
    for name in [n for n in os.environ if n.startswith("MAILSTIFY_")]:
        monkeypatch.delenv(name)


def test_rate_limits_come_from_the_environment(monkeypatch, no_mailstify_environment):
    assert not Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none").rate_limits.configured
    monkeypatch.setenv("MAILSTIFY_RATE_LIMIT", "100")
    monkeypatch.setenv("MAILSTIFY_RATE_LIMIT_PER_DOMAIN", "20")
    monkeypatch.setenv("MAILSTIFY_RATE_LIMIT_DOMAINS", "gmail.com=10, Outlook.com=2.5")
    monkeypatch.setenv("MAILSTIFY_THROTTLE_HOLD_SECONDS", "5")
    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert settings.rate_limits == RateLimits(100.0, 20.0, {"gmail.com": 10.0, "outlook.com": 2.5})
    assert settings.throttle_policy == ThrottlePolicy(hold_seconds=5.0, recovery_seconds=60.0)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("MAILSTIFY_RATE_LIMIT", "0", "MAILSTIFY_RATE_LIMIT must be a positive"),
        ("MAILSTIFY_RATE_LIMIT_PER_DOMAIN", "-3", "MAILSTIFY_RATE_LIMIT_PER_DOMAIN must be a positive"),
        ("MAILSTIFY_RATE_LIMIT_DOMAINS", "gmail.com", "domain=emails-per-second"),
        ("MAILSTIFY_THROTTLE_RECOVERY_SECONDS", "0", "throttle_recovery_seconds"),
    ],
)
def test_unusable_rate_limits_are_refused_at_start(monkeypatch, no_mailstify_environment, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")


async def test_mails_admitted_beforehand_take_one_acquire_per_domain_and_none_when_sent():
    limiter, inner = FakeLimiter(), FakeSender(replies={"b@slow.test": SmtpAttempt(421, "4.7.0 Slow down")})
    counts: list[tuple[str, int]] = []
    acquire = limiter.acquire

    async def counting(domain: str, count: int = 1) -> None:
        counts.append((domain, count))
        await acquire(domain, count)

    limiter.acquire = counting  # type: ignore[method-assign]
    mails = [mail("a@one.test"), mail("b@slow.test"), mail("c@one.test")]
    await admit(limiter, mails)
    assert sorted(counts) == [("one.test", 2), ("slow.test", 1)]
    attempts = await RateLimitedSender(inner, limiter, acquire=False).send_all(mails, later())
    assert len(counts) == 2, "no second acquire when sending"
    assert [a.code for a in attempts] == [250, 421, 250]
    assert limiter.throttles == [("slow.test", "421 4.7.0 Slow down")]

"""The send rate limit's arithmetic, on a fake clock: token buckets, chunked grants, the AIMD
slow-down of a throttled domain, and which replies are throttling."""

from __future__ import annotations

import heapq

import pytest

from mailer.domain.rate_limit import (
    BURST_SECONDS,
    MIN_THROTTLED_RATE,
    RETHROTTLE_AFTER_SECONDS,
    Bucket,
    RateLimits,
    ThrottlePolicy,
    capacity,
    chunk,
    is_throttling,
    parse_domain_rates,
    recipient_domain,
    slow_down,
    take,
)

POLICY = ThrottlePolicy(hold_seconds=10.0, recovery_seconds=20.0)


def test_a_grant_takes_what_is_asked_when_the_bucket_has_it():
    grant = take(Bucket(tokens=5.0, updated_at=100.0), now=100.0, rate=50.0, want=5)
    assert (grant.granted, grant.ready_in) == (5, 0.0)
    assert grant.bucket == Bucket(tokens=0.0, updated_at=100.0)


def test_a_bucket_refills_at_its_rate_up_to_its_capacity():
    rate = 50.0
    refilled = take(Bucket(0.0, 100.0), now=100.06, rate=rate, want=3)
    assert (refilled.granted, refilled.ready_in) == (3, 0.0)
    # An hour idle fills it only to half a second's worth.
    idle = take(Bucket(0.0, 100.0), now=3700.0, rate=rate, want=1)
    assert idle.bucket.tokens == pytest.approx(rate * BURST_SECONDS - 1)


def test_a_grant_beyond_the_tokens_there_is_usable_once_they_are_earned():
    grant = take(Bucket(1.0, 100.0), now=100.0, rate=50.0, want=5)
    assert grant.granted == 5
    assert grant.ready_in == pytest.approx(4 / 50)
    # The next replica's grant waits behind this one's.
    behind = take(grant.bucket, now=100.02, rate=50.0, want=5)
    assert behind.ready_in == pytest.approx(0.16)  # usable at 100.18, after the first grant's
    assert behind.bucket.tokens == pytest.approx(-8.0)


def test_a_request_above_the_capacity_is_capped_to_it():
    # 4/s: capacity 2; asking for 10 gets 2, never a wait of its own making beyond that.
    grant = take(Bucket(0.0, 0.0), now=10.0, rate=4.0, want=10)
    assert (grant.granted, grant.ready_in) == (2, 0.0)


def test_a_clock_behind_the_last_update_adds_no_tokens():
    grant = take(Bucket(0.0, 100.0), now=99.5, rate=50.0, want=1)
    assert grant.ready_in == pytest.approx(1 / 50)
    assert grant.bucket.updated_at == 100.0


def test_chunks_are_a_tenth_of_a_second_of_the_rate_and_at_least_one():
    assert chunk(2500.0) == 250
    assert chunk(50.0) == 5
    assert chunk(3.0) == 1
    assert capacity(0.5) == 1.0


@pytest.mark.parametrize("rate, replicas", [(50.0, 3), (30.0, 3), (7.0, 2), (2500.0, 3)])
def test_hungry_replicas_sharing_a_bucket_get_the_rate_and_no_more(rate, replicas):
    """Event simulation of replicas that each take chunks as fast as they can (the adapter's loop):
    over a minute they spend rate × 60 tokens within 2% (the initial full bucket included), with
    rate / chunk round trips a second between them, not one per email."""
    duration = 60.0
    bucket = Bucket(capacity(rate), 0.0)
    events = [(0.001 * i, i) for i in range(replicas)]
    spent = round_trips = 0
    while events:
        now, replica = heapq.heappop(events)
        grant = take(bucket, now, rate, chunk(rate))
        bucket = grant.bucket
        round_trips += 1
        usable_at = now + grant.ready_in
        if usable_at > duration:
            continue
        spent += grant.granted
        # A hungry replica spends its chunk once usable, at once, and asks again.
        heapq.heappush(events, (usable_at + 0.0005, replica))
    assert spent == pytest.approx(rate * duration, rel=0.02)
    assert spent <= rate * duration + capacity(rate)
    assert round_trips / duration <= rate / chunk(rate) * 1.05 + replicas


def test_a_throttling_reply_halves_the_domain_holds_then_climbs_back():
    bucket = slow_down(Bucket(10.0, 0.0), now=100.0, policy=POLICY, base_rate=40.0)
    assert bucket.slow_factor == 0.5
    assert bucket.factor(100.0, POLICY) == 0.5
    assert bucket.factor(110.0, POLICY) == 0.5  # held
    assert bucket.factor(120.0, POLICY) == pytest.approx(0.75)  # half the base every 20 s
    assert bucket.factor(130.0, POLICY) == 1.0
    assert bucket.slowed_until(POLICY) == pytest.approx(130.0)
    # Tokens beyond the new capacity (20/s × 0.5 s) are dropped.
    assert bucket.tokens == 10.0
    assert slow_down(Bucket(30.0, 0.0), 100.0, POLICY, base_rate=40.0).tokens == pytest.approx(10.0)


def test_replies_to_mails_already_in_flight_do_not_halve_again():
    once = slow_down(Bucket(0.0, 0.0), now=100.0, policy=POLICY, base_rate=40.0)
    assert slow_down(once, 100.0 + RETHROTTLE_AFTER_SECONDS / 2, POLICY, 40.0) == once
    twice = slow_down(once, 100.0 + RETHROTTLE_AFTER_SECONDS, POLICY, 40.0)
    assert twice.slow_factor == 0.25
    assert twice.slowed_until(POLICY) == pytest.approx(twice.slowed_at + 10.0 + 0.75 * 40.0)


def test_a_throttled_domain_keeps_a_minimum_rate():
    bucket = Bucket(0.0, 0.0)
    for step in range(20):
        bucket = slow_down(bucket, now=step * RETHROTTLE_AFTER_SECONDS, policy=POLICY, base_rate=40.0)
    assert 40.0 * bucket.slow_factor == MIN_THROTTLED_RATE
    # A domain limited below the minimum is not slowed further.
    assert slow_down(Bucket(0.0, 0.0), 0.0, POLICY, base_rate=0.5).slow_factor == 1.0


def test_a_slowed_domain_recovers_from_where_it_climbed_to():
    bucket = slow_down(Bucket(0.0, 0.0), now=0.0, policy=POLICY, base_rate=40.0)  # 0.5
    # At 20 s it had climbed to 0.75; a new complaint halves that.
    assert slow_down(bucket, 20.0, POLICY, 40.0).slow_factor == pytest.approx(0.375)


@pytest.mark.parametrize(
    "code, reply",
    [
        (421, "4.7.0 Too many messages, try again later"),
        (421, "4.7.28 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail"),
        (421, "Service not available, closing transmission channel"),
        (451, "4.7.1 Please slow down"),
        (451, "Rate limit exceeded for sender"),
        (450, "Too many connections from your IP"),
        (452, "4.7.0 Throttled"),
    ],
)
def test_throttling_replies(code, reply):
    assert is_throttling(code, reply)


@pytest.mark.parametrize(
    "code, reply",
    [
        (250, "2.0.0 Ok: queued"),
        (451, "4.3.0 Temporary local problem"),
        (452, "4.5.3 Too many recipients"),
        (450, "4.2.2 Mailbox full"),
        (550, "5.7.1 Rate of spam too high"),  # permanent: classified as such, not slowed
        (None, "TimeoutError"),
    ],
)
def test_other_replies_are_not_throttling(code, reply):
    assert not is_throttling(code, reply)


def test_domain_rates_parse_and_bad_ones_are_refused():
    assert parse_domain_rates(" Gmail.com=20, outlook.com=7.5 ,") == {"gmail.com": 20.0, "outlook.com": 7.5}
    assert parse_domain_rates("") == {}
    for bad in ("gmail.com", "gmail.com=", "gmail.com=0", "gmail.com=-1", "=5", "gmail.com=fast", "a@b.com=3"):
        with pytest.raises(ValueError, match="domain=emails-per-second"):
            parse_domain_rates(bad)


def test_limits_name_each_domains_rate_and_what_a_slow_down_is_a_fraction_of():
    limits = RateLimits(overall=100.0, per_domain=20.0, domains={"slow.test": 5.0})
    assert limits.configured
    assert limits.domain_limit("slow.test") == 5.0
    assert limits.domain_limit("other.test") == 20.0
    assert RateLimits(overall=100.0).domain_limit("other.test") is None
    assert RateLimits(overall=100.0).throttle_base("other.test") == 100.0
    assert RateLimits(domains={"slow.test": 5.0}).throttle_base("other.test") is None
    assert not RateLimits().configured


def test_recipient_domain():
    assert recipient_domain("Ann@Example.COM") == "example.com"
    assert recipient_domain("<bob@mx.test>") == "mx.test"

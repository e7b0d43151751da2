"""Retry delays: the configurable schedule used for long retry windows (4xx from mail servers)."""

from __future__ import annotations

import random

import pytest

from mailstify_messaging import DEFAULT_RETRY_SCHEDULE, RetrySchedule, backoff_delay


def test_the_default_schedule_spans_half_an_hour_even_at_the_low_end_of_the_jitter():
    schedule = DEFAULT_RETRY_SCHEDULE
    assert schedule.span >= 1800
    assert schedule.max_deliveries == len(schedule.delays) + 1
    rng = random.Random(7)
    for _ in range(200):  # any draw of the jitter, not just its bound
        assert sum(schedule.delay(n, rng) for n in range(1, schedule.max_deliveries)) >= 1800


def test_delays_follow_the_list_then_repeat_the_last():
    schedule = RetrySchedule((10.0, 60.0, 300.0), jitter=0)
    assert [schedule.delay(n) for n in range(1, 6)] == [10.0, 60.0, 300.0, 300.0, 300.0]
    assert schedule.max_deliveries == 4
    assert schedule.span == 370.0


def test_jitter_stays_within_its_bounds_and_does_spread():
    schedule = RetrySchedule((100.0,), jitter=0.2)
    rng = random.Random(1)
    draws = [schedule.delay(1, rng) for _ in range(2000)]
    assert all(80.0 <= d <= 120.0 for d in draws)
    assert min(draws) < 85.0 and max(draws) > 115.0  # spread over the range, not stuck at the nominal


def test_parse_accepts_seconds_and_suffixes():
    assert RetrySchedule.parse("30, 90s,1m, 1.5m,2h").delays == (30.0, 90.0, 60.0, 90.0, 7200.0)
    assert str(RetrySchedule.parse("60,120,300s,1h")) == "1m,2m,5m,1h"
    assert RetrySchedule.parse("1m", jitter=0.1).jitter == 0.1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected comma-separated durations"),
        ("1m,,5m", "expected comma-separated durations"),
        ("1m,5x", "invalid duration '5x'"),
        ("-5", "invalid duration '-5'"),
        ("0,1m", "must be positive"),
        ("ten", "invalid duration 'ten'"),
    ],
)
def test_parse_errors_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        RetrySchedule.parse(text)


def test_invalid_schedules_are_refused():
    with pytest.raises(ValueError, match="at least one delay"):
        RetrySchedule(())
    with pytest.raises(ValueError, match="jitter"):
        RetrySchedule((1.0,), jitter=1.0)
    with pytest.raises(ValueError, match="count from 1"):
        RetrySchedule((1.0,)).delay(0)


def test_backoff_delay_is_unchanged_for_its_callers():
    rng = random.Random(3)
    assert all(0.5 <= backoff_delay(1, rng=rng) <= 1.0 for _ in range(100))
    assert all(0.5 <= backoff_delay(20, rng=rng) <= 300.0 for _ in range(100))

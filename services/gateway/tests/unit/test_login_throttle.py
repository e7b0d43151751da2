"""The login throttle's arithmetic: how long the next attempt waits, per address and per client."""

from datetime import UTC, datetime, timedelta

from gateway.domain.login_throttle import LoginThrottle

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
THROTTLE = LoginThrottle(window=timedelta(minutes=15), max_per_address=3, max_per_client=5)


def minutes_ago(*minutes: float) -> list[datetime]:
    return [NOW - timedelta(minutes=m) for m in minutes]


def test_below_the_limit_nobody_waits() -> None:
    assert THROTTLE.wait_seconds(THROTTLE.address_key("a@x.test"), minutes_ago(1, 2), NOW) is None


def test_at_the_limit_the_wait_ends_when_the_oldest_counted_failure_leaves_the_window() -> None:
    wait = THROTTLE.wait_seconds(THROTTLE.address_key("a@x.test"), minutes_ago(10, 1, 2), NOW)
    assert wait == 5 * 60


def test_failures_outside_the_window_do_not_count() -> None:
    assert THROTTLE.wait_seconds(THROTTLE.address_key("a@x.test"), minutes_ago(20, 30, 1, 2), NOW) is None


def test_clients_get_their_own_larger_limit() -> None:
    client = THROTTLE.client_key("192.0.2.7")
    assert THROTTLE.wait_seconds(client, minutes_ago(1, 2, 3, 4), NOW) is None
    assert THROTTLE.wait_seconds(client, minutes_ago(1, 2, 3, 4, 14.5), NOW) == 30

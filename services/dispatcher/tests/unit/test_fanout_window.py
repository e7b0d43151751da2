"""The fan-out's pacing over fakes: a page is fetched and published only while the mail queue holds
fewer than `window` messages, so the backlog never exceeds a window plus a page (decision 0021)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from mailstify_contracts import DeliverEmail

from .fakes import Harness, SimulatedCrash

WINDOW = 25
PAGE = 10


def backlog_after_each_publish(h: Harness) -> list[int]:
    seen: list[int] = []
    publish = h.queue.publish

    async def publish_and_look(deliveries: Sequence[DeliverEmail]) -> None:
        await publish(deliveries)
        seen.append(await h.queue.size())

    h.queue.publish = publish_and_look  # type: ignore[method-assign]
    return seen


async def test_the_backlog_stays_under_a_window_and_a_page_while_mailers_drain_it() -> None:
    h = Harness(recipients=200, page_size=PAGE, window=WINDOW)
    h.while_sleeping = lambda: h.queue.take(3)  # mailers slower than the fan-out
    backlogs = backlog_after_each_publish(h)

    fanout = await h.run()

    assert fanout.completed and fanout.published == 200
    assert h.queue.subscribers() == list(range(1, 201))
    assert len(h.queue.published) == 200
    assert max(backlogs) <= WINDOW + PAGE - 1
    assert max(backlogs) >= WINDOW  # the window was reached, not avoided by luck
    assert h.sleeps and set(h.sleeps) == {h.dispatcher.backlog_poll_seconds}
    ((completed, _, _),) = h.completions()
    assert completed.total == 200


async def test_with_nobody_draining_the_fanout_waits_without_fetching_more() -> None:
    h = Harness(recipients=200, page_size=PAGE, window=WINDOW)

    def stop_after_a_while() -> None:
        if len(h.sleeps) >= 40:
            raise SimulatedCrash("the test stops the wait")

    h.while_sleeping = stop_after_a_while

    with pytest.raises(SimulatedCrash):
        await h.run()

    # Pages of 10 while under 25: 10, 20, 30; then only the backlog is polled.
    assert len(h.queue.by_msg_id) == 30
    assert len(h.recipients.calls) == 3
    stored = h.uow.committed["camp-1"]
    assert (stored.published, stored.pending, stored.completed) == (30, None, False)


async def test_a_pause_during_the_wait_is_seen_before_the_next_page() -> None:
    h = Harness(recipients=200, page_size=PAGE, window=WINDOW)

    def pause_and_drain() -> None:
        h.control.states["camp-1"] = "paused"
        h.queue.take(100)

    h.while_sleeping = pause_and_drain

    fanout = await h.run()

    assert (fanout.published, fanout.completed) == (30, False)
    assert len(h.queue.by_msg_id) == 30 and h.completions() == []


async def test_an_unreadable_backlog_is_waited_out_and_the_total_stays_exact() -> None:
    h = Harness(recipients=35, page_size=PAGE, window=WINDOW)
    h.queue.unreadable_backlogs = 2
    h.while_sleeping = lambda: h.queue.take(100)

    fanout = await h.run()

    assert fanout.completed and h.queue.subscribers() == list(range(1, 36))
    assert len(h.queue.published) == 35
    assert 0 < h.sleeps[0] <= 5 and 0 < h.sleeps[1] <= 5
